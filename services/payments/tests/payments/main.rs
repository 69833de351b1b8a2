//! Black-box tests of lessor-payments against real engines: every test runs on SQLite and on
//! PostgreSQL (a fresh database each), with a scripted provider gateway.

mod helpers;

mod collection;
mod contract;
mod create;
mod idempotency;
mod keyed;
mod methods;
mod reconcile;
mod refunds;
mod webhooks;
