//! Black-box tests of lessor-chain against real engines (SQLite, PostgreSQL, Redis) and a real
//! TVM: the test peer in `tests/ton-peer` runs the wallet contracts in @ton/sandbox behind a
//! toncenter-compatible HTTP API.

mod helpers;

mod crash;
mod faults;
mod flow;
mod load;
