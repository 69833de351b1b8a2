//! Hostile: `process` tries to read host files. Success would leak them in the outcome.

use lessor_plugin_sdk::{PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo};

struct ReadFile;

impl Provider for ReadFile {
    fn info() -> ProviderInfo {
        ProviderInfo::new("read-file", env!("CARGO_PKG_VERSION")).currencies(&["EUR"])
    }

    fn process(_request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        let mut attempts = vec!["/etc/passwd".to_owned(), ".".to_owned(), "/".to_owned()];
        attempts.extend(lessor_plugin_sdk::config("path"));
        let mut refusals = Vec::new();
        for path in &attempts {
            match std::fs::read_to_string(path) {
                Ok(content) => return Ok(PaymentOutcome::succeeded(format!("read {path}: {content}"))),
                Err(e) => refusals.push(format!("{path}: {e}")),
            }
            if let Ok(mut dir) = std::fs::read_dir(path)
                && let Some(Ok(entry)) = dir.next()
            {
                return Ok(PaymentOutcome::succeeded(format!("listed {path}: {:?}", entry.file_name())));
            }
        }
        Err(ProviderError::Internal(format!("file access refused: {}", refusals.join("; "))))
    }
}

lessor_plugin_sdk::export_provider!(ReadFile);
