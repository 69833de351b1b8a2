//! The Lessor host: configuration, HTTP API and wiring. Domain rules live in `services/*`.

pub mod allocator;
pub mod cli;
pub mod config;
pub mod events;
pub mod http;
pub mod metrics;
pub mod payments;
pub mod plugins;
pub mod rate_limit;
pub mod search;
pub mod server;
pub mod startup;
pub mod supervisor;
pub mod telemetry;

pub use config::Config;
pub use startup::Application;
