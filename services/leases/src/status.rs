//! Lease and installment status, and the lease life cycle.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a lease is in its life cycle.
///
/// ```text
/// draft ──> active ──> completed
///   │          │
///   └──────────┴─────> terminated
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaseStatus {
    Draft,
    Active,
    Completed,
    Terminated,
}

/// A move the life cycle does not allow, including staying in the same status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a lease cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub from: LeaseStatus,
    pub to: LeaseStatus,
}

/// The string is not a status name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a {kind} status")]
pub struct UnknownStatus {
    /// `"lease"` or `"installment"`.
    pub kind: &'static str,
    pub value: String,
}

impl LeaseStatus {
    pub const ALL: [LeaseStatus; 4] =
        [LeaseStatus::Draft, LeaseStatus::Active, LeaseStatus::Completed, LeaseStatus::Terminated];

    pub fn as_str(self) -> &'static str {
        match self {
            LeaseStatus::Draft => "draft",
            LeaseStatus::Active => "active",
            LeaseStatus::Completed => "completed",
            LeaseStatus::Terminated => "terminated",
        }
    }

    /// Draft to active or terminated; active to completed or terminated; nothing else.
    pub fn can_transition_to(self, to: LeaseStatus) -> bool {
        use LeaseStatus::*;
        matches!((self, to), (Draft, Active) | (Draft, Terminated) | (Active, Completed) | (Active, Terminated))
    }

    /// The new status, or why the move is not allowed.
    pub fn transition(self, to: LeaseStatus) -> Result<LeaseStatus, IllegalTransition> {
        if self.can_transition_to(to) { Ok(to) } else { Err(IllegalTransition { from: self, to }) }
    }

    /// Completed and terminated leases never change again.
    pub fn is_final(self) -> bool {
        !LeaseStatus::ALL.into_iter().any(|to| self.can_transition_to(to))
    }
}

impl FromStr for LeaseStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LeaseStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus { kind: "lease", value: s.to_owned() })
    }
}

impl fmt::Display for LeaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether one installment of a schedule has been paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstallmentStatus {
    Due,
    Paid,
    Overdue,
}

impl InstallmentStatus {
    pub const ALL: [InstallmentStatus; 3] =
        [InstallmentStatus::Due, InstallmentStatus::Paid, InstallmentStatus::Overdue];

    pub fn as_str(self) -> &'static str {
        match self {
            InstallmentStatus::Due => "due",
            InstallmentStatus::Paid => "paid",
            InstallmentStatus::Overdue => "overdue",
        }
    }
}

impl FromStr for InstallmentStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InstallmentStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus { kind: "installment", value: s.to_owned() })
    }
}

impl fmt::Display for InstallmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::LeaseStatus::*;
    use super::*;

    #[test]
    fn exactly_four_transitions_are_allowed() {
        let allowed = [(Draft, Active), (Draft, Terminated), (Active, Completed), (Active, Terminated)];
        for from in LeaseStatus::ALL {
            for to in LeaseStatus::ALL {
                let expected = allowed.contains(&(from, to));
                assert_eq!(from.can_transition_to(to), expected, "{from} -> {to}");
                let result = from.transition(to);
                if expected {
                    assert_eq!(result, Ok(to));
                } else {
                    assert_eq!(result, Err(IllegalTransition { from, to }));
                }
            }
        }
    }

    #[test]
    fn staying_put_is_illegal() {
        for status in LeaseStatus::ALL {
            assert!(status.transition(status).is_err());
        }
    }

    #[test]
    fn illegal_transition_names_both_ends() {
        let error = Completed.transition(Active).unwrap_err();
        assert_eq!(error.to_string(), "a lease cannot go from completed to active");
    }

    #[test]
    fn only_completed_and_terminated_are_final() {
        let finals: Vec<_> = LeaseStatus::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, [Completed, Terminated]);
    }

    #[test]
    fn lease_status_names_agree_with_serde() {
        for status in LeaseStatus::ALL {
            let name = status.as_str();
            assert_eq!(name.parse::<LeaseStatus>(), Ok(status));
            assert_eq!(serde_json::to_string(&status).unwrap(), format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<LeaseStatus>(&format!("\"{name}\"")).unwrap(), status);
        }
        assert!("Active".parse::<LeaseStatus>().is_err());
        assert!("paid".parse::<LeaseStatus>().is_err());
    }

    #[test]
    fn installment_status_names_agree_with_serde() {
        for status in InstallmentStatus::ALL {
            let name = status.as_str();
            assert_eq!(name.parse::<InstallmentStatus>(), Ok(status));
            assert_eq!(serde_json::to_string(&status).unwrap(), format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<InstallmentStatus>(&format!("\"{name}\"")).unwrap(), status);
        }
        assert_eq!(
            "late".parse::<InstallmentStatus>(),
            Err(UnknownStatus { kind: "installment", value: "late".to_owned() })
        );
    }
}
