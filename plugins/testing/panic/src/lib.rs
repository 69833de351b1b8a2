//! Hostile: `process` panics. The host must report the panic message and carry on.

use lessor_plugin_sdk::{PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo};

struct Panics;

impl Provider for Panics {
    fn info() -> ProviderInfo {
        ProviderInfo::new("panic", env!("CARGO_PKG_VERSION")).currencies(&["EUR"])
    }

    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        if request.amount.amount >= 0 {
            panic!("card vault exploded for payment {}", request.payment_id);
        }
        Ok(PaymentOutcome::succeeded("never"))
    }
}

lessor_plugin_sdk::export_provider!(Panics);
