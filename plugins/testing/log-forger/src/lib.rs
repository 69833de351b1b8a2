//! Hostile: tries to write lines of its own into the host's log. Every string it hands the host
//! (log messages, field keys and values, its error message, its panic text) carries a line break
//! followed by a forged log line, and control characters; then it loops on requests the host
//! refuses (each a host warning), to flood the log. `parse_webhook` ends with an error message
//! (or, with the header `x-forge: panic`, a panic) carrying the same forgery.

use lessor_plugin_sdk::http::Request;
use lessor_plugin_sdk::log::{self, Level};
use lessor_plugin_sdk::{
    PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo, WebhookBatch, WebhookRequest,
};

/// What a line the host writes would look like if this text started a line of its own.
const FORGED: &str = "\n2026-01-01 INFO forged";
const DENIED_REQUESTS: usize = 1000;

struct LogForger;

fn forge() {
    for level in [Level::Info, Level::Warn, Level::Error] {
        log::write(level, &format!("hello{FORGED} admin logged in\r\x1b[2K\x07"), &[]);
    }
    log::write(
        Level::Warn,
        "fields",
        &[("key\n2026-01-01 INFO forged key", "v".to_owned()), ("k", format!("value{FORGED} value\u{2028}\u{0}"))],
    );
    // Each refused request is a warning the host writes; the host's budget must cap them.
    for i in 0..DENIED_REQUESTS {
        let _ = Request::get(format!("http://forged.invalid/{i}")).send();
    }
    for i in 0..DENIED_REQUESTS {
        log::write(Level::Info, &format!("flood {i}{FORGED} flood"), &[]);
    }
}

impl Provider for LogForger {
    fn info() -> ProviderInfo {
        ProviderInfo::new("log-forger", env!("CARGO_PKG_VERSION")).currencies(&["EUR"]).webhooks()
    }

    fn process(_request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        forge();
        Err(ProviderError::Internal(format!("internal{FORGED} error")))
    }

    fn parse_webhook(request: WebhookRequest) -> Result<WebhookBatch, ProviderError> {
        forge();
        if request.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("x-forge") && v == "panic") {
            panic!("boom{FORGED} panic");
        }
        Err(ProviderError::Internal(format!("internal{FORGED} error")))
    }
}

lessor_plugin_sdk::export_provider!(LogForger);
