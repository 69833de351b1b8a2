//! The same code as `minimal`, but its manifest claims `lessor:payments@0.9.0`, which the host must refuse by name.

use lessor_plugin_sdk::{PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo};

struct UnknownVersion;

impl Provider for UnknownVersion {
    fn info() -> ProviderInfo {
        ProviderInfo::new("unknown-version", env!("CARGO_PKG_VERSION")).currencies(&["EUR"])
    }

    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        Ok(PaymentOutcome::succeeded(request.payment_id))
    }
}

lessor_plugin_sdk::export_provider!(UnknownVersion);
