//! The threads plugin calls run on, and the slots that bound them.
//!
//! Plugin calls block (wasm, host HTTP), so they run off the async executor, but not on tokio's
//! shared blocking pool: that pool also verifies passwords (argon2), and either load could take
//! every thread and starve the other. [`CallPool`] owns at most `slots` threads, started on
//! demand and kept for reuse, and one permit per pooled instance slot. A call's permit moves
//! into the job, so the slot is free again only when the sandbox has finished, not when the
//! future that asked for it is dropped (a client that disconnects mid-call).

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

type Job = Box<dyn FnOnce() + Send + 'static>;

pub(crate) struct CallPool {
    slots: Arc<Semaphore>,
    capacity: usize,
    jobs: Mutex<Sender<Job>>,
    queue: Arc<Mutex<Receiver<Job>>>,
    /// Threads started, and threads waiting for a job that no job has reserved yet.
    threads: Mutex<Threads>,
}

#[derive(Default)]
struct Threads {
    started: usize,
    idle: Arc<Mutex<usize>>,
}

/// The pool is gone (the host is shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the plugin call pool is shut down")]
pub(crate) struct PoolClosed;

impl CallPool {
    pub(crate) fn new(slots: usize) -> Self {
        let capacity = slots.max(1);
        let (tx, rx) = channel::<Job>();
        Self {
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            jobs: Mutex::new(tx),
            queue: Arc::new(Mutex::new(rx)),
            threads: Mutex::new(Threads::default()),
        }
    }

    /// Slots free now.
    pub(crate) fn free_slots(&self) -> usize {
        self.slots.available_permits()
    }

    /// Waits for a slot, then runs `job` on a pool thread holding it. The slot is released when
    /// `job` returns, whether or not anyone still waits for its result.
    pub(crate) async fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> Result<std::thread::Result<R>, PoolClosed> {
        let permit = self.slots.clone().acquire_owned().await.map_err(|_| PoolClosed)?;
        let (tx, rx) = oneshot::channel();
        self.submit(permit, move || {
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)));
        })?;
        rx.await.map_err(|_| PoolClosed)
    }

    fn submit(&self, permit: OwnedSemaphorePermit, job: impl FnOnce() + Send + 'static) -> Result<(), PoolClosed> {
        let idle = self.threads.lock().expect("pool threads").idle.clone();
        let job: Job = Box::new(move || {
            job();
            // This thread is counted idle before the slot is free again: the caller the slot
            // goes to next finds it and starts no thread of its own (at most `capacity` threads).
            *idle.lock().expect("pool idle count") += 1;
            drop(permit);
        });
        self.reserve_thread()?;
        self.jobs.lock().expect("pool sender").send(job).map_err(|_| PoolClosed)
    }

    /// Makes sure a thread will take the next job: an idle one, or a new one. At most one job
    /// per permit is ever queued or running, so at most `capacity` threads are started.
    fn reserve_thread(&self) -> Result<(), PoolClosed> {
        let mut threads = self.threads.lock().expect("pool threads");
        {
            let mut idle = threads.idle.lock().expect("pool idle count");
            if *idle > 0 {
                *idle -= 1;
                return Ok(());
            }
        }
        let queue = self.queue.clone();
        std::thread::Builder::new().name("plugin-call".into()).spawn(move || worker(&queue)).map_err(|e| {
            tracing::error!(error = %e, "cannot start a plugin call thread");
            PoolClosed
        })?;
        threads.started += 1;
        debug_assert!(threads.started <= self.capacity);
        Ok(())
    }
}

fn worker(queue: &Mutex<Receiver<Job>>) {
    loop {
        let job = queue.lock().expect("pool queue").recv();
        let Ok(job) = job else { return };
        job();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_dropped_caller_keeps_the_slot_until_the_job_ends() {
        let pool = Arc::new(CallPool::new(2));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let call = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || wait.recv().ok()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pool.free_slots(), 1);
        call.abort();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pool.free_slots(), 1, "the job still runs, so its slot is still taken");
        release.send(()).unwrap();
        for _ in 0..100 {
            if pool.free_slots() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pool.free_slots(), 2);
    }

    #[tokio::test]
    async fn threads_are_reused_and_bounded_by_the_slots() {
        let pool = Arc::new(CallPool::new(3));
        for _ in 0..5 {
            let calls: Vec<_> = (0..8)
                .map(|i| {
                    let pool = pool.clone();
                    tokio::spawn(async move {
                        pool.run(move || {
                            std::thread::sleep(Duration::from_millis(5));
                            i
                        })
                        .await
                    })
                })
                .collect();
            for (i, call) in calls.into_iter().enumerate() {
                assert_eq!(call.await.unwrap().unwrap().unwrap(), i);
            }
        }
        assert!(pool.threads.lock().unwrap().started <= 3);
        // A caller has its result a moment before the job's thread frees the slot.
        for _ in 0..100 {
            if pool.free_slots() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(pool.free_slots(), 3);
    }
}
