//! The payment and refund state machines, written down in one place.
//!
//! ```text
//! pending ──┬──> requires_action ──┬──> processing ──┬──> succeeded ──┬──> partially_refunded ──┬──> refunded
//!           │                      │                 │                │   (↺ another partial)     │
//!           ├──> processing        ├──> succeeded    └──> failed      ├──> refunded               └──> returned
//!           ├──> succeeded         └──> failed                        └──> returned
//!           └──> failed
//! ```
//!
//! In words ([`PaymentStatus::can_transition_to`] is the only authority):
//!
//! - `pending` (row written, provider not answered yet, or outcome unknown) → `processing`,
//!   `requires_action`, `succeeded`, `failed`.
//! - `requires_action` (the payer must act: 3-D Secure, bank redirect) → `processing`,
//!   `succeeded`, `failed`.
//! - `processing` (accepted, final result by webhook) → `succeeded`, `failed`. It never goes back
//!   to `requires_action`, so the two cannot bounce between each other on reordered webhooks.
//! - `succeeded` → `partially_refunded`, `refunded`, `returned`.
//! - `partially_refunded` → `partially_refunded` (another partial refund: the only move that keeps
//!   the status, because the refunded amount changes), `refunded`, `returned`.
//! - `failed`, `refunded`, `returned` are final. `succeeded → failed` is not allowed: a settled
//!   payment that comes back (SEPA return, chargeback) is `returned`.
//!
//! A refund is `pending → succeeded | failed` ([`RefundStatus`]).
//!
//! Every stored change is compare-and-set on the current status, so two writers cannot both
//! move a payment: the loser sees the winner's status and judges again.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a payment is in its life. Serialised in lower case (`"requires_action"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    RequiresAction,
    Processing,
    Succeeded,
    Failed,
    PartiallyRefunded,
    Refunded,
    Returned,
}

/// A move the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a payment cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub from: PaymentStatus,
    pub to: PaymentStatus,
}

/// A move the refund state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a refund cannot go from {from} to {to}")]
pub struct IllegalRefundTransition {
    pub from: RefundStatus,
    pub to: RefundStatus,
}

/// The string is not a status name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a {kind} status")]
pub struct UnknownStatus {
    /// `"payment"` or `"refund"`.
    pub kind: &'static str,
    pub value: String,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 8] = [
        PaymentStatus::Pending,
        PaymentStatus::RequiresAction,
        PaymentStatus::Processing,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::PartiallyRefunded,
        PaymentStatus::Refunded,
        PaymentStatus::Returned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::RequiresAction => "requires_action",
            PaymentStatus::Processing => "processing",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::Returned => "returned",
        }
    }

    /// The transition table; see the module documentation.
    pub fn can_transition_to(self, to: PaymentStatus) -> bool {
        use PaymentStatus::*;
        matches!(
            (self, to),
            (Pending, Processing | RequiresAction | Succeeded | Failed)
                | (RequiresAction, Processing | Succeeded | Failed)
                | (Processing, Succeeded | Failed)
                | (Succeeded, PartiallyRefunded | Refunded | Returned)
                | (PartiallyRefunded, PartiallyRefunded | Refunded | Returned)
        )
    }

    /// The new status, or why the move is not allowed.
    pub fn transition(self, to: PaymentStatus) -> Result<PaymentStatus, IllegalTransition> {
        if self.can_transition_to(to) { Ok(to) } else { Err(IllegalTransition { from: self, to }) }
    }

    /// Whether `to` lies ahead of `self`: reachable in one or more allowed moves. A webhook
    /// for a status ahead but not next (a return reported while the payment is still
    /// `processing`) is early, not stale.
    pub fn can_reach(self, to: PaymentStatus) -> bool {
        let mut seen = vec![self];
        let mut frontier = vec![self];
        while let Some(from) = frontier.pop() {
            for next in PaymentStatus::ALL {
                if from.can_transition_to(next) {
                    if next == to {
                        return true;
                    }
                    if !seen.contains(&next) {
                        seen.push(next);
                        frontier.push(next);
                    }
                }
            }
        }
        false
    }

    /// `failed`, `refunded` and `returned` never change again.
    pub fn is_final(self) -> bool {
        !PaymentStatus::ALL.into_iter().any(|to| self.can_transition_to(to))
    }

    /// Money was captured and not (wholly) given back: refunds may be asked for.
    pub fn is_refundable(self) -> bool {
        matches!(self, PaymentStatus::Succeeded | PaymentStatus::PartiallyRefunded)
    }

    /// The provider has not given a final answer yet.
    pub fn is_open(self) -> bool {
        matches!(self, PaymentStatus::Pending | PaymentStatus::RequiresAction | PaymentStatus::Processing)
    }

    /// The status after refunds totalling `refunded` of a payment of `amount`: the target of a
    /// refund's success, checked against the table like any move.
    pub fn after_refund(self, refunded: i64, amount: i64) -> Result<PaymentStatus, IllegalTransition> {
        let to = if refunded >= amount { PaymentStatus::Refunded } else { PaymentStatus::PartiallyRefunded };
        self.transition(to)
    }
}

impl FromStr for PaymentStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PaymentStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus { kind: "payment", value: s.to_owned() })
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a refund is: asked for (outcome not known yet), or answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

impl RefundStatus {
    pub const ALL: [RefundStatus; 3] = [RefundStatus::Pending, RefundStatus::Succeeded, RefundStatus::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }

