//! Black-box tests of the plugin registry against the real engines: SQLite in a temp dir and
//! a fresh PostgreSQL database per test.

mod helpers;
mod lifecycle;
mod refusals;
mod replicas;
