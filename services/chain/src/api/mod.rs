//! The chain behind a trait: what the pipeline asks of a TON node, and [`ToncenterClient`],
//! which asks it of a toncenter-compatible HTTP API v2 (toncenter.com, a self-hosted
//! ton-http-api, or the test peer).

mod toncenter;

use async_trait::async_trait;
use tonlib_core::TonAddress;

use crate::wallet::Hash256;

pub use toncenter::ToncenterClient;

/// An account's state on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    Active,
    /// No code yet (possibly with a balance): a wallet is deployed by its first message.
    Uninitialized,
    Frozen,
}

/// A transaction id: logical time and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxId {
    pub lt: u64,
    pub hash: Hash256,
}

/// What `getWalletInformation` says about the operator wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletInfo {
    pub state: AccountState,
    /// Nanotons.
    pub balance: u128,
    /// `None` when the API did not read it (an inactive account, or a wallet type it does not
    /// recognise): ask [`TonApi::seqno`].
    pub seqno: Option<u32>,
    pub last_transaction: Option<TxId>,
}

/// A message as a transaction lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainMessage {
    /// The message cell's hash.
    pub hash: Option<Hash256>,
    /// The normalised hash of an external inbound message (TEP-467), when the API gives it.
    pub hash_norm: Option<Hash256>,
    /// `None` for an external message.
    pub source: Option<TonAddress>,
    pub destination: Option<TonAddress>,
    /// Nanotons.
    pub value: u128,
    /// The text comment, when the body is one.
    pub comment: Option<String>,
}

/// One transaction of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTransaction {
    pub id: TxId,
    /// Unix seconds.
    pub utime: u64,
    pub in_msg: Option<ChainMessage>,
    pub out_msgs: Vec<ChainMessage>,
}

/// What the API answered to a sent message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SentMessage {
    pub hash: Option<Hash256>,
    pub hash_norm: Option<Hash256>,
}

/// A page of an account's transactions, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxQuery {
    /// At most this many (toncenter allows up to 100).
    pub limit: u32,
    /// Start at this transaction (inclusive) instead of the newest.
    pub from: Option<TxId>,
    /// Stop at transactions with `lt` at or below this (0: no bound).
    pub to_lt: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Not answered, or answered 429/5xx, every time it was tried.
    #[error("the TON API is unavailable after {attempts} attempts: {last}")]
    Unavailable { attempts: u32, last: String },
    /// The node refused the external message (the wallet did not accept it: stale seqno,
    /// expired, bad signature, no funds to pay for it, …).
    #[error("the TON node refused the message: {0}")]
    Rejected(String),
    /// Any other refusal (bad request, bad API key, unknown method).
    #[error("the TON API answered {status}: {message}")]
    Failed { status: u16, message: String },
    #[error("unexpected answer from the TON API: {0}")]
    Malformed(String),
}

/// What the pipeline needs from the chain.
#[async_trait]
pub trait TonApi: Send + Sync + 'static {
    /// The wallet's state, balance, seqno and last transaction (`getWalletInformation`).
    async fn wallet_info(&self, address: &TonAddress) -> Result<WalletInfo, ApiError>;
    /// The `seqno` get-method; `None` when the contract cannot run it (not deployed).
    async fn seqno(&self, address: &TonAddress) -> Result<Option<u32>, ApiError>;
    /// Submits an external message (`sendBocReturnHash`).
    async fn send_boc(&self, boc: &[u8]) -> Result<SentMessage, ApiError>;
    /// A page of the account's transactions, newest first (`getTransactions`).
    async fn transactions(&self, address: &TonAddress, query: &TxQuery) -> Result<Vec<ChainTransaction>, ApiError>;
}
