//! Black-box tests of lessor-events against real engines: SQLite, PostgreSQL, Redis (the
//! shared server and servers of the tests' own).

mod helpers;

mod identity;
mod in_process;
mod outage;
mod outbox;
mod redis_bus;
mod relay;
