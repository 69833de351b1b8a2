//! What `serve` runs for payments besides the API, on every replica (each pass is safe to run
//! concurrently: rows are claimed in the database).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lessor_payments::{CollectionJob, IdempotencyStore, PaymentService};

/// Runs `pass` every `interval` until `stop` completes; a failed pass is logged and retried at
/// the next tick.
pub async fn every<F, Fut>(name: &'static str, interval: Duration, stop: impl Future<Output = ()>, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    let mut stop = std::pin::pin!(stop);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => {}
        }
        match pass().await {
            Ok(summary) if summary.is_empty() => {}
            Ok(summary) => tracing::info!(worker = name, "{summary}"),
            Err(e) => tracing::warn!(worker = name, error = %e, "pass failed"),
        }
    }
}

/// Asks providers again about payments and refunds whose outcome is unknown.
pub async fn reconcile(payments: Arc<PaymentService>, interval: Duration, stop: impl Future<Output = ()>) {
    every("reconciliation", interval, stop, || {
        let payments = payments.clone();
        async move {
            let r = payments.reconcile_due(Utc::now(), 100).await.map_err(|e| e.to_string())?;
            Ok(if r.payments_checked + r.refunds_checked == 0 { String::new() } else { format!("{r:?}") })
        }
    })
    .await
}

/// Charges due installments through each lease's payment method.
pub async fn collect(job: Arc<CollectionJob>, interval: Duration, stop: impl Future<Output = ()>) {
    every("collection", interval, stop, || {
        let job = job.clone();
        async move {
            let r = job.run_once(Utc::now().date_naive()).await.map_err(|e| e.to_string())?;
            Ok(if r.attempted + r.marked_overdue + r.errors == 0 { String::new() } else { format!("{r:?}") })
        }
    })
    .await
}

/// Forgets idempotency keys past their retention.
pub async fn prune_keys(keys: Arc<IdempotencyStore>, stop: impl Future<Output = ()>) {
    every("idempotency-keys", Duration::from_secs(3600), stop, || {
        let keys = keys.clone();
        async move {
            let n = keys.prune(Utc::now()).await.map_err(|e| e.to_string())?;
            Ok(if n == 0 { String::new() } else { format!("pruned {n} expired idempotency keys") })
        }
    })
    .await
}
