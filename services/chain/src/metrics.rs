//! Prometheus metrics of the chain worker. Clones share the same counters; register once.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Counters and the confirmation-time histogram. Registered under the registry's prefix as
/// `chain_messages_submitted_total`, `chain_messages_confirmed_total`,
/// `chain_messages_expired_total`, `chain_payments_failed_total`,
/// `chain_api_errors_total` and `chain_confirmation_seconds`.
#[derive(Debug, Clone)]
pub struct ChainMetrics {
    pub submitted: Counter,
    pub confirmed: Counter,
    pub expired: Counter,
    pub failed: Counter,
    pub api_errors: Counter,
    pub confirmation_seconds: Histogram,
}

impl Default for ChainMetrics {
    fn default() -> Self {
        Self {
            submitted: Counter::default(),
            confirmed: Counter::default(),
            expired: Counter::default(),
            failed: Counter::default(),
            api_errors: Counter::default(),
            // Blocks come every few seconds; a re-sent message takes minutes.
            confirmation_seconds: Histogram::new([1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 900.0]),
        }
    }
}

impl ChainMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&self, registry: &mut Registry) {
        let chain = registry.sub_registry_with_prefix("chain");
        chain.register(
            "messages_submitted",
            "Receipt transfer messages accepted by the TON API (first send of each signed message)",
            self.submitted.clone(),
        );
        chain.register(
            "messages_confirmed",
            "Receipt transfers found in the operator wallet's transactions",
            self.confirmed.clone(),
        );
        chain.register(
            "messages_expired",
            "Messages not included before valid_until, signed again with a fresh seqno",
            self.expired.clone(),
        );
        chain.register("payments_failed", "Payments given up after too many messages", self.failed.clone());
        chain.register(
            "api_errors",
            "Pipeline passes that failed on the TON API or the database",
            self.api_errors.clone(),
        );
        chain.register(
            "confirmation_seconds",
            "Time from a payment's first submission to its confirmation",
            self.confirmation_seconds.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exposed_under_their_names() {
        let metrics = ChainMetrics::new();
        let mut registry = Registry::with_prefix("lessor");
        metrics.register(&mut registry);
        metrics.clone().submitted.inc();
        metrics.confirmation_seconds.observe(3.0);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("lessor_chain_messages_submitted_total 1"), "{text}");
        assert!(text.contains("lessor_chain_confirmation_seconds_count 1"), "{text}");
        assert!(text.contains("lessor_chain_messages_expired_total 0"), "{text}");
    }
}
