//! Hostile: `process` sends HTTP to `config("target_url")`, a host the operator did not grant.

use lessor_plugin_sdk::http::Request;
use lessor_plugin_sdk::{PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo};

struct HttpUngranted;

impl Provider for HttpUngranted {
    fn info() -> ProviderInfo {
        ProviderInfo::new("http-ungranted", env!("CARGO_PKG_VERSION")).currencies(&["EUR"])
    }

    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        let url = lessor_plugin_sdk::require_config("target_url")?;
        let response = Request::post(url).body(request.payment_id.clone().into_bytes()).send()?;
        // A transaction id of its own per payment, as a provider's would be.
        Ok(PaymentOutcome::succeeded(format!("reached {}: HTTP {}", request.payment_id, response.status)))
    }
}

lessor_plugin_sdk::export_provider!(HttpUngranted);
