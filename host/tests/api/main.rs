//! Black-box tests: the real application on a real socket, against a fresh database per
//! test (SQLite in a temporary directory, or a new PostgreSQL database), and real Redis.

mod helpers;

mod attacks_auth;
mod attacks_http;
mod attacks_limits;
mod auth;
mod authoring;
mod authoring_call;
mod card_numbers;
mod chain;
mod cli;
mod db_timeouts;
mod leases;
mod meili;
#[path = "../../../services/search/tests/peer/mod.rs"]
#[allow(dead_code)]
mod meili_peer;
mod ops;
mod payments;
#[path = "../peers/mod.rs"]
mod peers;
mod plugin_attacks;
#[path = "../plugins/build.rs"]
#[allow(dead_code)]
mod plugin_build;
mod plugin_grants;
mod plugin_output;
mod plugins;
mod refund_webhooks;
#[path = "../support/served.rs"]
mod served;
mod stream_owner;
mod supervision;
mod wit_0_2;
