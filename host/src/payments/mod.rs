//! The payments service wired to this host: its provider gateway over the plugins, and the
//! background work `serve` runs (reconciliation, collection of due installments, pruning of
//! idempotency keys, the event relay).

pub mod gateway;
pub mod workers;

pub use gateway::PluginGateway;
