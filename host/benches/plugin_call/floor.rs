//! Figures 1 and 2 of the bench command: the sandbox floor (the minimal plugin's `process` on a
//! fresh instance against the same function called natively) and the real Stripe plugin's
//! `validate` + `process` (against the floor of the same two calls).

use std::hint::black_box;

use host::plugins::ProviderError;
use host::plugins::{LoadedPlugin, PluginRuntime};
use lessor_payments::{PaymentOutcome, PaymentRequest, ProviderPaymentStatus as PaymentStatus};

use crate::bench_line::{Baseline, emit};
use crate::fixtures::{self, payment};
use crate::timing;

/// How much each figure measures.
#[derive(Clone, Copy)]
pub struct Sizes {
    /// Interleaved rounds (sandbox round, baseline round, …).
    pub rounds: usize,
    /// Calls timed per round.
    pub samples: usize,
}

/// Calls per timed batch of the native function (too short to time one by one).
const NATIVE_BATCH: usize = 1000;

/// `plugins/testing/minimal`'s `process`, compiled into the bench: the same body on the gateway's
/// types. It takes the request by value, as the guest does, so the baseline clones it.
#[inline(never)]
fn native_minimal_process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
    Ok(PaymentOutcome {
        status: PaymentStatus::Succeeded,
        provider_tx_id: request.payment_id.to_string(),
        decline_code: None,
        next_action_url: None,
    })
}

/// `sandbox.fresh_call`: µs per call of the minimal plugin's `process`, each call in a fresh
/// instance (the host's only way of calling a plugin), against the native call.
pub fn sandbox_floor(runtime: &PluginRuntime, sizes: Sizes) {
    let minimal = fixtures::minimal(runtime);
    let request = payment();
    let sandboxed = minimal.process_blocking(&request).expect("minimal process");
    let native = native_minimal_process(request.clone()).expect("native process");
    assert_eq!(sandboxed, native, "the sandboxed and the native function must agree");

    println!("\n-- sandbox floor: minimal `process`, fresh instance per call vs the same function native");
    let (mut fresh, mut fresh_p99, mut direct) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..sizes.rounds {
        let round = timing::calls(sizes.samples, || drop(black_box(minimal.process_blocking(black_box(&request)))));
        timing::report("sandbox: minimal process (fresh instance)", &round);
        fresh.push(round.median_us());
        fresh_p99.push(round.p99.as_secs_f64() * 1e6);
        let round = timing::batched(sizes.samples, NATIVE_BATCH, || {
            drop(black_box(native_minimal_process(black_box(&request).clone())))
        });
        timing::report("native: the same function", &round);
        direct.push(round.median_us());
    }
    let native = Baseline::Measured { name: "the same function called natively", rounds: &direct };
    emit("sandbox.fresh_call", "µs", &fresh, native);
    emit("sandbox.fresh_call_p99", "µs", &fresh_p99, Baseline::None);
}

/// One Stripe payment as the payments service makes it: `validate`, then `process`, each in a
/// fresh instance; `process` posts to the Stripe API (answered in-process) and parses the
/// PaymentIntent. Panics if the plugin does not report the payment succeeded.
pub fn stripe_payment(stripe: &LoadedPlugin, request: &PaymentRequest) {
    stripe.validate_blocking(request).expect("stripe validate");
    let outcome = stripe.process_blocking(request).expect("stripe process");
    assert_eq!(outcome.status, PaymentStatus::Succeeded);
    black_box(outcome);
}

/// `stripe.call`: µs per `validate` + `process` of the real Stripe plugin with its HTTP answered
/// in-process, against the minimal plugin's `validate` + `process` (the floor of two calls).
pub fn stripe_call(runtime: &PluginRuntime, sizes: Sizes) {
    let stripe = fixtures::stripe(runtime);
    let minimal = fixtures::minimal(runtime);
    let request = payment();
    let outcome = stripe.process_blocking(&request).expect("stripe process");
    assert_eq!(outcome.provider_tx_id, "pi_3MtwBwLkdIwHu7ix28a3tqPa");

    println!("\n-- the Stripe plugin: validate + process, host HTTP answered in-process");
    let (mut real, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..sizes.rounds {
        let round = timing::calls(sizes.samples, || stripe_payment(&stripe, black_box(&request)));
        timing::report("stripe validate + process", &round);
        real.push(round.median_us());
        let round = timing::calls(sizes.samples, || {
            minimal.validate_blocking(black_box(&request)).expect("minimal validate");
            drop(black_box(minimal.process_blocking(black_box(&request))));
        });
        timing::report("minimal validate + process (floor)", &round);
        floor.push(round.median_us());
    }
    let floor = Baseline::Measured { name: "minimal plugin's validate + process (sandbox floor)", rounds: &floor };
    emit("stripe.call", "µs", &real, floor);
}
