//! The bound on concurrent password hashing. An argon2id hash or verification takes 19 MiB
//! and a core for tens of milliseconds; unbounded, a burst of logins would take every
//! blocking thread (and gigabytes). Hashes run on the gate's own `permits` threads (one per
//! core by default), never on tokio's blocking pool, so they neither wait for nor crowd out
//! other blocking work (plugin calls), and the memory they keep is `permits` × 19 MiB. A caller
//! waits at most `max_wait` for a turn, then is told to come back later.
//!
//! Attempts from addresses that already failed recently ("suspect") may hold all permits but
//! one, so an attack from such addresses cannot keep a clean address from being served.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// No permit came free within the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub retry_after: Duration,
}

/// What the gate did, for `/metrics` (`lessor_auth_…`).
#[derive(Clone, Default)]
pub struct AuthMetrics {
    pub(crate) verifications: Counter,
    pub(crate) hashes: Counter,
    pub(crate) busy: Counter,
    pub(crate) throttled: Counter,
}

impl AuthMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let auth = registry.sub_registry_with_prefix("auth");
        auth.register(
            "password_verifications",
            "argon2id password verifications run (logins, including wrong passwords)",
            self.verifications.clone(),
        );
        auth.register("password_hashes", "argon2id hashes of new passwords", self.hashes.clone());
        auth.register(
            "login_busy",
            "Logins answered 503 because every hashing slot stayed taken for the whole wait",
            self.busy.clone(),
        );
        auth.register(
            "login_throttled",
            "Logins answered 429 by the per-address or per-account-and-address limits",
            self.throttled.clone(),
        );
    }
}

type Job = Box<dyn FnOnce() + Send>;

pub struct HashGate {
    all: Arc<Semaphore>,
    suspect: Arc<Semaphore>,
    max_wait: Duration,
    /// The workers' queue; they stop when the gate (this sender) is dropped.
    jobs: mpsc::Sender<Job>,
    pub(crate) metrics: AuthMetrics,
    started: Arc<AtomicU64>,
}

/// Held while a hash runs. It moves into the job, so the slot is held for as long as the hash
/// runs, even when the request that asked for it is gone.
struct HashPermit {
    _all: OwnedSemaphorePermit,
    _suspect: Option<OwnedSemaphorePermit>,
}

/// Why [`HashGate::run`] returned no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateError {
    /// No slot came free within the wait; nothing ran.
    Busy(Busy),
    /// The job panicked.
    Failed,
}

impl HashGate {
    /// `permits` concurrent hashes (0: one per core), waiting at most `max_wait` for one.
    pub fn new(permits: usize, max_wait: Duration) -> Self {
        let permits = if permits == 0 { cores() } else { permits };
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..permits {
            let queue = queue.clone();
            let worker = std::thread::Builder::new().name(format!("password-hash-{i}")).spawn(move || {
                loop {
                    let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return, // the gate is gone
                    }
                }
            });
            if let Err(e) = worker {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        Self {
            all: Arc::new(Semaphore::new(permits)),
            suspect: Arc::new(Semaphore::new(permits.saturating_sub(1).max(1))),
            max_wait,
            jobs,
            metrics: AuthMetrics::default(),
            started: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Runs `hash` on a hashing thread once a slot is free; `suspect` callers leave the last
    /// slot to clean ones.
    pub async fn run<T: Send + 'static>(
        &self,
        suspect: bool,
        hash: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, GateError> {
        let permit = self.enter(suspect).await.map_err(GateError::Busy)?;
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _permit = permit;
            let _ = done.send(hash());
        });
        self.jobs.send(job).map_err(|_| GateError::Failed)?;
        result.await.map_err(|_| GateError::Failed)
    }

    /// Waits for a turn; `suspect` attempts leave the last permit to clean ones.
    async fn enter(&self, suspect: bool) -> Result<HashPermit, Busy> {
        let busy = Busy { retry_after: Duration::from_secs(1) };
        let turn = async {
            let suspect = match suspect {
                true => Some(self.suspect.clone().acquire_owned().await.ok()?),
                false => None,
            };
            let all = self.all.clone().acquire_owned().await.ok()?;
            Some(HashPermit { _all: all, _suspect: suspect })
        };
        match tokio::time::timeout(self.max_wait, turn).await {
            Ok(Some(permit)) => Ok(permit),
            _ => {
                self.metrics.busy.inc();
                Err(busy)
            }
        }
    }

    /// Counts a verification as it starts, on the hashing thread (the `/metrics` counter and
    /// [`Self::verifications`]).
    pub(crate) fn verification_counter(&self) -> impl Fn() + Send + 'static {
        let (started, counter) = (self.started.clone(), self.metrics.verifications.clone());
        move || {
            started.fetch_add(1, Ordering::Relaxed);
            counter.inc();
        }
    }

    /// Password verifications run since start.
    pub fn verifications(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }
}

/// The cores this process may use (1 when unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_on_its_own_threads() {
        let gate = HashGate::new(2, Duration::from_secs(1));
        let name = gate.run(false, || std::thread::current().name().map(str::to_owned)).await.unwrap();
        assert!(name.unwrap().starts_with("password-hash-"));
        assert_eq!(gate.run(true, || 6 * 7).await, Ok(42));
    }

    #[tokio::test]
    async fn waits_then_refuses_and_keeps_a_permit_for_clean_callers() {
        let gate = HashGate::new(2, Duration::from_millis(50));
        let first = gate.enter(true).await.unwrap();
        // A second suspect caller finds the suspect share taken and gives up after the wait.
        assert_eq!(gate.enter(true).await.err(), Some(Busy { retry_after: Duration::from_secs(1) }));
        // A clean caller still gets the permit kept for it.
        let clean = gate.enter(false).await.unwrap();
        assert!(gate.enter(false).await.is_err());
        drop(first);
        drop(clean);
        assert!(gate.enter(false).await.is_ok());
    }
}
