//! Hostile: `process` recurses without bound until the wasm stack overflows.

use lessor_plugin_sdk::{PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo};

struct DeepRecursion;

#[inline(never)]
#[allow(unconditional_recursion, reason = "the point of this plugin")]
fn descend(depth: u64) -> u64 {
    // Not a tail call, and black_box keeps the optimiser from turning it into a loop.
    std::hint::black_box(descend(std::hint::black_box(depth + 1))) + 1
}

impl Provider for DeepRecursion {
    fn info() -> ProviderInfo {
        ProviderInfo::new("deep-recursion", env!("CARGO_PKG_VERSION")).currencies(&["EUR"])
    }

    fn process(_request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        Ok(PaymentOutcome::succeeded(descend(0).to_string()))
    }
}

lessor_plugin_sdk::export_provider!(DeepRecursion);
