//! The host functions as the harness answers them: from the [`Harness`](super::Harness) whose
//! [`run`](super::Harness::run) is active on this thread.

use std::cell::RefCell;
use std::rc::Rc;

use super::State;
use crate::bindings::lessor::payments::host::{HttpError, HttpRequest, HttpResponse, LogLevel};

thread_local! {
    static CURRENT: RefCell<Option<Rc<State>>> = const { RefCell::new(None) };
}

/// Makes `state` the one host functions use on this thread until the guard is dropped (also when
/// the provider panics), then restores whatever was there before.
pub(super) fn enter(state: Rc<State>) -> Entered {
    Entered(CURRENT.with(|current| current.replace(Some(state))))
}

pub(super) struct Entered(Option<Rc<State>>);

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

fn with<R>(f: impl FnOnce(&State) -> R) -> R {
    let state = CURRENT.with(|current| current.borrow().clone());
    let Some(state) = state else {
        panic!(
            "lessor_plugin_sdk: a host function was called outside a test harness. Compiled natively, \
             provider code runs only inside `lessor_plugin_sdk::testing::Harness::run` (or its `process`, \
             `refund`, … helpers); in a component the host answers it."
        );
    };
    f(&state)
}

pub fn fetch(request: &HttpRequest) -> Result<HttpResponse, HttpError> {
    with(|state| state.fetch(request))
}

pub fn config(key: &str) -> Option<String> {
    with(|state| state.config.borrow().get(key).cloned())
}

pub fn secret(key: &str) -> Option<String> {
    with(|state| state.secrets.borrow().get(key).cloned())
}

pub fn log(level: LogLevel, message: &str, fields: &[(String, String)]) {
    with(|state| {
        state.logs.borrow_mut().push(super::LogLine { level, message: message.to_owned(), fields: fields.to_vec() })
    })
}

pub fn now() -> u64 {
    with(|state| state.now.get())
}
