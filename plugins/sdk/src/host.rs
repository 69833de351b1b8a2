//! The five functions the host offers a plugin (`fetch`, `config`, `secret`, `log`, `now`), in
//! one place. In a component (`wasm32`) they are the WIT imports; compiled natively they are
//! answered by the `testing` harness the calling test set up. Everything else
//! in the SDK goes through here, so provider code runs unchanged in both.

#[cfg(target_arch = "wasm32")]
mod component {
    use crate::bindings::lessor::payments::host::{self, HttpError, HttpRequest, HttpResponse, LogLevel};

    pub fn fetch(request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        host::fetch(request)
    }

    pub fn config(key: &str) -> Option<String> {
        host::config(key)
    }

    pub fn secret(key: &str) -> Option<String> {
        host::secret(key)
    }

    pub fn log(level: LogLevel, message: &str, fields: &[(String, String)]) {
        host::log(level, message, fields)
    }

    pub fn now() -> u64 {
        host::now()
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::testing::host::{config, fetch, log, now, secret};
#[cfg(target_arch = "wasm32")]
pub(crate) use component::{config, fetch, log, now, secret};
