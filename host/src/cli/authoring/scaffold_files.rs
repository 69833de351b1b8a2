//! The files `host plugin new` writes. The version lives in `Cargo.toml` only: `host plugin
//! pack` writes it into the packaged `plugin.toml`, and `info` reports `CARGO_PKG_VERSION`.

use super::scaffold::type_name;

pub fn cargo_toml(name: &str, sdk: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# A component for the host (cdylib); rlib too, so `cargo test` links the tests natively.
crate-type = ["cdylib", "rlib"]

[dependencies]
lessor-plugin-sdk = {sdk}

# A workspace of its own: this crate builds for wasm32-wasip2, apart from anything around it.
[workspace]

[profile.release]
# Small components instantiate faster and load faster.
opt-level = "s"
lto = true
codegen-units = 1
strip = "debuginfo"
# wasm32-wasip2 cannot unwind: a panic aborts (the SDK reports its message to the host first).
panic = "abort"
"#
    )
}

pub fn plugin_toml(name: &str) -> String {
    format!(
        r#"# The package manifest. `host plugin pack` adds the version (from Cargo.toml) and the digest.
name = "{name}"
wit = "lessor:payments@0.2.0"
provider = "{name}"
component = "{name}.wasm"
# Origins the plugin asks to reach; the operator accepts them at install.
hosts = ["https://api.{name}.example"]
config = ["api_base"]
secrets = ["api_key", "webhook_secret"]

[webhooks]
# Requests without this header are refused before the plugin runs.
signature-header = "{name}-signature"
max-body-bytes = 65536
"#
    )
}

pub fn gitignore() -> &'static str {
    "/target\n/*.tar.gz\n"
}

pub fn lib_rs(name: &str) -> String {
    let ty = type_name(name);
    format!(
        r#"//! The `{name}` payment provider for Lessor, built as a WebAssembly component.
//!
//! `cargo test` runs it natively against the SDK's harness; `host plugin pack .` builds the
//! component and the package; `host plugin install {name}-0.1.0.tar.gz` installs it.

use lessor_plugin_sdk::http::Request;
use lessor_plugin_sdk::{{
    PaymentLookup, PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo, RefundLookup, RefundOutcome,
    RefundRequest, WebhookBatch, WebhookRequest,
}};

struct {ty};

impl Provider for {ty} {{
    fn info() -> ProviderInfo {{
        // The host refuses, before calling, what is not declared here. Add `.refunds()`,
        // `.partial_refunds()` and `.webhooks()` once `refund` and `parse_webhook` are written.
        ProviderInfo::new("{name}", env!("CARGO_PKG_VERSION")).currencies(&["EUR"])
    }}

    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {{
        let base = lessor_plugin_sdk::require_config("api_base")?;
        let key = lessor_plugin_sdk::require_secret("api_key")?;
        let amount = request.amount.amount.to_string();
        let response = Request::post(format!("{{base}}/payments"))
            .bearer_auth(key.expose())
            // The same key on a retry: the provider must never charge twice.
            .idempotency_key(&request.idempotency_key)
            .form(&[
                ("amount", amount.as_str()),
                ("currency", request.amount.currency.as_str()),
                ("payment_method", request.payment_method.as_str()),
                ("reference", request.payment_id.as_str()),
            ])
            .send()? // a host refusal is egress-denied, a timeout provider-unavailable
            .error_for_status()?;
        // TODO: read the provider's answer; here its body is the transaction id.
        Ok(PaymentOutcome::succeeded(response.text()?.trim()))
    }}

    fn retrieve_payment(lookup: PaymentLookup) -> Result<Option<PaymentOutcome>, ProviderError> {{
        // TODO: GET the payment by lookup.provider_transaction_id, or by the reference `process`
        // sent (lookup.payment_id); Ok(None) when the provider has none. Until then the host
        // calls `process` again with the same idempotency key.
        let _ = lookup;
        Err(ProviderError::NotSupported)
    }}

    fn refund(request: RefundRequest) -> Result<RefundOutcome, ProviderError> {{
        let _ = request; // TODO: call the provider's refund API with request.idempotency_key.
        Err(ProviderError::NotSupported)
    }}

    fn retrieve_refund(lookup: RefundLookup) -> Result<Option<RefundOutcome>, ProviderError> {{
        let _ = lookup; // TODO: GET the refund; Ok(None) when the provider has none.
        Err(ProviderError::NotSupported)
    }}

    fn parse_webhook(request: WebhookRequest) -> Result<WebhookBatch, ProviderError> {{
        // TODO: verify the signature with require_secret("webhook_secret") (else
        // Err(ProviderError::SignatureInvalid)), then map every event in the request:
        // Ok(WebhookBatch::new(events).reply(WebhookReply::text("[accepted]"))), or
        // WebhookBatch::one(event) answered 200 {{"received":true}}.
        let _ = request;
        Err(ProviderError::NotSupported)
    }}
}}

lessor_plugin_sdk::export_provider!({ty});

#[cfg(test)]
mod tests {{
    use lessor_plugin_sdk::http::Method;
    use lessor_plugin_sdk::testing::{{self, Harness}};

    use super::*;

    #[test]
    fn a_payment_is_posted_once_with_its_idempotency_key() {{
        let harness = Harness::new()
            .config("api_base", "https://api.{name}.example")
            .secret("api_key", "key_test_1")
            .respond(Method::Post, "https://api.{name}.example/payments", testing::response(201, &[], "pay_1"));
        let request = testing::payment_request(1200, "EUR", "tok_visa");
        let key = request.idempotency_key.clone();

        let outcome = harness.process::<{ty}>(request);

        assert_eq!(outcome, Ok(PaymentOutcome::succeeded("pay_1")));
        let sent = harness.requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].header("idempotency-key"), Some(key.as_str()));
        assert_eq!(sent[0].header("authorization"), Some("Bearer key_test_1"));
    }}

    #[test]
    fn without_the_api_key_nothing_is_sent() {{
        let harness = Harness::new().config("api_base", "https://api.{name}.example");
        let outcome = harness.process::<{ty}>(testing::payment_request(1200, "EUR", "tok_visa"));
        assert_eq!(outcome, Err(ProviderError::Misconfigured("api_key".to_owned())));
        assert!(harness.requests().is_empty());
    }}
}}
"#
    )
}
