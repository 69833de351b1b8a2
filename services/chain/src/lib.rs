//! The chain worker: every completed payment is recorded on TON as one transfer from the
//! operator wallet, whose comment carries the payment receipt; the transfer is confirmed by
//! finding its message in the wallet's transactions, and never made twice.
//!
//! - [`config`]: [`ChainConfig`] (the `LESSOR_TON_*` settings) checked into [`ChainSettings`];
//!   no API URL means the worker is off and payments show [`ChainStatus::NotConfigured`].
//! - [`wallet`]: the operator wallet (v4r2 or v5r1) from its mnemonic, signed transfer
//!   messages (tonlib-core), addresses in any standard form.
//! - [`api`]: [`TonApi`] and [`ToncenterClient`] (toncenter HTTP API v2, retries with backoff).
//! - [`store`]: [`ChainStore`] over `blockchain_transactions` / `blockchain_messages` /
//!   `blockchain_wallets` on PostgreSQL or SQLite; [`ChainStore::status_of`] for the API.
//! - [`pipeline`]: [`ChainPipeline`], the durable steps (accept, sign, send, check).
//! - [`worker`]: [`ChainWorker`], the `payments` consumer (group `chain-worker`) and the
//!   pipeline loop until a stop signal.
//! - [`metrics`]: [`ChainMetrics`], the worker's Prometheus counters and histogram.
//!
//! Wiring, for a host (see `services/chain/README.md`):
//!
//! ```text
//! if let Some(settings) = chain_config.settings()? {          // None: off
//!     let metrics = ChainMetrics::new();
//!     metrics.register(&mut registry);
//!     let worker = ChainWorker::new(db.clone(), &settings, bus.clone(), metrics)?;
//!     tokio::spawn(worker.run(shutdown()));
//! }
//! let view = ChainStore::new(db.clone()).status_of(payment_id).await?;
//! let chain_status = ChainStatus::of_payment(chain_config.enabled(), view.as_ref());
//! ```

pub mod api;
pub mod config;
pub mod metrics;
pub mod pipeline;
pub mod receipt;
pub mod store;
pub mod wallet;
pub mod worker;

pub use api::{ApiError, TonApi, ToncenterClient};
pub use config::{ApiSettings, ChainConfig, ChainSettings, ConfigError, DerivedWallet, Timing};
pub use metrics::ChainMetrics;
pub use pipeline::{ChainError, ChainPipeline, Check, Pass, SendOutcome};
pub use receipt::Receipt;
pub use store::{Accepted, ChainRecordView, ChainStatus, ChainStore, MessageView, Record};
/// TON addresses, as the wallet and the API use them.
pub use tonlib_core::TonAddress;
pub use wallet::{Network, OperatorWallet, Recipient, SignedMessage, WalletVersion};
pub use worker::{ChainHandler, ChainWorker, run_pipeline};

/// The consumer group of the chain worker on the `payments` stream.
pub const CONSUMER_GROUP: &str = "chain-worker";

/// Now, in Unix milliseconds: the unit of the chain tables' timestamps.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
