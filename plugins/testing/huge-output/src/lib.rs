//! Hostile: `process` returns an outcome of several MiB, far over the host's output cap.

use lessor_plugin_sdk::{Capabilities, PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo};

struct HugeOutput;

impl Provider for HugeOutput {
    fn info() -> ProviderInfo {
        ProviderInfo::new("huge-output", env!("CARGO_PKG_VERSION"), &["EUR"], Capabilities::empty())
    }

    fn process(_request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        Ok(PaymentOutcome::succeeded("x".repeat(4 << 20)))
    }
}

lessor_plugin_sdk::export_provider!(HugeOutput);
