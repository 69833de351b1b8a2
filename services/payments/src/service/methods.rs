//! A lease's default payment method, used by the collection job.

use chrono::NaiveDate;
use uuid::Uuid;

use super::{PaymentError, PaymentService};
use crate::input::{NewPayment, ValidationError, parse_lease_payment_method_with_tokens};
use crate::method::{PaymentMethod, ProviderName};
use crate::record::LeasePaymentMethod;
use lessor_leases::Viewer;

impl PaymentService {
    /// Sets how a lease's installments are collected, from
    /// `{"provider": "bank", "payment_method": <token or SEPA mandate>}` (the lease's owner or
    /// staff). Card numbers are refused like everywhere else.
    pub async fn set_payment_method(
        &self,
        viewer: Viewer,
        lease_id: Uuid,
        body: &serde_json::Value,
        today: NaiveDate,
    ) -> Result<LeasePaymentMethod, PaymentError> {
        let declared = |provider: &str, token: &str| self.gateway.declares_token(provider, token);
        let (provider, method) = parse_lease_payment_method_with_tokens(body, today, &declared)?;
        self.set_payment_method_parsed(viewer, lease_id, &provider, &method).await
    }

    /// Parses a payment request as [`NewPayment::parse`] does, accepting a token in a format
    /// its provider declares (`[token-formats]`) even when it looks like a card number.
    pub fn parse_payment(&self, body: &serde_json::Value, today: NaiveDate) -> Result<NewPayment, ValidationError> {
        NewPayment::parse_with_tokens(body, today, &|provider, token| self.gateway.declares_token(provider, token))
    }

    pub async fn set_payment_method_parsed(
        &self,
        viewer: Viewer,
        lease_id: Uuid,
        provider: &ProviderName,
        method: &PaymentMethod,
    ) -> Result<LeasePaymentMethod, PaymentError> {
        self.visible_lease(viewer, lease_id).await?;
        let updated_at = self.repo.set_lease_method(lease_id, provider.as_str(), &method.wire()).await?;
        tracing::info!(%lease_id, %provider, kind = method.kind(), "lease payment method set");
        Ok(LeasePaymentMethod { lease_id, provider: provider.to_string(), method: method.clone(), updated_at })
    }

    /// The lease's payment method, if set (the lease's owner or staff).
    pub async fn payment_method(
        &self,
        viewer: Viewer,
        lease_id: Uuid,
    ) -> Result<Option<LeasePaymentMethod>, PaymentError> {
        self.visible_lease(viewer, lease_id).await?;
        Ok(self.repo.lease_method(lease_id).await?)
    }

    /// Removes the lease's payment method; `false` when none was set.
    pub async fn remove_payment_method(&self, viewer: Viewer, lease_id: Uuid) -> Result<bool, PaymentError> {
        self.visible_lease(viewer, lease_id).await?;
        Ok(self.repo.remove_lease_method(lease_id).await?)
    }
}
