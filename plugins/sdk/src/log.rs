//! Structured logging through the host, which tags every line with the plugin's name and version.
//!
//! ```
//! # let harness = lessor_plugin_sdk::testing::Harness::new();
//! # harness.run(|| {
//! # let (payment_id, decline_code) = ("pay-1", "insufficient_funds");
//! use lessor_plugin_sdk::log;
//! log::info!("charging {}", payment_id);
//! log::warn!(code = decline_code, attempt = 2; "card declined");
//! # });
//! # assert_eq!(harness.logs()[1].field("code"), Some("insufficient_funds"));
//! ```

pub use crate::bindings::lessor::payments::host::LogLevel as Level;

/// Writes one log line with `fields` (key, value) attached.
pub fn write(level: Level, message: &str, fields: &[(&str, String)]) {
    let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    crate::host::log(level, message, &fields);
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log {
    ($level:expr, $($key:ident = $value:expr),+ ; $($arg:tt)+) => {
        $crate::log::write($level, &::std::format!($($arg)+), &[$((::core::stringify!($key), ::std::string::ToString::to_string(&$value))),+])
    };
    ($level:expr, $($arg:tt)+) => {
        $crate::log::write($level, &::std::format!($($arg)+), &[])
    };
}

/// `trace!("format", args…)` or `trace!(key = value, …; "format", args…)`.
#[macro_export]
macro_rules! trace { ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Trace, $($arg)+) }; }
/// `debug!("format", args…)` or `debug!(key = value, …; "format", args…)`.
#[macro_export]
macro_rules! debug { ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Debug, $($arg)+) }; }
/// `info!("format", args…)` or `info!(key = value, …; "format", args…)`.
#[macro_export]
macro_rules! info { ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Info, $($arg)+) }; }
/// `warn!("format", args…)` or `warn!(key = value, …; "format", args…)`.
#[macro_export]
macro_rules! warn { ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Warn, $($arg)+) }; }
/// `error!("format", args…)` or `error!(key = value, …; "format", args…)`.
#[macro_export]
macro_rules! error { ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Error, $($arg)+) }; }

pub use crate::{debug, error, info, trace, warn};

/// The field the host looks for to tell a panic from any other `unreachable` trap.
pub const PANIC_FIELD: &str = "panic";

/// A panic cannot unwind on wasm32-wasip2: it aborts the call with a trap. Before that happens,
/// this hook hands the panic message to the host, which reports `panic: <message>`.
pub(crate) fn install_panic_hook() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic with a non-string payload".to_owned());
            let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            crate::host::log(
                Level::Error,
                &message,
                &[(PANIC_FIELD.to_owned(), "true".to_owned()), ("location".to_owned(), location)],
            );
        }));
    });
}
