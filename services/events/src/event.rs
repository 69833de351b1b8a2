//! The event envelope, `lessor.event/1`, and the typed payloads of the event types we know.
//!
//! ```json
//! {"schema": "lessor.event/1", "id": "…uuid…", "type": "payment.completed",
//!  "occurred_at": "2025-01-31T12:00:00.123456Z", "data": {…}}
//! ```
//!
//! Versioning: adding a field to a payload (one that old readers may ignore) keeps the
//! schema version; renaming, removing or retyping a field, or changing the envelope, bumps it.
//! Readers ignore fields they do not know, and an event type they do not know is carried as
//! raw JSON in [`EventData::Other`], so old consumers survive new producers.

use chrono::{DateTime, SubsecRound, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// The schema this crate writes and reads.
pub const SCHEMA: &str = "lessor.event/1";

pub const PAYMENT_COMPLETED: &str = "payment.completed";
pub const PAYMENT_FAILED: &str = "payment.failed";
pub const PAYMENT_REFUNDED: &str = "payment.refunded";

/// One domain event. `id` is unique across all events and is what consumers deduplicate on.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub data: EventData,
}

/// The payload, by event type.
#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    PaymentCompleted(PaymentCompleted),
    PaymentFailed(PaymentFailed),
    PaymentRefunded(PaymentRefunded),
    /// A type this version does not know, kept as it came.
    Other {
        event_type: String,
        data: serde_json::Value,
    },
}

/// A payment succeeded. `amount` is in integer minor units of `currency` (ISO 4217).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCompleted {
    pub payment_id: Uuid,
    pub lease_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installment_id: Option<Uuid>,
    pub amount: i64,
    pub currency: String,
    pub provider: String,
    pub provider_tx_id: String,
}

/// A payment failed for good. `code` is the provider error variant (`declined`,
/// `invalid-request`, `provider-unavailable`, …); `message` is safe to show an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFailed {
    pub payment_id: Uuid,
    pub lease_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installment_id: Option<Uuid>,
    pub amount: i64,
    pub currency: String,
    pub provider: String,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A payment was refunded, wholly or in part: `amount` is what this refund returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub payment_id: Uuid,
    pub refund_id: Uuid,
    pub lease_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub provider: String,
    pub provider_refund_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not an event envelope: {0}")]
    Json(#[from] serde_json::Error),
}

impl Event {
    /// A new event with a fresh id, occurring now (to the microsecond).
    pub fn new(data: EventData) -> Self {
        Self { id: Uuid::new_v4(), occurred_at: Utc::now().trunc_subsecs(6), data }
    }

    pub fn event_type(&self) -> &str {
        self.data.event_type()
    }

    /// The envelope as JSON text, as stored in the outbox and published.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event always serialises")
    }

    pub fn from_json(text: &str) -> Result<Self, DecodeError> {
        Ok(serde_json::from_str(text)?)
    }
}

impl EventData {
    pub fn event_type(&self) -> &str {
        match self {
            Self::PaymentCompleted(_) => PAYMENT_COMPLETED,
            Self::PaymentFailed(_) => PAYMENT_FAILED,
            Self::PaymentRefunded(_) => PAYMENT_REFUNDED,
            Self::Other { event_type, .. } => event_type,
        }
    }

    fn to_value(&self) -> serde_json::Value {
        let value = match self {
            Self::PaymentCompleted(p) => serde_json::to_value(p),
            Self::PaymentFailed(p) => serde_json::to_value(p),
            Self::PaymentRefunded(p) => serde_json::to_value(p),
            Self::Other { data, .. } => return data.clone(),
        };
        value.expect("payloads always serialise")
    }

    fn from_value(event_type: String, data: serde_json::Value) -> Result<Self, serde_json::Error> {
        Ok(match event_type.as_str() {
            PAYMENT_COMPLETED => Self::PaymentCompleted(serde_json::from_value(data)?),
            PAYMENT_FAILED => Self::PaymentFailed(serde_json::from_value(data)?),
            PAYMENT_REFUNDED => Self::PaymentRefunded(serde_json::from_value(data)?),
            _ => Self::Other { event_type, data },
        })
    }
}

impl From<PaymentCompleted> for EventData {
    fn from(p: PaymentCompleted) -> Self {
        Self::PaymentCompleted(p)
    }
}

impl From<PaymentFailed> for EventData {
    fn from(p: PaymentFailed) -> Self {
        Self::PaymentFailed(p)
    }
}

impl From<PaymentRefunded> for EventData {
    fn from(p: PaymentRefunded) -> Self {
        Self::PaymentRefunded(p)
    }
}

