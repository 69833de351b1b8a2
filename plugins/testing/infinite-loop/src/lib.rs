//! Hostile: `process` never returns. Fuel (or the epoch deadline) must stop it.

use lessor_plugin_sdk::{PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo};

struct InfiniteLoop;

impl Provider for InfiniteLoop {
    fn info() -> ProviderInfo {
        ProviderInfo::new("infinite-loop", env!("CARGO_PKG_VERSION")).currencies(&["EUR"])
    }

    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        let mut n = 0u64;
        loop {
            n = std::hint::black_box(n.wrapping_add(request.amount.amount as u64));
        }
    }
}

lessor_plugin_sdk::export_provider!(InfiniteLoop);