    /// `pending → succeeded | failed`; nothing else.
    pub fn can_transition_to(self, to: RefundStatus) -> bool {
        matches!((self, to), (RefundStatus::Pending, RefundStatus::Succeeded | RefundStatus::Failed))
    }

    pub fn transition(self, to: RefundStatus) -> Result<RefundStatus, IllegalRefundTransition> {
        if self.can_transition_to(to) { Ok(to) } else { Err(IllegalRefundTransition { from: self, to }) }
    }
}

impl FromStr for RefundStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RefundStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus { kind: "refund", value: s.to_owned() })
    }
}

impl fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::PaymentStatus::*;
    use super::*;
    use proptest::prelude::*;

    /// The table, written out again independently of `can_transition_to`.
    const ALLOWED: &[(PaymentStatus, PaymentStatus)] = &[
        (Pending, Processing),
        (Pending, RequiresAction),
        (Pending, Succeeded),
        (Pending, Failed),
        (RequiresAction, Processing),
        (RequiresAction, Succeeded),
        (RequiresAction, Failed),
        (Processing, Succeeded),
        (Processing, Failed),
        (Succeeded, PartiallyRefunded),
        (Succeeded, Refunded),
        (Succeeded, Returned),
        (PartiallyRefunded, PartiallyRefunded),
        (PartiallyRefunded, Refunded),
        (PartiallyRefunded, Returned),
    ];

    #[test]
    fn exactly_the_documented_transitions_are_allowed() {
        for from in PaymentStatus::ALL {
            for to in PaymentStatus::ALL {
                let expected = ALLOWED.contains(&(from, to));
                assert_eq!(from.can_transition_to(to), expected, "{from} -> {to}");
                match from.transition(to) {
                    Ok(status) => assert!(expected && status == to, "{from} -> {to}"),
                    Err(error) => assert!(!expected && error == IllegalTransition { from, to }, "{from} -> {to}"),
                }
            }
        }
    }

    #[test]
    fn a_settled_payment_is_returned_not_failed() {
        assert!(Succeeded.transition(Failed).is_err());
        assert!(Succeeded.transition(Returned).is_ok());
        assert_eq!(
            Succeeded.transition(Failed).unwrap_err().to_string(),
            "a payment cannot go from succeeded to failed"
        );
    }

    #[test]
    fn final_statuses() {
        let finals: Vec<_> = PaymentStatus::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, [Failed, Refunded, Returned]);
    }

    #[test]
    fn reachability_tells_early_events_from_stale_ones() {
        assert!(Processing.can_reach(Returned), "a return may arrive before the settlement");
        assert!(Pending.can_reach(Refunded));
        assert!(!Succeeded.can_reach(Processing), "never backwards");
        assert!(!Failed.can_reach(Succeeded));
        assert!(!Processing.can_reach(RequiresAction));
        assert!(!Refunded.can_reach(Refunded));
    }

    #[test]
    fn refunds_move_to_partially_refunded_then_refunded() {
        assert_eq!(Succeeded.after_refund(40, 100), Ok(PartiallyRefunded));
        assert_eq!(PartiallyRefunded.after_refund(70, 100), Ok(PartiallyRefunded));
        assert_eq!(PartiallyRefunded.after_refund(100, 100), Ok(Refunded));
        assert_eq!(Succeeded.after_refund(100, 100), Ok(Refunded));
        assert!(Processing.after_refund(10, 100).is_err());
        assert!(Refunded.after_refund(100, 100).is_err());
    }

    #[test]
    fn refund_table() {
        use RefundStatus as R;
        for from in R::ALL {
            for to in R::ALL {
                let expected = from == R::Pending && to != R::Pending;
                assert_eq!(from.can_transition_to(to), expected, "{from} -> {to}");
                assert_eq!(from.transition(to).is_ok(), expected);
            }
        }
    }

    #[test]
    fn names_agree_with_serde_and_are_lower_case() {
        for status in PaymentStatus::ALL {
            let name = status.as_str();
            assert_eq!(name, name.to_lowercase());
            assert_eq!(name.parse::<PaymentStatus>(), Ok(status));
            assert_eq!(serde_json::to_string(&status).unwrap(), format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<PaymentStatus>(&format!("\"{name}\"")).unwrap(), status);
        }
        for status in RefundStatus::ALL {
            assert_eq!(status.as_str().parse::<RefundStatus>(), Ok(status));
            assert_eq!(serde_json::to_string(&status).unwrap(), format!("\"{}\"", status.as_str()));
        }
        assert_eq!(
            "Succeeded".parse::<PaymentStatus>(),
            Err(UnknownStatus { kind: "payment", value: "Succeeded".into() })
        );
    }

    fn any_status() -> impl Strategy<Value = PaymentStatus> {
        (0..PaymentStatus::ALL.len()).prop_map(|i| PaymentStatus::ALL[i])
    }

    proptest! {
        /// Applying random moves, keeping only the allowed ones, never leaves a final status,
        /// never goes from a settled status back to an open one, and never bypasses the table.
        #[test]
        fn random_walks_obey_the_table(moves in proptest::collection::vec(any_status(), 0..40)) {
            let mut current = Pending;
            let mut settled = false;
            for to in moves {
                match current.transition(to) {
                    Ok(next) => {
                        prop_assert!(!current.is_final());
                        prop_assert!(ALLOWED.contains(&(current, next)));
                        if settled {
                            prop_assert!(!next.is_open(), "{} after settlement", next);
                        }
                        settled |= !next.is_open();
                        current = next;
                    }
                    Err(e) => prop_assert_eq!(e, IllegalTransition { from: current, to }),
                }
            }
        }
    }
}
