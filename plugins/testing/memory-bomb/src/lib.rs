//! Hostile: `process` allocates (and touches) memory until something stops it.

use lessor_plugin_sdk::{PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo};

struct MemoryBomb;

impl Provider for MemoryBomb {
    fn info() -> ProviderInfo {
        ProviderInfo::new("memory-bomb", env!("CARGO_PKG_VERSION")).currencies(&["EUR"])
    }

    fn process(_request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![0xAB; 1 << 20]));
            if hoard.len() == usize::MAX {
                return Ok(PaymentOutcome::succeeded(format!("{}", hoard.len())));
            }
        }
    }
}

lessor_plugin_sdk::export_provider!(MemoryBomb);
