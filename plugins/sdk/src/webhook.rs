//! Webhooks: the events one request carries, and the answer the provider expects.
//!
//! ```
//! use lessor_plugin_sdk::{EventKind, Money, WebhookBatch, WebhookEvent, WebhookReply};
//!
//! // Stripe: one event per request; any 2xx will do.
//! let succeeded = WebhookEvent::new("evt_1", EventKind::PaymentSucceeded, "pi_1").amount(Money::new(45000, "EUR"));
//! let batch = WebhookBatch::one(succeeded);
//! assert_eq!(batch.reply, WebhookReply::ok());
//!
//! // Adyen: several notification items per request, answered `[accepted]` as text/plain.
//! let refunded = WebhookEvent::new("ev_2", EventKind::RefundSucceeded, "psp_1")
//!     .refund("rf_7")                      // the one refund it is about
//!     .amount(Money::new(4000, "EUR"));    // that refund's amount
//! let batch = WebhookBatch::new(vec![refunded]).reply(WebhookReply::text("[accepted]"));
//! assert_eq!(batch.reply.body, b"[accepted]");
//! assert_eq!(batch.reply.content_type, "text/plain");
//! ```

use crate::{EventKind, Money, WebhookBatch, WebhookEvent, WebhookReply};

impl WebhookEvent {
    /// An event about the payment whose transaction id is `provider_transaction_id`, with no
    /// amount, refund id, reason or time: add them with the methods below.
    pub fn new(event_id: impl Into<String>, kind: EventKind, provider_transaction_id: impl Into<String>) -> Self {
        Self {
            event_id: event_id.into(),
            kind,
            provider_transaction_id: provider_transaction_id.into(),
            provider_refund_id: None,
            amount: None,
            reason_code: None,
            occurred_at: None,
        }
    }

    /// For `refund-*` kinds: the provider's id of the one refund the event is about (what
    /// `refund` answered as `provider_refund_id`). `amount` is then that refund's amount; without
    /// it, `amount` is the payment's cumulative refunded amount.
    pub fn refund(mut self, provider_refund_id: impl Into<String>) -> Self {
        self.provider_refund_id = Some(provider_refund_id.into());
        self
    }

    pub fn amount(mut self, amount: Money) -> Self {
        self.amount = Some(amount);
        self
    }

    /// The provider's reason (a decline code, a SEPA return code such as `AM04`).
    pub fn reason_code(mut self, code: impl Into<String>) -> Self {
        self.reason_code = Some(code.into());
        self
    }

    /// When the provider says the event happened, in Unix milliseconds.
    pub fn occurred_at(mut self, unix_ms: u64) -> Self {
        self.occurred_at = Some(unix_ms);
        self
    }
}

impl WebhookReply {
    /// `200`, `application/json`, `{"received":true}`: enough for providers that want any 2xx.
    pub fn ok() -> Self {
        Self::json(r#"{"received":true}"#)
    }

    /// `200` with a JSON body (already serialised).
    pub fn json(body: impl Into<String>) -> Self {
        Self::with("application/json", body.into().into_bytes())
    }

    /// `200` with a `text/plain` body, e.g. Adyen's `[accepted]`.
    pub fn text(body: impl Into<String>) -> Self {
        Self::with("text/plain", body.into().into_bytes())
    }

    /// `200` with any content type and body (at most 64 KiB).
    pub fn with(content_type: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self { status: 200, content_type: content_type.into(), body: body.into() }
    }

    /// Another 2xx status (the host refuses anything outside 200-299).
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

impl WebhookBatch {
    /// These events (at most 100), answered [`WebhookReply::ok`] unless [`WebhookBatch::reply`]
    /// says otherwise.
    pub fn new(events: Vec<WebhookEvent>) -> Self {
        Self { events, reply: WebhookReply::ok() }
    }

    /// A request that carries one event.
    pub fn one(event: WebhookEvent) -> Self {
        Self::new(vec![event])
    }

    /// An authentic request with nothing for the host to act on.
    pub fn empty() -> Self {
        Self::new(Vec::new())
    }

    /// The answer the provider expects once every event is recorded.
    pub fn reply(mut self, reply: WebhookReply) -> Self {
        self.reply = reply;
        self
    }
}
