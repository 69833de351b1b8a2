//! The output cap is checked before a result leaves the guest's memory (issue 12 item 8): every
//! provider function's result is measured where the guest wrote it and, over the cap, refused
//! without being copied; the host's own memory shows it.

use std::process::Command;

use super::*;

const CAP: usize = 64 << 10;
/// What the RSS test asks the plugin to return.
const HUGE: usize = 50 << 20;

/// A runtime of its own, so its metrics count only these tests' calls.
fn capped_runtime(memory_bytes: usize, max_output_bytes: usize) -> PluginRuntime {
    let config = RuntimeConfig {
        limits: Limits { memory_bytes, fuel: None, max_output_bytes, ..test_config().limits },
        max_concurrent_calls: 2,
        ..test_config()
    };
    PluginRuntime::new(config).expect("runtime")
}

fn load(runtime: &PluginRuntime) -> LoadedPlugin {
    let p = package("huge-output");
    runtime.load(&p.manifest, &p.component, Grants::none(), BTreeMap::new(), BTreeMap::new()).expect("huge-output")
}

fn asking(id: &str, pairs: &[(&str, String)]) -> PaymentRequest {
    PaymentRequest { metadata: pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(), ..payment(id, 100) }
}

fn refund_of(bytes: usize) -> RefundRequest {
    RefundRequest {
        refund_id: pid("r-1"),
        payment_id: pid("p-1"),
        provider_tx_id: "tx".into(),
        amount: 100,
        currency: eur(),
        reason: Some(bytes.to_string()),
        idempotency_key: "idem-r-1".into(),
    }
}

fn webhook_of(bytes: usize) -> WebhookRequest {
    WebhookRequest { headers: vec![], body: bytes.to_string().into_bytes(), received_at: 0 }
}

fn too_large(result: Result<impl std::fmt::Debug, PluginCallError>) -> usize {
    match sandbox_failure(result) {
        SandboxFailure::OutputTooLarge { size, limit } => {
            assert_eq!(limit, CAP);
            size
        }
        other => panic!("expected OutputTooLarge, got {other:?}"),
    }
}

// Sizes as `WireSize` measures the lifted values: a string is its bytes + 8, a `none` 8, a record
// or variant 8 of its own (see `plugins::wire`).
const OUTCOME_OVERHEAD: usize = 32;
const DECLINED_OVERHEAD: usize = 16;
const REFUND_OVERHEAD: usize = 24;
/// One event (58, its `provider-refund-id` none 8) in a batch (the list 8, the reply 8, its
/// content type `application/json` 16 + 8, its body `{"received":true}` 17 + 8).
const EVENT_OVERHEAD: usize = 131;

#[tokio::test]
async fn every_function_refuses_an_output_over_the_cap_with_its_size() {
    let runtime = capped_runtime(MEMORY_CAP, CAP);
    let plugin = load(&runtime);
    let n = 100_000;

    let size = too_large(plugin.process(asking("big", &[("bytes", n.to_string())])).await);
    assert_eq!(size, n + OUTCOME_OVERHEAD);
    let size = too_large(plugin.validate(asking("big", &[("decline-bytes", n.to_string())])).await);
    assert_eq!(size, n + DECLINED_OVERHEAD);
    assert_eq!(too_large(plugin.refund(refund_of(n)).await), n + REFUND_OVERHEAD);
    assert_eq!(too_large(plugin.parse_webhook(webhook_of(n)).await), n + EVENT_OVERHEAD);

    let metrics = runtime.metrics();
    assert_eq!(metrics.traps("huge-output", "0.1.0", "output_too_large"), 4);
    for function in ["process", "validate", "refund", "parse_webhook"] {
        assert_eq!(metrics.calls("huge-output", "0.1.0", function, "sandbox"), 1, "{function}");
    }

    // The same plugin answers the next call.
    let outcome = plugin.process(asking("small", &[("bytes", "12".into())])).await.expect("a small outcome");
    assert_eq!(outcome.provider_tx_id, "x".repeat(12));
}

#[tokio::test]
async fn an_output_at_the_cap_passes_and_one_byte_more_does_not() {
    let runtime = capped_runtime(MEMORY_CAP, CAP);
    let plugin = load(&runtime);

    let at_cap = CAP - OUTCOME_OVERHEAD;
    let outcome = plugin.process(asking("at-cap", &[("bytes", at_cap.to_string())])).await.expect("at the cap");
    assert_eq!(outcome.provider_tx_id.len(), at_cap);
    assert_eq!(too_large(plugin.process(asking("over", &[("bytes", (at_cap + 1).to_string())])).await), CAP + 1);

    let at_cap = CAP - REFUND_OVERHEAD;
    let refund = plugin.refund(refund_of(at_cap)).await.expect("a refund at the cap");
    assert_eq!(refund.provider_refund_id.len(), at_cap);
    assert_eq!(too_large(plugin.refund(refund_of(at_cap + 1)).await), CAP + 1);

    let at_cap = CAP - EVENT_OVERHEAD;
    let batch = plugin.parse_webhook(webhook_of(at_cap)).await.expect("an event at the cap");
    assert_eq!(batch.events[0].event_id.len(), at_cap);
    assert_eq!(too_large(plugin.parse_webhook(webhook_of(at_cap + 1)).await), CAP + 1);

    let declined = provider_error(plugin.validate(asking("d", &[("decline-bytes", "900".into())])).await);
    assert!(matches!(declined, ProviderError::Declined(ref reason) if reason.len() == 900), "{declined:?}");
}

