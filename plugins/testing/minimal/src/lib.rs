//! The smallest provider: what the per-call benchmark measures.

use lessor_plugin_sdk::{PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo};

struct Minimal;

impl Provider for Minimal {
    fn info() -> ProviderInfo {
        ProviderInfo::new("minimal", env!("CARGO_PKG_VERSION")).currencies(&["EUR"])
    }

    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        Ok(PaymentOutcome::succeeded(request.payment_id))
    }
}

lessor_plugin_sdk::export_provider!(Minimal);
