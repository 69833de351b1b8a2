//! The worker a host spawns: the `payments` consumer (group `chain-worker`) and the pipeline
//! loop, side by side until a stop signal.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lessor_events::{Event, EventBus, EventData, EventHandler, HandlerError, PAYMENTS, Subscription, run_consumer};
use lessor_store::Db;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::CONSUMER_GROUP;
use crate::api::{TonApi, ToncenterClient};
use crate::config::ChainSettings;
use crate::metrics::ChainMetrics;
use crate::pipeline::{ChainError, ChainPipeline};
use crate::store::ChainStore;

/// The `payment.completed` handler: stores the payment's record (once per payment) and wakes
/// the pipeline. The event is acknowledged only after the record is committed.
pub struct ChainHandler {
    pipeline: Arc<ChainPipeline>,
    wake: Arc<Notify>,
}

impl ChainHandler {
    pub fn new(pipeline: Arc<ChainPipeline>, wake: Arc<Notify>) -> Self {
        Self { pipeline, wake }
    }
}

#[async_trait]
impl EventHandler for ChainHandler {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let EventData::PaymentCompleted(payment) = &event.data else {
            return Ok(());
        };
        self.pipeline.accept(event.id, payment).await.map_err(HandlerError::new)?;
        self.wake.notify_one();
        Ok(())
    }
}

/// The chain worker: build it from checked settings, then `tokio::spawn(worker.run(stop))`.
/// Any number of replicas may run one: they share the consumer group, and the wallet's lease
/// lets one at a time sign and send.
#[derive(Clone)]
pub struct ChainWorker {
    pipeline: Arc<ChainPipeline>,
    bus: Arc<dyn EventBus>,
    subscription: Subscription,
    wake: Arc<Notify>,
    metrics: ChainMetrics,
}

impl std::fmt::Debug for ChainWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainWorker")
            .field("pipeline", &self.pipeline)
            .field("subscription", &self.subscription)
            .finish()
    }
}

impl ChainWorker {
    /// A worker talking to the configured toncenter-compatible API.
    pub fn new(
        db: Db,
        settings: &ChainSettings,
        bus: Arc<dyn EventBus>,
        metrics: ChainMetrics,
    ) -> Result<Self, ChainError> {
        let api = Arc::new(ToncenterClient::new(&settings.api)?);
        Ok(Self::with_api(db, settings, api, bus, metrics))
    }

    /// A worker talking to any [`TonApi`].
    pub fn with_api(
        db: Db,
        settings: &ChainSettings,
        api: Arc<dyn TonApi>,
        bus: Arc<dyn EventBus>,
        metrics: ChainMetrics,
    ) -> Self {
        let pipeline = Arc::new(ChainPipeline::new(ChainStore::new(db), api, settings, metrics.clone()));
        Self::from_pipeline(pipeline, bus, metrics)
    }

    /// A worker around an existing pipeline (tests build one with a holder name of their own).
    pub fn from_pipeline(pipeline: Arc<ChainPipeline>, bus: Arc<dyn EventBus>, metrics: ChainMetrics) -> Self {
        Self {
            pipeline,
            bus,
            subscription: Subscription::new(PAYMENTS, CONSUMER_GROUP),
            wake: Arc::new(Notify::new()),
            metrics,
        }
    }

    /// Changes how the consumer reads (`block`, `claim_idle`, `batch`, its name). The stream
    /// and group stay `payments` / `chain-worker`.
    pub fn with_subscription(mut self, configure: impl FnOnce(&mut Subscription)) -> Self {
        configure(&mut self.subscription);
        self.subscription.stream = PAYMENTS.to_owned();
        self.subscription.group = CONSUMER_GROUP.to_owned();
        self
    }

    pub fn subscription(&self) -> &Subscription {
        &self.subscription
    }

    pub fn pipeline(&self) -> Arc<ChainPipeline> {
        self.pipeline.clone()
    }

    /// The event handler, for a host that runs the consumer itself.
    pub fn handler(&self) -> Arc<dyn EventHandler> {
        Arc::new(ChainHandler::new(self.pipeline.clone(), self.wake.clone()))
    }

    /// Runs the consumer and the pipeline loop until `stop` resolves; then the consumer closes
    /// and the wallet's lease is released.
    pub async fn run(self, stop: impl Future<Output = ()> + Send) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let signal = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|stopped| *stopped).await;
            }
        };
        let consumer = self.bus.subscribe(self.subscription.clone());
        let handler = self.handler();
        tracing::info!(
            wallet = %self.pipeline.wallet_display(),
            wallet_raw = %self.pipeline.wallet_address().to_hex(),
            consumer = %self.subscription.consumer,
            "chain worker started"
        );
        tokio::join!(
            run_consumer(consumer, handler, |_| {}, signal()),
            run_pipeline(self.pipeline.clone(), self.wake.clone(), self.metrics.clone(), signal()),
            async move {
                stop.await;
                stop_tx.send_replace(true);
            },
        );
        tracing::info!("chain worker stopped");
    }
}

/// `base · 1.5^n`, at most `max`.
fn poll_delay(base: Duration, n: u32, max: Duration) -> Duration {
    base.mul_f64(1.5f64.powi(n.min(30) as i32)).min(max)
}

/// Runs pipeline passes until `stop`: back to back while there is work, polling with backoff
/// while a message waits for inclusion, backing off while passes fail, idle until woken (or a
/// poll interval passes: another replica may have accepted payments).
pub async fn run_pipeline(
    pipeline: Arc<ChainPipeline>,
    wake: Arc<Notify>,
    metrics: ChainMetrics,
    stop: impl Future<Output = ()> + Send,
) {
    tokio::pin!(stop);
    let timing = pipeline.timing().clone();
    let mut failures = 0u32;
    let mut waiting: Option<(Uuid, u32)> = None;
    loop {
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let result = tokio::select! {
            () = &mut stop => break,
            result = pipeline.run_once() => result,
        };
        let (delay, wakeable) = match result {
            Err(e) => {
                failures += 1;
                metrics.api_errors.inc();
                let delay = poll_delay(timing.poll_interval, failures * 2, timing.error_backoff_max);
                tracing::warn!(error = %e, failures, retry_in_ms = delay.as_millis() as u64, "chain pass failed");
                (delay, false)
            }
            Ok(pass) => {
                failures = 0;
                if !pass.leader {
                    waiting = None;
                    ((timing.lease_ttl / 4).max(timing.poll_interval), false)
                } else if let Some(id) = pass.waiting_on {
                    let n = match waiting {
                        Some((current, n)) if current == id => n + 1,
                        _ => 0,
                    };
                    waiting = Some((id, n));
                    (poll_delay(timing.poll_interval, n, timing.max_poll_interval), false)
                } else if pass.blocked.is_some() {
                    waiting = None;
                    (timing.max_poll_interval, true)
                } else if pass.progressed() {
                    waiting = None;
                    (Duration::ZERO, false)
                } else {
                    waiting = None;
                    (timing.poll_interval, true)
                }
            }
        };
        if delay.is_zero() {
            continue;
        }
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(delay) => {}
            () = &mut woken, if wakeable => {}
        }
    }
    pipeline.release().await;
}
