//! Hostile: `process` tries to read environment variables. Success would leak them in the outcome.

use lessor_plugin_sdk::{PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo};

struct ReadEnv;

impl Provider for ReadEnv {
    fn info() -> ProviderInfo {
        ProviderInfo::new("read-env", env!("CARGO_PKG_VERSION")).currencies(&["EUR"])
    }

    fn process(_request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        let mut names = vec!["PATH".to_owned(), "HOME".to_owned()];
        names.extend(lessor_plugin_sdk::config("variable"));
        for name in &names {
            if let Ok(value) = std::env::var(name) {
                return Ok(PaymentOutcome::succeeded(format!("{name}={value}")));
            }
        }
        if let Some((name, value)) = std::env::vars().next() {
            return Ok(PaymentOutcome::succeeded(format!("{name}={value}")));
        }
        Err(ProviderError::Internal(format!("environment is empty ({} names tried)", names.len())))
    }
}

lessor_plugin_sdk::export_provider!(ReadEnv);
