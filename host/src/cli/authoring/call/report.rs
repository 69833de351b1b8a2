//! What `host plugin call` prints: the exchanges with credentials masked, then the outcome or
//! the typed error; as text, or as one JSON object for scripts.

use serde_json::{Value, json};

use super::canned::{Exchange, method_name};
use crate::plugins::{PluginCallError, ProviderError};

/// Hides the values of `--secret`s wherever they appear, and credential headers whole.
pub struct Masker {
    /// (what it is replaced with, the text to find), longest first.
    secrets: Vec<(String, String)>,
}

impl Masker {
    pub fn new(secrets: &[(String, String)]) -> Self {
        let mut found = Vec::new();
        for (name, value) in secrets.iter().filter(|(_, v)| !v.is_empty()) {
            let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
            found.push((format!("<secret {name}>"), value.clone()));
            if encoded != *value {
                found.push((format!("<secret {name}>"), encoded));
            }
        }
        found.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        Self { secrets: found }
    }

    pub fn text(&self, s: &str) -> String {
        self.secrets.iter().fold(s.to_owned(), |acc, (mask, value)| acc.replace(value.as_str(), mask))
    }

    fn bytes(&self, body: &[u8]) -> String {
        match std::str::from_utf8(body) {
            Ok(text) => self.text(text),
            Err(_) => format!("<{} bytes, not UTF-8>", body.len()),
        }
    }

    /// A credential header keeps its scheme (`Bearer ****`); any other value only loses secrets.
    fn header(&self, name: &str, value: &str) -> String {
        if !is_credential(name) {
            return self.text(value);
        }
        match value.split_once(' ') {
            Some((scheme, _)) if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphabetic()) => {
                format!("{scheme} ****")
            }
            _ => "****".to_owned(),
        }
    }

    fn headers(&self, headers: &[(String, String)]) -> Vec<(String, String)> {
        headers.iter().map(|(k, v)| (k.clone(), self.header(k, v))).collect()
    }
}

fn is_credential(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["auth", "cookie", "token", "secret", "password", "api-key", "apikey", "api_key"].iter().any(|w| name.contains(w))
}

pub fn exchanges_json(exchanges: &[Exchange], mask: &Masker) -> Value {
    let items: Vec<Value> = exchanges
        .iter()
        .map(|x| {
            let mut item = json!({
                "method": method_name(x.method),
                "url": mask.text(&x.url),
                "headers": mask.headers(&x.headers),
                "body": mask.bytes(&x.body),
            });
            match &x.reply {
                Ok(r) => {
                    item["response"] = json!({
                        "status": r.status,
                        "headers": mask.headers(&r.headers),
                        "body": mask.bytes(&r.body),
                    })
                }
                Err(why) => item["refused"] = json!(why),
            }
            item
        })
        .collect();
    Value::Array(items)
}

pub fn print_exchanges(exchanges: &[Exchange], mask: &Masker) {
    if exchanges.is_empty() {
        println!("no HTTP requests");
    }
    for (i, x) in exchanges.iter().enumerate() {
        println!("request {}: {} {}", i + 1, method_name(x.method), mask.text(&x.url));
        print_message(&mask.headers(&x.headers), &mask.bytes(&x.body));
        match &x.reply {
            Ok(r) => {
                println!("response: {} (canned)", r.status);
                print_message(&mask.headers(&r.headers), &mask.bytes(&r.body));
            }
            Err(why) => println!("response: {why}"),
        }
        println!();
    }
}

fn print_message(headers: &[(String, String)], body: &str) {
    for (name, value) in headers {
        println!("  {name}: {value}");
    }
    if body.is_empty() {
        println!("  (no body)");
    } else {
        println!("  body: {body}");
    }
}

/// The typed error: `type` is the provider error's kind, `sandbox`, `egress_denied` or
/// `input_too_large`; `message` is what `host serve` would log.
pub fn error_json(error: &PluginCallError, mask: &Masker) -> Value {
    let mut v = json!({ "type": error.outcome(), "message": mask.text(&error.to_string()) });
    match error {
        PluginCallError::Provider(ProviderError::InvalidRequest { field, reason }) => {
            v["field"] = json!(field);
            v["reason"] = json!(mask.text(reason));
        }
        PluginCallError::Sandbox { failure, .. } => v["failure"] = json!(failure.kind()),
        PluginCallError::EgressDenied { denied, error, .. } => {
            v["denied"] = json!(denied);
            v["cause"] = error_json(error, mask);
        }
        _ => {}
    }
    v
}
