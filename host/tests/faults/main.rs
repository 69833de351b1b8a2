//! The fault suite (issue 12): real `host serve` processes on real PostgreSQL and Redis, the real
//! Stripe plugin in wasmtime calling a local Stripe peer, a stream of payments from several
//! clients, and one fault in the middle of it. Each test audits what was lost or doubled
//! (`support/audit.rs`), appends its row to `target/faults/results.jsonl` and fails on any.
//! `scripts/faults.sh` runs the suite and prints the table.
//!
//! The tests take turns (`support::one_at_a_time`): they kill and restart processes and servers
//! and measure recovery times. PostgreSQL and Redis are restarted only as servers of the test's
//! own (`support/servers.rs`), never the shared ones.

#[path = "../plugins/build.rs"]
#[allow(dead_code, reason = "shared with the other test targets")]
mod build;
#[path = "../peers/mod.rs"]
mod peers;
#[path = "../support/served.rs"]
mod served;
mod support;

mod kill9;
mod postgres_restart;
mod redis_restart;
mod restore;
