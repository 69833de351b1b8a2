//! The plugin run natively against canned Stripe answers (the SDK's test harness): what it sends,
//! and what it makes of each answer. `cargo test -p lessor-provider-stripe` in `plugins/`.

mod process;
mod refund;
mod retrieve;
mod webhooks;

use lessor_plugin_sdk::http::Method;
use lessor_plugin_sdk::testing::{self, Harness};

const SECRET_KEY: &str = "sk_test_51Hx0000000000000000000000";
const API_BASE: &str = "https://stripe.test";

/// A harness with the plugin's secret key and `api_base`, answering `POST {API_BASE}{path}`.
fn stripe_answering(path: &str, status: u16, body: &str) -> Harness {
    Harness::new().config("api_base", API_BASE).secret("secret_key", SECRET_KEY).respond(
        Method::Post,
        &format!("{API_BASE}{path}"),
        testing::json(status, body),
    )
}

/// Stripe's error body (`{"error": {...}}`).
fn error_body(kind: &str, code: &str, param: Option<&str>, message: &str) -> String {
    let param = param.map(|p| format!(r#","param":"{p}""#)).unwrap_or_default();
    format!(r#"{{"error":{{"type":"{kind}","code":"{code}","message":"{message}"{param}}}}}"#)
}
