//! Background tasks under supervision.
//!
//! Each task is registered by a stable name with a factory that builds a fresh run of it (the
//! loop's state is made by the factory, so a run that ended can be started again). A run that
//! panics, returns an error, or returns before shutdown is restarted after a backoff (100 ms,
//! doubling to 30 s; back to 100 ms once a run lasted [`Policy::healthy_after`]). Each restart
//! is counted on `/metrics` as `lessor_task_restarts_total{task}`; `lessor_task_up{task}` is 1
//! while a run is going. A task that failed [`Policy::max_failures`] times in a row within
//! [`Policy::failure_window`] is down for good: it is not started again and `/ready` answers 503
//! naming it.
//!
//! On shutdown no task is restarted; [`OnStop::Abort`] tasks are cancelled at once and
//! [`OnStop::Finish`] tasks (the relay, the chain worker, the indexer) get until
//! [`Policy::finish_within`] to end their pass.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::metrics::Metrics;

/// One run of a task.
pub type TaskRun = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// Builds a fresh run of a task; called again for every restart.
pub type Factory = Box<dyn FnMut(Stop) -> TaskRun + Send>;

/// Resolves once shutdown begins (a task's run gets one each time it starts).
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    fn is_set(&self) -> bool {
        *self.0.borrow()
    }
}

/// What shutdown does to a task's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStop {
    /// Cancelled at once.
    Abort,
    /// Sees [`Stop`] and ends on its own (finishing its pass), within [`Policy::finish_within`].
    Finish,
}

/// Restart and give-up rules.
#[derive(Debug, Clone)]
pub struct Policy {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// A run that lasted this long resets the backoff and the failure count.
    pub healthy_after: Duration,
    /// Failures in a row (within `failure_window`) after which a task is down for good.
    pub max_failures: u32,
    pub failure_window: Duration,
    /// How long an [`OnStop::Finish`] task may take to end after shutdown began.
    pub finish_within: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            healthy_after: Duration::from_secs(60),
            max_failures: 10,
            failure_window: Duration::from_secs(300),
            finish_within: Duration::from_secs(5),
        }
    }
}

/// A task's state as `/ready` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Up,
    /// Failed; waiting out its backoff before the next run.
    Restarting,
    /// Failed too often: no longer restarted.
    Down,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Restarting => "restarting",
            Self::Down => "down",
        }
    }
}

/// Every supervised task's state, shared with `/ready`.
#[derive(Clone, Default)]
pub struct TaskBoard(Arc<Mutex<BTreeMap<String, TaskState>>>);

impl TaskBoard {
    fn set(&self, task: &str, state: TaskState) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(task.to_owned(), state);
    }

    /// Name → state, in name order.
    pub fn snapshot(&self) -> BTreeMap<String, TaskState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task: String,
}

#[derive(Clone, Default)]
struct TaskMetrics {
    restarts: Family<TaskLabels, Counter>,
    up: Family<TaskLabels, Gauge>,
}

/// Starts, restarts and stops the background tasks.
pub struct Supervisor {
    policy: Policy,
    board: TaskBoard,
    metrics: TaskMetrics,
    stop_tx: Arc<watch::Sender<bool>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Supervisor {
    pub fn new(policy: Policy, board: TaskBoard, metrics: &Metrics) -> Self {
        let task_metrics = TaskMetrics::default();
        metrics.with_registry(|r| {
            r.register("task_restarts", "Restarts of a background task after a failure", task_metrics.restarts.clone());
            r.register("task_up", "1 while a background task runs", task_metrics.up.clone());
        });
        let (stop_tx, _) = watch::channel(false);
        Self { policy, board, metrics: task_metrics, stop_tx: Arc::new(stop_tx), tasks: Vec::new() }
    }

    /// A future resolving once [`Supervisor::stop`] was called.
    pub fn stop_signal(&self) -> Stop {
        Stop(self.stop_tx.subscribe())
    }

    /// Starts `name` under supervision.
    pub fn spawn(&mut self, name: &str, on_stop: OnStop, factory: Factory) {
        let run = supervise(
            name.to_owned(),
            on_stop,
            factory,
            self.policy.clone(),
            self.board.clone(),
            self.metrics.clone(),
            self.stop_signal(),
        );
        self.board.set(name, TaskState::Up);
        self.tasks.push(tokio::spawn(run));
    }

    /// Begins shutdown: no task is restarted from now on.
    pub fn stop(&self) {
        self.stop_tx.send_replace(true);
    }

    /// Begins shutdown from elsewhere (e.g. when the shutdown signal arrives).
    pub fn stopper(&self) -> impl FnOnce() + Send + 'static {
        let stop_tx = self.stop_tx.clone();
        move || {
            stop_tx.send_replace(true);
        }
    }

