//! Test plugin `echo`, built twice from this one file (`echo-v1` 1.0.0, and `echo-v2` 2.0.0 whose crate points here), so
//! tests can install, upgrade and roll back a provider. No host capabilities: `process` succeeds
//! with the transaction id `echo-<version>-<payment id>`, which tells a caller which version ran.

use lessor_plugin_sdk::{PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo};

struct Echo;

const VERSION: &str = env!("CARGO_PKG_VERSION");

impl Provider for Echo {
    fn info() -> ProviderInfo {
        ProviderInfo::new("echo", VERSION).currencies(&["EUR", "USD"])
    }

    fn validate(request: &PaymentRequest) -> Result<(), ProviderError> {
        if !["EUR", "USD"].contains(&request.amount.currency.as_str()) {
            return Err(ProviderError::invalid_request("amount.currency", "echo takes EUR and USD"));
        }
        Ok(())
    }

    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        Self::validate(&request)?;
        Ok(PaymentOutcome::succeeded(format!("echo-{VERSION}-{}", request.payment_id)))
    }
}

lessor_plugin_sdk::export_provider!(Echo);