/// The envelope on the wire, fields in this order.
#[derive(Serialize, Deserialize)]
struct Envelope {
    schema: String,
    id: Uuid,
    #[serde(rename = "type")]
    event_type: String,
    occurred_at: DateTime<Utc>,
    #[serde(default)]
    data: serde_json::Value,
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Envelope {
            schema: SCHEMA.to_owned(),
            id: self.id,
            event_type: self.event_type().to_owned(),
            occurred_at: self.occurred_at,
            data: self.data.to_value(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let envelope = Envelope::deserialize(deserializer)?;
        if envelope.schema != SCHEMA {
            return Err(D::Error::custom(format_args!(
                "unsupported schema `{}` (this reader knows `{SCHEMA}`)",
                envelope.schema
            )));
        }
        let data = EventData::from_value(envelope.event_type, envelope.data).map_err(D::Error::custom)?;
        Ok(Self { id: envelope.id, occurred_at: envelope.occurred_at, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn completed() -> Event {
        Event::new(
            PaymentCompleted {
                payment_id: Uuid::new_v4(),
                lease_id: Uuid::new_v4(),
                installment_id: None,
                amount: 45_000,
                currency: "EUR".into(),
                provider: "stripe".into(),
                provider_tx_id: "pi_123".into(),
            }
            .into(),
        )
    }

    #[test]
    fn envelope_has_the_documented_shape() {
        let event = completed();
        let value: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap();
        assert_eq!(value["schema"], "lessor.event/1");
        assert_eq!(value["id"], event.id.to_string());
        assert_eq!(value["type"], "payment.completed");
        assert!(DateTime::parse_from_rfc3339(value["occurred_at"].as_str().unwrap()).is_ok());
        assert_eq!(value["data"]["amount"], 45_000);
        assert_eq!(value["data"]["provider_tx_id"], "pi_123");
        assert!(value["data"].get("installment_id").is_none(), "absent optional fields are left out");
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5);
    }

    #[test]
    fn every_known_type_round_trips() {
        let ids = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let events = [
            completed(),
            Event::new(
                PaymentFailed {
                    payment_id: ids.0,
                    lease_id: ids.1,
                    installment_id: Some(ids.2),
                    amount: 1,
                    currency: "USD".into(),
                    provider: "bank".into(),
                    code: "declined".into(),
                    message: Some("insufficient funds".into()),
                }
                .into(),
            ),
            Event::new(
                PaymentRefunded {
                    payment_id: ids.0,
                    refund_id: ids.2,
                    lease_id: ids.1,
                    amount: 500,
                    currency: "CHF".into(),
                    provider: "stripe".into(),
                    provider_refund_id: "re_1".into(),
                }
                .into(),
            ),
        ];
        for event in events {
            assert_eq!(Event::from_json(&event.to_json()).unwrap(), event);
        }
    }

    #[test]
    fn unknown_types_and_fields_are_carried_not_refused() {
        let id = Uuid::new_v4();
        let text = json!({
            "schema": "lessor.event/1", "id": id, "type": "lease.terminated",
            "occurred_at": "2025-01-31T12:00:00Z", "data": {"lease_id": "x", "reason": "early"}
        })
        .to_string();
        let event = Event::from_json(&text).unwrap();
        assert_eq!(event.event_type(), "lease.terminated");
        assert!(matches!(&event.data, EventData::Other { data, .. } if data["reason"] == "early"));
        // Written back unchanged.
        let again: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap();
        assert_eq!(again, serde_json::from_str::<serde_json::Value>(&text).unwrap());

        // A field added by a newer producer (same version) is ignored.
        let mut value: serde_json::Value = serde_json::from_str(&completed().to_json()).unwrap();
        value["data"]["fee"] = json!(12);
        assert!(Event::from_json(&value.to_string()).is_ok());
    }

    #[test]
    fn another_schema_version_or_a_broken_payload_is_an_error() {
        let mut value: serde_json::Value = serde_json::from_str(&completed().to_json()).unwrap();
        value["schema"] = json!("lessor.event/2");
        let err = Event::from_json(&value.to_string()).unwrap_err();
        assert!(err.to_string().contains("lessor.event/2"), "{err}");

        let mut value: serde_json::Value = serde_json::from_str(&completed().to_json()).unwrap();
        value["data"]["amount"] = json!("450.00");
        assert!(Event::from_json(&value.to_string()).is_err(), "money is integer minor units");
        assert!(Event::from_json("{}").is_err());
    }
}
