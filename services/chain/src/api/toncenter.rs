//! toncenter HTTP API v2 over reqwest: `X-API-Key` when configured, a timeout per request,
//! and retries with exponential backoff (or the server's `Retry-After`) on 429, 5xx and
//! unanswered requests.
//!
//! Every answer is `{"ok": true, "result": …}` or `{"ok": false, "error": "…", "code": N}`.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use tonlib_core::TonAddress;

use super::{AccountState, ApiError, ChainMessage, ChainTransaction, SentMessage, TonApi, TxId, TxQuery, WalletInfo};
use crate::config::ApiSettings;
use crate::wallet::{Hash256, from_hex};

/// A toncenter-compatible API client. Cheap to clone.
#[derive(Clone)]
pub struct ToncenterClient {
    http: reqwest::Client,
    settings: ApiSettings,
}

impl std::fmt::Debug for ToncenterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToncenterClient")
            .field("url", &self.settings.url.as_str())
            .field("api_key", &self.settings.api_key.as_ref().map(|_| "***"))
            .finish()
    }
}

enum Call<'a> {
    Get(&'a [(&'a str, String)]),
    Post(&'a Value),
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<String>,
}

/// Whether a node's error text says the external message itself was refused (so sending it
/// again cannot help), rather than the API failing.
fn is_rejection(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("cannot apply external message")
        || m.contains("not accepted")
        || m.contains("failed to unpack account state")
}

fn is_duplicate(message: &str) -> bool {
    message.to_ascii_lowercase().contains("duplicate")
}

impl ToncenterClient {
    pub fn new(settings: &ApiSettings) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("lessor-chain/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Malformed(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http, settings: settings.clone() })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.clamp(1, 16) - 1;
        self.settings.retry_min.saturating_mul(1 << exp).min(self.settings.retry_max)
    }

    /// One API method, retried on 429, 5xx and transport errors; the `result` on success.
    async fn call(&self, method: &str, call: Call<'_>) -> Result<Value, ApiError> {
        let url = format!("{}/{method}", self.settings.url.as_str().trim_end_matches('/'));
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut request = match &call {
                Call::Get(query) => self.http.get(&url).query(query),
                Call::Post(body) => self.http.post(&url).json(body),
            };
            if let Some(key) = &self.settings.api_key {
                request = request.header("X-API-Key", key.expose_secret());
            }
            let (last, retry_after) = match request.send().await {
                Err(e) => (transport_error(&e), None),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    match response.text().await {
                        Err(e) => (transport_error(&e), retry_after),
                        Ok(text) => match answer(status, &text) {
                            Answer::Done(result) => return result,
                            Answer::Retry(last) => (last, retry_after),
                        },
                    }
                }
            };
            if attempt > self.settings.max_retries {
                return Err(ApiError::Unavailable { attempts: attempt, last });
            }
            let wait = retry_after.unwrap_or_else(|| self.backoff(attempt)).min(self.settings.retry_max);
            tracing::debug!(method, attempt, wait_ms = wait.as_millis() as u64, error = %last, "TON API call failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

enum Answer {
    Done(Result<Value, ApiError>),
    Retry(String),
}

fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() { format!("timed out: {e}") } else { format!("no answer: {e}") }
}

fn answer(status: StatusCode, text: &str) -> Answer {
    let envelope = serde_json::from_str::<Envelope>(text).ok();
    if status.is_success() {
        return Answer::Done(match envelope {
            Some(Envelope { ok: true, result: Some(result), .. }) => Ok(result),
            Some(Envelope { error, .. }) => {
                let message = error.unwrap_or_else(|| "ok: false without an error".into());
                if is_rejection(&message) {
                    Err(ApiError::Rejected(message))
                } else {
                    Err(ApiError::Failed { status: status.as_u16(), message })
                }
            }
            None => Err(ApiError::Malformed(format!("not a toncenter answer: {}", clip(text)))),
        });
    }
    let message = envelope.and_then(|e| e.error).unwrap_or_else(|| clip(text));
    if is_rejection(&message) {
        return Answer::Done(Err(ApiError::Rejected(message)));
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Answer::Retry(format!("{status}: {message}"));
    }
    Answer::Done(Err(ApiError::Failed { status: status.as_u16(), message }))
}

fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}

fn malformed(what: &str, value: &Value) -> ApiError {
    ApiError::Malformed(format!("{what} in {}", clip(&value.to_string())))
}

