//! What every fault test shares: the servers it breaks, the host stack, the payment stream, the
//! test's own consumer groups, the audit and the result row.

pub mod audit;
pub mod consumers;
pub mod load;
pub mod report;
pub mod servers;
pub mod stack;

use std::sync::{Mutex, MutexGuard};

/// The fault tests restart processes and servers and measure recovery times: one at a time.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