const CHILD: &str = "LESSOR_TEST_OUTPUT_RSS_CHILD";
const THIS_TEST: &str = "output::a_refused_output_is_not_copied_into_host_memory";

/// Peak memory is per process, and the other tests of this binary run beside this one: the
/// measurement runs in a child process running only this test.
#[test]
fn a_refused_output_is_not_copied_into_host_memory() {
    if std::env::var_os(CHILD).is_some() {
        return measure_in_this_process();
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args(["--exact", THIS_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("run the measuring child");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the measuring child failed:\n{text}");
    assert!(text.contains("output-rss:") && text.contains("1 passed"), "the child did not measure:\n{text}");
    println!("{}", text.lines().filter(|l| l.starts_with("output-rss:")).collect::<Vec<_>>().join("\n"));
}

/// `VmHWM` (peak RSS) and `VmRSS` of this process, in bytes.
fn memory_status() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib = |key: &str| {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("{key} in /proc/self/status"));
        line[key.len()..].trim().trim_end_matches("kB").trim().parse::<usize>().expect("a number of kB") * 1024
    };
    (kib("VmHWM:"), kib("VmRSS:"))
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

fn measure_in_this_process() {
    let memory = 96 << 20;
    let capped = load(&capped_runtime(memory, CAP));
    let huge = |id: &str| asking(id, &[("bytes", HUGE.to_string())]);
    let built = |id: &str| asking(id, &[("bytes", HUGE.to_string()), ("keep", "1".into())]);

    // The guest builds the 50 MiB string and returns a short outcome: the peak now holds the
    // guest's own memory, which the calls below need again.
    capped.process_blocking(&built("warm")).expect("a short outcome");
    let outcome = capped.process_blocking(&built("guest-only")).expect("a short outcome");
    assert_eq!(outcome.provider_tx_id, format!("built-{HUGE}"));
    let (guest_peak, _) = memory_status();

    // Same string, returned: refused before the copy, the peak does not move by anything like it.
    let size = too_large(capped.process_blocking(&huge("refused")));
    assert_eq!(size, HUGE + OUTCOME_OVERHEAD);
    let (refused_peak, rss) = memory_status();
    let refused_growth = refused_peak.saturating_sub(guest_peak);
    println!(
        "output-rss: refused {:.1} MiB output: peak {:.1} -> {:.1} MiB (+{:.1} MiB), rss {:.1} MiB",
        mib(HUGE),
        mib(guest_peak),
        mib(refused_peak),
        mib(refused_growth),
        mib(rss)
    );
    assert!(refused_growth < HUGE / 4, "peak RSS grew by {:.1} MiB for a refused output", mib(refused_growth));

    // The next call on the same plugin works.
    let small = capped.process_blocking(&asking("next", &[("bytes", "7".into())])).expect("the next call");
    assert_eq!(small.provider_tx_id, "xxxxxxx");

    // Control: with a cap above the output the host does copy it, and the measurement sees that.
    let uncapped = load(&capped_runtime(memory, 64 << 20));
    let copied = uncapped.process_blocking(&huge("copied")).expect("an output within a 64 MiB cap");
    assert_eq!(copied.provider_tx_id.len(), HUGE);
    let (copied_peak, _) = memory_status();
    let copied_growth = copied_peak.saturating_sub(refused_peak);
    println!(
        "output-rss: copied {:.1} MiB output (cap 64 MiB): peak {:.1} -> {:.1} MiB (+{:.1} MiB)",
        mib(HUGE),
        mib(refused_peak),
        mib(copied_peak),
        mib(copied_growth)
    );
    assert!(copied_growth > HUGE / 2, "the control copy grew the peak by only {:.1} MiB", mib(copied_growth));
}

/// A host call's arguments are copied out of the guest too: a log line far over anything the host
/// keeps stops the call while wasmtime lifts it, before the copy (`Limits::max_copy_bytes`).
#[tokio::test]
async fn a_host_call_argument_over_the_copy_bound_stops_the_call() {
    let runtime = capped_runtime(MEMORY_CAP, CAP);
    let plugin = load(&runtime);
    let bound = test_config().limits.max_copy_bytes();
    assert_eq!(bound, 4 << 20);

    let failure = sandbox_failure(plugin.validate(asking("log", &[("log-bytes", (bound + 1).to_string())])).await);
    match &failure {
        SandboxFailure::Trap(message) => assert!(message.contains("too much data"), "{message}"),
        other => panic!("expected a trap naming the copy, got {other:?}"),
    }
    // A long line within the bound is taken (and capped by the host's log escaping); so is the
    // next call.
    plugin.validate(asking("log", &[("log-bytes", (200 << 10).to_string())])).await.expect("a long log line");
    plugin.validate(payment("after", 100)).await.expect("the next call");
}