/// A JSON number or a decimal string (toncenter writes big numbers as strings).
fn number(value: &Value) -> Option<u128> {
    match value {
        Value::Number(n) => n.as_u64().map(u128::from),
        Value::String(s) if s.is_empty() => Some(0),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A hash in base64 (standard or URL-safe) or hex.
pub(crate) fn decode_hash(text: &str) -> Option<Hash256> {
    if let Some(hash) = from_hex(text) {
        return Some(hash);
    }
    let bytes = STANDARD.decode(text).or_else(|_| URL_SAFE.decode(text)).ok()?;
    bytes.try_into().ok()
}

fn address(value: Option<&Value>) -> Option<TonAddress> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty()).and_then(|s| TonAddress::from_str(s).ok())
}

fn tx_id(value: &Value) -> Option<TxId> {
    let lt = u64::try_from(number(value.get("lt")?)?).ok()?;
    let hash = decode_hash(value.get("hash")?.as_str()?)?;
    (lt > 0).then_some(TxId { lt, hash })
}

fn message(value: &Value) -> ChainMessage {
    let data = value.get("msg_data");
    let text = data
        .filter(|d| d.get("@type").and_then(Value::as_str) == Some("msg.dataText"))
        .and_then(|d| d.get("text").and_then(Value::as_str))
        .and_then(|t| STANDARD.decode(t).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let comment = text.or_else(|| {
        value.get("message").and_then(Value::as_str).filter(|m| !m.is_empty() && data.is_none()).map(str::to_owned)
    });
    ChainMessage {
        hash: value.get("hash").and_then(Value::as_str).and_then(decode_hash),
        hash_norm: value.get("hash_norm").and_then(Value::as_str).and_then(decode_hash),
        source: address(value.get("source")),
        destination: address(value.get("destination")),
        value: value.get("value").and_then(number).unwrap_or(0),
        comment,
    }
}

fn transaction(value: &Value) -> Result<ChainTransaction, ApiError> {
    let id = value.get("transaction_id").and_then(tx_id).ok_or_else(|| malformed("no transaction_id", value))?;
    let utime = value.get("utime").and_then(number).and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
    let in_msg = value.get("in_msg").filter(|m| m.is_object()).map(message);
    let out_msgs =
        value.get("out_msgs").and_then(Value::as_array).map(|a| a.iter().map(message).collect()).unwrap_or_default();
    Ok(ChainTransaction { id, utime, in_msg, out_msgs })
}

#[async_trait]
impl TonApi for ToncenterClient {
    #[tracing::instrument(name = "chain.api.wallet_info", skip_all)]
    async fn wallet_info(&self, address: &TonAddress) -> Result<WalletInfo, ApiError> {
        let query = [("address", address.to_base64_url())];
        let result = self.call("getWalletInformation", Call::Get(&query)).await?;
        let state = match result.get("account_state").and_then(Value::as_str) {
            Some("active") => AccountState::Active,
            Some("frozen") => AccountState::Frozen,
            Some(s) if s.starts_with("uninit") || s == "nonexist" => AccountState::Uninitialized,
            _ => return Err(malformed("no account_state", &result)),
        };
        let seqno = result.get("seqno").and_then(number).and_then(|n| u32::try_from(n).ok());
        Ok(WalletInfo {
            state,
            balance: result.get("balance").and_then(number).unwrap_or(0),
            seqno,
            last_transaction: result.get("last_transaction_id").and_then(tx_id),
        })
    }

    #[tracing::instrument(name = "chain.api.seqno", skip_all)]
    async fn seqno(&self, address: &TonAddress) -> Result<Option<u32>, ApiError> {
        let body = json!({"address": address.to_base64_url(), "method": "seqno", "stack": []});
        let result = self.call("runGetMethod", Call::Post(&body)).await?;
        if result.get("exit_code").and_then(Value::as_i64) != Some(0) {
            return Ok(None);
        }
        let top = result.get("stack").and_then(Value::as_array).and_then(|s| s.first());
        let hex =
            top.and_then(|entry| entry.get(1)).and_then(Value::as_str).ok_or_else(|| malformed("no stack", &result))?;
        let digits = hex.trim_start_matches("0x").trim_start_matches("0X");
        u32::from_str_radix(digits, 16).map(Some).map_err(|_| malformed("seqno not a number", &result))
    }

    #[tracing::instrument(name = "chain.api.send_boc", skip_all)]
    async fn send_boc(&self, boc: &[u8]) -> Result<SentMessage, ApiError> {
        let body = json!({"boc": STANDARD.encode(boc)});
        match self.call("sendBocReturnHash", Call::Post(&body)).await {
            Ok(result) => Ok(SentMessage {
                hash: result.get("hash").and_then(Value::as_str).and_then(decode_hash),
                hash_norm: result.get("hash_norm").and_then(Value::as_str).and_then(decode_hash),
            }),
            // The node already holds this very message: it was sent.
            Err(ApiError::Rejected(message) | ApiError::Failed { message, .. }) if is_duplicate(&message) => {
                Ok(SentMessage::default())
            }
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(name = "chain.api.transactions", skip_all)]
    async fn transactions(&self, address: &TonAddress, query: &TxQuery) -> Result<Vec<ChainTransaction>, ApiError> {
        let mut params = vec![("address", address.to_base64_url()), ("limit", query.limit.clamp(1, 100).to_string())];
        if let Some(from) = &query.from {
            params.push(("lt", from.lt.to_string()));
            params.push(("hash", STANDARD.encode(from.hash)));
        }
        if query.to_lt > 0 {
            params.push(("to_lt", query.to_lt.to_string()));
        }
        let result = self.call("getTransactions", Call::Get(&params)).await?;
        let list = result.as_array().ok_or_else(|| malformed("not a list", &result))?;
        list.iter().map(transaction).filter(|t| !matches!(t, Ok(t) if t.id.lt <= query.to_lt)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_sorted_into_retry_rejection_and_failure() {
        let ok = answer(StatusCode::OK, r#"{"ok":true,"result":{"x":1}}"#);
        assert!(matches!(ok, Answer::Done(Ok(v)) if v["x"] == 1));
        assert!(matches!(
            answer(StatusCode::TOO_MANY_REQUESTS, r#"{"ok":false,"error":"Ratelimit exceed","code":429}"#),
            Answer::Retry(_)
        ));
        assert!(matches!(answer(StatusCode::BAD_GATEWAY, "<html>bad gateway</html>"), Answer::Retry(_)));
        let refused = r#"{"ok":false,"error":"LITE_SERVER_UNKNOWN: cannot apply external message to current state : External message was not accepted","code":500}"#;
        assert!(matches!(answer(StatusCode::INTERNAL_SERVER_ERROR, refused), Answer::Done(Err(ApiError::Rejected(_)))));
        assert!(matches!(
            answer(StatusCode::UNAUTHORIZED, r#"{"ok":false,"error":"API key does not exist","code":401}"#),
            Answer::Done(Err(ApiError::Failed { status: 401, .. }))
        ));
        assert!(matches!(answer(StatusCode::OK, "[]"), Answer::Done(Err(ApiError::Malformed(_)))));
    }

    #[test]
    fn transactions_parse_from_toncenter_json() {
        let tx: Value = serde_json::from_str(
            r#"{"@type":"raw.transaction","utime":1700000000,
                "transaction_id":{"@type":"internal.transactionId","lt":"47000000000001","hash":"YxQuv/HWjgaNWO+6gIB3qR5tzGPM6I9PQibjOQkUchA="},
                "in_msg":{"@type":"raw.message","hash":"nLfzA1zr64XG8nYv/YOYSWBRLgk7TV63WzZWO323d20=","source":"","destination":"EQCDM_QGggZ3qMa_f3lRPk4_qLDnLTqdi6OkMAV2NB9r5TG3","value":"0","msg_data":{"@type":"msg.dataRaw","body":"","init_state":""},"message":""},
                "out_msgs":[{"@type":"raw.message","source":"EQCDM_QGggZ3qMa_f3lRPk4_qLDnLTqdi6OkMAV2NB9r5TG3","destination":"0:8333f406820677a8c6bf7f79513e4e3fa8b0e72d3a9d8ba3a4300576341f6be5","value":"10000000","msg_data":{"@type":"msg.dataText","text":"aGVsbG8="},"message":"hello"}]}"#,
        )
        .unwrap();
        let tx = transaction(&tx).unwrap();
        assert_eq!(tx.id.lt, 47_000_000_000_001);
        let inbound = tx.in_msg.unwrap();
        assert!(inbound.source.is_none() && inbound.hash.is_some());
        assert_eq!(tx.out_msgs[0].comment.as_deref(), Some("hello"));
        assert_eq!(tx.out_msgs[0].value, 10_000_000);
        assert_eq!(tx.out_msgs[0].destination, inbound.destination);
    }

    #[test]
    fn hashes_decode_from_base64_or_hex() {
        let hash = [7u8; 32];
        assert_eq!(decode_hash(&STANDARD.encode(hash)), Some(hash));
        assert_eq!(decode_hash(&URL_SAFE.encode(hash)), Some(hash));
        assert_eq!(decode_hash(&crate::wallet::hex(&hash)), Some(hash));
        assert_eq!(decode_hash("short"), None);
    }
}