    /// Stops every task: aborted ones at once, finishing ones within `finish_within`.
    pub async fn shutdown(self) {
        self.stop();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// A failed run, as logged.
fn failure(outcome: Result<anyhow::Result<()>, tokio::task::JoinError>) -> String {
    match outcome {
        Ok(Ok(())) => "ended before shutdown".to_owned(),
        Ok(Err(e)) => format!("{e:#}"),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-text panic".to_owned());
            format!("panicked: {text}")
        }
        Err(_) => "cancelled".to_owned(),
    }
}

async fn supervise(
    name: String,
    on_stop: OnStop,
    mut factory: Factory,
    policy: Policy,
    board: TaskBoard,
    metrics: TaskMetrics,
    stop: Stop,
) {
    let labels = TaskLabels { task: name.clone() };
    let mut failures: VecDeque<Instant> = VecDeque::new();
    let mut backoff = policy.initial_backoff;
    loop {
        board.set(&name, TaskState::Up);
        metrics.up.get_or_create(&labels).set(1);
        let started = Instant::now();
        let mut run = tokio::spawn(factory(stop.clone()));
        let outcome = tokio::select! {
            outcome = &mut run => outcome,
            () = stop.clone().wait() => {
                if on_stop == OnStop::Finish
                    && tokio::time::timeout(policy.finish_within, &mut run).await.is_err()
                {
                    tracing::warn!(task = %name, "did not finish in time after shutdown began");
                }
                run.abort();
                metrics.up.get_or_create(&labels).set(0);
                return;
            }
        };
        metrics.up.get_or_create(&labels).set(0);
        if stop.is_set() {
            return;
        }
        let why = failure(outcome);
        let now = Instant::now();
        if now - started >= policy.healthy_after {
            failures.clear();
            backoff = policy.initial_backoff;
        }
        failures.push_back(now);
        while failures.front().is_some_and(|at| now - *at > policy.failure_window) {
            failures.pop_front();
        }
        if failures.len() >= policy.max_failures as usize {
            board.set(&name, TaskState::Down);
            tracing::error!(task = %name, error = %why, failures = failures.len(), "background task down for good");
            return;
        }
        board.set(&name, TaskState::Restarting);
        metrics.restarts.get_or_create(&labels).inc();
        tracing::warn!(task = %name, error = %why, retry_in_ms = backoff.as_millis() as u64, "background task failed; restarting");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop.clone().wait() => return,
        }
        backoff = (backoff * 2).min(policy.max_backoff);
    }
}

/// A factory from a closure returning any `()`- or `Result`-valued future.
pub fn factory<F, Fut>(mut make: F) -> Factory
where
    F: FnMut(Stop) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    Box::new(move |stop| Box::pin(make(stop)))
}

/// A factory for a loop that returns nothing (it ends only when told to stop).
pub fn looping<F, Fut>(mut make: F) -> Factory
where
    F: FnMut(Stop) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Box::new(move |stop| {
        let run = make(stop);
        Box::pin(async move {
            run.await;
            Ok(())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> Policy {
        Policy {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
            healthy_after: Duration::from_millis(150),
            max_failures: 4,
            failure_window: Duration::from_secs(60),
            finish_within: Duration::from_millis(100),
        }
    }

    #[tokio::test]
    async fn backoff_doubles_to_its_cap_then_the_task_is_down() {
        let board = TaskBoard::default();
        let mut tasks = Supervisor::new(quick(), board.clone(), &Metrics::new());
        let starts = Arc::new(Mutex::new(Vec::new()));
        let seen = starts.clone();
        tasks.spawn(
            "failing",
            OnStop::Abort,
            factory(move |_| {
                seen.lock().unwrap().push(Instant::now());
                async { Err(anyhow::anyhow!("no")) }
            }),
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let starts = starts.lock().unwrap().clone();
        let gaps: Vec<u128> = starts.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
        assert_eq!(gaps.len(), 3, "three restarts, then down: {gaps:?}");
        for (gap, backoff) in gaps.iter().zip([10, 20, 40]) {
            assert!((backoff..backoff + 100).contains(gap), "{gaps:?}");
        }
        assert_eq!(board.snapshot()["failing"], TaskState::Down);
        tasks.shutdown().await;
    }

    #[tokio::test]
    async fn a_run_that_lasted_resets_the_failure_count() {
        let board = TaskBoard::default();
        let mut tasks = Supervisor::new(quick(), board.clone(), &Metrics::new());
        let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = runs.clone();
        tasks.spawn(
            "sometimes",
            OnStop::Abort,
            factory(move |_| {
                let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    // Every third run lasts past `healthy_after` before failing.
                    if n % 3 == 2 {
                        tokio::time::sleep(Duration::from_millis(160)).await;
                    }
                    Err(anyhow::anyhow!("run {n}"))
                }
            }),
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(runs.load(std::sync::atomic::Ordering::SeqCst) > 6);
        assert_ne!(board.snapshot()["sometimes"], TaskState::Down);
        tasks.shutdown().await;
    }
}
