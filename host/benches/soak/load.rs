//! The payments the soak sends: `POST /api/v1/payments` through the Stripe plugin, each with a
//! unique Idempotency-Key, from a few customers in turn; either closed-loop (to measure capacity)
//! or at a steady rate (open loop: a late answer does not delay the next request).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::served::{Api, Customer};

/// Requests in flight at most during the steady phase; one more is an error (the host fell
/// behind the rate).
const MAX_IN_FLIGHT: usize = 512;

/// What the requests of one sampling window saw.
#[derive(Default)]
pub struct Window {
    pub latencies: Vec<Duration>,
    pub errors: u64,
    pub first_error: Option<String>,
}

/// The shared side of the load: the current window, swapped out by the sampler.
#[derive(Clone)]
pub struct Payments {
    api: Api,
    customers: Arc<Vec<Customer>>,
    sent: Arc<AtomicU64>,
    run: String,
    window: Arc<Mutex<Window>>,
}

impl Payments {
    pub fn new(api: Api, customers: Vec<Customer>) -> Self {
        let run = uuid::Uuid::new_v4().simple().to_string();
        Self { api, customers: Arc::new(customers), sent: Arc::default(), run, window: Arc::default() }
    }

    /// The window so far, replaced by an empty one.
    pub fn take_window(&self) -> Window {
        std::mem::take(&mut *self.window.lock().expect("window lock"))
    }

    /// One payment; its latency or error goes into the current window. `true` if answered 201.
    async fn pay(&self) -> bool {
        let n = self.sent.fetch_add(1, Ordering::Relaxed);
        let customer = &self.customers[n as usize % self.customers.len()];
        let key = format!("soak-{}-{n}", self.run);
        let started = Instant::now();
        let result = self.api.pay(customer, "stripe", "pm_card_visa", &key).await;
        let elapsed = started.elapsed();
        let mut window = self.window.lock().expect("window lock");
        match result {
            Ok((201, _)) => {
                window.latencies.push(elapsed);
                true
            }
            other => {
                window.errors += 1;
                let text = match other {
                    Ok((status, body)) => format!("{status} {body}"),
                    Err(e) => e.to_string(),
                };
                window.first_error.get_or_insert(text);
                false
            }
        }
    }

    /// Payments per second answered 201 by `clients` clients sending one after another.
    pub async fn capacity(&self, clients: usize, duration: Duration) -> f64 {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (payments, stop) = (self.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut ok = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        ok += u64::from(payments.pay().await);
                    }
                    ok
                })
            })
            .collect();
        tokio::time::sleep(duration).await;
        stop.store(true, Ordering::Relaxed);
        let mut ok = 0;
        for task in tasks {
            ok += task.await.expect("client task");
        }
        ok as f64 / started.elapsed().as_secs_f64()
    }

    /// Sends `rate` payments per second until `stop` is set; waits for the last answers.
    pub async fn steady(&self, rate: f64, stop: Arc<AtomicBool>) {
        let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let interval = Duration::from_secs_f64(1.0 / rate);
        let started = tokio::time::Instant::now();
        let mut n: u32 = 0;
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep_until(started + interval * n).await;
            n += 1;
            let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                let mut window = self.window.lock().expect("window lock");
                window.errors += 1;
                window.first_error.get_or_insert(format!("{MAX_IN_FLIGHT} requests in flight: the host fell behind"));
                continue;
            };
            let payments = self.clone();
            tokio::spawn(async move {
                payments.pay().await;
                drop(permit);
            });
        }
        let _ = in_flight.acquire_many(MAX_IN_FLIGHT as u32).await;
    }
}
