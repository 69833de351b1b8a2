//! The pipeline from a completed payment to its confirmed transfer, one durable step at a time.
//!
//! ```text
//! accept ──> pending ──sign_next──> signed ──send──> submitted ──check──> confirmed
//!                ^                    │                  │
//!                └──── expired <──────┴──────────────────┘  (not included by valid_until
//!                      (fresh seqno,                           + margin; failed after
//!                       same row)                              max_attempts)
//! ```
//!
//! - **One record per payment**: `accept` inserts the row keyed by `payment_id` (and marks the
//!   event handled) in one transaction; redeliveries and repeated events add nothing.
//! - **Stored before sent**: a message is signed and committed (`signed`) before any send, so
//!   a crash anywhere leaves a row to resume from: the same bytes are sent again while valid.
//! - **One message in flight per wallet**: a unique index admits one `signed`/`submitted` row
//!   per wallet, and only the holder of the wallet's lease (`blockchain_wallets`) signs, with
//!   the lease checked in the transaction that stores the message. The next payment is signed
//!   only once the previous message is settled, with seqno `max(wallet seqno, last used + 1)`.
//! - **Never twice**: a message is declared expired only when `valid_until + margin` has
//!   passed *and* the wallet's seqno still equals the message's (so it was not executed and no
//!   longer can be). The new message reuses that seqno, so at most one of them can ever be
//!   executed, and the poller matches the wallet's transactions against every message signed
//!   for the payment, by external message hash.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lessor_events::PaymentCompleted;
use tonlib_core::TonAddress;
use uuid::Uuid;

use crate::api::{AccountState, ApiError, ChainTransaction, TonApi, TxId, TxQuery};
use crate::config::{ChainSettings, Timing};
use crate::metrics::ChainMetrics;
use crate::receipt::Receipt;
use crate::store::{Accepted, ChainStatus, ChainStore, Inclusion, NewRecord, Record};
use crate::wallet::{Hash256, Network, OperatorWallet, Recipient, Transfer, WalletError, from_hex, hex};
use crate::{CONSUMER_GROUP, now_ms};

/// Transactions fetched per page while looking for a message.
const PAGE: u32 = 20;
/// At most this many pages per check (a wallet used by nobody else has few transactions).
const MAX_PAGES: usize = 50;
/// Nanotons kept for fees above the transfer amount before a message is signed (0.05 TON:
/// a transfer costs a few thousandths, deploying the wallet a little more).
pub const FEE_RESERVE_NANOTON: u64 = 50_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
    #[error("cannot sign: {0}")]
    Wallet(#[from] WalletError),
    #[error("the stored record of payment {0} is unreadable: {1}")]
    Corrupt(Uuid, String),
}

/// What one [`ChainPipeline::run_once`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// Whether this worker held the wallet's lease (only the holder works).
    pub leader: bool,
    pub signed: usize,
    pub sent: usize,
    pub confirmed: usize,
    pub expired: usize,
    pub failed: usize,
    /// The payment whose message is in flight and not on chain yet.
    pub waiting_on: Option<Uuid>,
    /// Why nothing could be signed although payments wait (e.g. the wallet's balance).
    pub blocked: Option<String>,
}

impl Pass {
    /// Whether the pass moved anything forward.
    pub fn progressed(&self) -> bool {
        self.signed + self.sent + self.confirmed + self.expired + self.failed > 0
    }
}

/// What sending the in-flight message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The API accepted it.
    Sent { payment_id: Uuid, seqno: u32 },
    /// The node refused it (already executed, expired, …); the check decides what it means.
    Refused { payment_id: Uuid, reason: String },
    /// Its `valid_until` has passed: not sent.
    TooLate { payment_id: Uuid },
    /// It was sent recently; not yet due again.
    NotDue { payment_id: Uuid },
}

/// What looking for the in-flight message on chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Confirmed {
        payment_id: Uuid,
        tx_hash: String,
        attempt: i32,
    },
    /// Not included and no longer can be: back in line for a new message (or failed).
    Expired {
        payment_id: Uuid,
        failed: bool,
    },
    /// Included, but the wallet sent no transfer (its balance?): back in line (or failed).
    NoTransfer {
        payment_id: Uuid,
        failed: bool,
    },
    Waiting {
        payment_id: Uuid,
    },
}

/// The chain pipeline of one operator wallet. Every step is safe to repeat and to run from
/// several workers; each is public so tests (and tools) can stop between them.
pub struct ChainPipeline {
    store: ChainStore,
    api: Arc<dyn TonApi>,
    wallet: Arc<OperatorWallet>,
    wallet_key: String,
    network: Network,
    recipient: Recipient,
    amount_nanoton: u64,
    timing: Timing,
    holder: String,
    metrics: ChainMetrics,
}

impl std::fmt::Debug for ChainPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainPipeline").field("wallet", &self.wallet).field("holder", &self.holder).finish()
    }
}

fn unix_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl ChainPipeline {
    pub fn new(store: ChainStore, api: Arc<dyn TonApi>, settings: &ChainSettings, metrics: ChainMetrics) -> Self {
        Self {
            store,
            api,
            wallet_key: settings.wallet.address().to_hex(),
            wallet: settings.wallet.clone(),
            network: settings.network,
            recipient: settings.recipient.clone(),
            amount_nanoton: settings.amount_nanoton,
            timing: settings.timing.clone(),
            holder: format!("chain-{}", Uuid::new_v4().simple()),
            metrics,
        }
    }

    /// Names this worker in the wallet's lease (unique per process by default).
    pub fn with_holder(mut self, holder: impl Into<String>) -> Self {
        self.holder = holder.into();
        self
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub fn store(&self) -> &ChainStore {
        &self.store
    }

    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    pub fn wallet_address(&self) -> &TonAddress {
        self.wallet.address()
    }

    /// The operator wallet as wallet apps show it (non-bounceable, network-aware).
    pub fn wallet_display(&self) -> String {
        self.wallet.friendly_address(self.network)
    }

    /// Stores the payment's record (once per payment) and marks the event handled by the
    /// `chain-worker` group, in one transaction. What the event handler does.
    #[tracing::instrument(name = "chain.accept", skip_all, fields(payment_id = %payment.payment_id))]
    pub async fn accept(&self, event_id: Uuid, payment: &PaymentCompleted) -> Result<Accepted, ChainError> {
        let new = NewRecord {
            payment_id: payment.payment_id,
            lease_id: payment.lease_id,
            event_id,
            wallet_address: self.wallet_key.clone(),
            recipient: self.recipient.address.to_hex(),
            amount_nanoton: i64::try_from(self.amount_nanoton).unwrap_or(i64::MAX),
            bounce: self.recipient.bounce,
            comment: Receipt::of(payment).comment(),
        };
        let accepted = self.store.accept(&new, CONSUMER_GROUP).await?;
        tracing::info!(?accepted, lease_id = %payment.lease_id, "payment accepted for the chain");
        Ok(accepted)
    }

    /// Takes or renews the wallet's lease.
    pub async fn acquire(&self) -> Result<bool, ChainError> {
        let ttl = i64::try_from(self.timing.lease_ttl.as_millis()).unwrap_or(i64::MAX);
        Ok(self.store.acquire_lease(&self.wallet_key, &self.holder, ttl).await?)
    }

    /// Gives the wallet's lease up (on shutdown), so another worker takes over at once.
    pub async fn release(&self) {
        if let Err(e) = self.store.release_lease(&self.wallet_key, &self.holder).await {
            tracing::warn!(error = %e, "releasing the wallet lease failed");
        }
    }

    /// One pass: renew the lease; settle the message in flight (send it when due, look for it
    /// on chain); then sign, store and send the next payment's message.
    #[tracing::instrument(name = "chain.pass", skip_all)]
    pub async fn run_once(&self) -> Result<Pass, ChainError> {
        let mut pass = Pass::default();
        if !self.acquire().await? {
            return Ok(pass);
        }
        pass.leader = true;
        if self.store.in_flight(&self.wallet_key).await?.is_some() {
            if let Some(SendOutcome::Sent { .. }) = self.send_in_flight().await? {
                pass.sent += 1;
            }
            match self.check_in_flight().await? {
                Some(Check::Waiting { payment_id }) => {
                    pass.waiting_on = Some(payment_id);
                    return Ok(pass);
                }
                Some(Check::Confirmed { .. }) => pass.confirmed += 1,
                Some(Check::Expired { failed, .. } | Check::NoTransfer { failed, .. }) => {
                    pass.expired += 1;
                    pass.failed += usize::from(failed);
                }
                None => {}
            }
        }
        match self.sign_next_inner().await? {
            Signing::Signed(record) => {
                pass.signed += 1;
                if let Some(SendOutcome::Sent { .. }) = self.send_in_flight().await? {
                    pass.sent += 1;
                }
                pass.waiting_on = Some(record.payment_id);
            }
            Signing::Blocked(reason) => pass.blocked = Some(reason),
            Signing::Idle => {}
        }
        Ok(pass)
    }

    /// Signs the next waiting payment's message and stores it (`signed`), without sending it.
    /// `None` when nothing waits, a message is already in flight, or the lease is not ours.
    #[tracing::instrument(name = "chain.sign", skip_all)]
    pub async fn sign_next(&self) -> Result<Option<Record>, ChainError> {
        if !self.acquire().await? {
            return Ok(None);
        }
        match self.sign_next_inner().await? {
            Signing::Signed(record) => Ok(Some(*record)),
            Signing::Blocked(_) | Signing::Idle => Ok(None),
        }
    }

    async fn sign_next_inner(&self) -> Result<Signing, ChainError> {
        if self.store.in_flight(&self.wallet_key).await?.is_some() {
            return Ok(Signing::Idle);
        }
        let Some(record) = self.store.next_to_sign(&self.wallet_key).await? else {
            return Ok(Signing::Idle);
        };
        let info = self.api.wallet_info(self.wallet.address()).await?;
        let amount = u64::try_from(record.amount_nanoton).unwrap_or(0);
        if info.balance < u128::from(amount) + u128::from(FEE_RESERVE_NANOTON) {
            let reason = format!(
                "the operator wallet {} holds {} nanotons, less than the {amount} to transfer \
                 plus {FEE_RESERVE_NANOTON} for fees",
                self.wallet_display(),
                info.balance
            );
            if record.last_error.as_deref() != Some(reason.as_str()) {
                tracing::warn!(payment_id = %record.payment_id, "{reason}");
                self.store.note_waiting(&record, &reason).await?;
            }
            return Ok(Signing::Blocked(reason));
        }
        let chain_seqno = match (info.state, info.seqno) {
            (_, Some(seqno)) => seqno,
            (AccountState::Active, None) => self.api.seqno(self.wallet.address()).await?.ok_or_else(|| {
                ApiError::Malformed("the active operator wallet does not answer its seqno get-method".into())
            })?,
            (_, None) => 0,
        };
        let last_used = self.store.last_used_seqno(&self.wallet_key).await?;
        let seqno = match last_used {
            Some(used) => chain_seqno.max(u32::try_from(used + 1).unwrap_or(u32::MAX)),
            None => chain_seqno,
        };
        let valid_until = u32::try_from(unix_secs() + secs(self.timing.message_ttl)).unwrap_or(u32::MAX);
        let recipient = Recipient {
            address: TonAddress::from_hex_str(&record.recipient)
                .map_err(|e| ChainError::Corrupt(record.payment_id, e.to_string()))?,
            bounce: record.bounce,
        };
        let signed = self.wallet.sign_transfer(&Transfer {
            seqno,
            valid_until,
            deploy: info.state != AccountState::Active,
            recipient: &recipient,
            amount_nanoton: amount,
            comment: &record.comment,
        })?;
        let scan_from_lt = info.last_transaction.map_or(0, |t| i64::try_from(t.lt).unwrap_or(i64::MAX));
        let boc = STANDARD.encode(&signed.boc);
        if !self.store.save_signed(&record, &self.holder, &signed, &boc, scan_from_lt).await? {
            tracing::warn!(payment_id = %record.payment_id, "lost the wallet lease or the record moved on; message dropped unsent");
            return Ok(Signing::Idle);
        }
        tracing::info!(payment_id = %record.payment_id, seqno, valid_until, attempt = record.attempts + 1,
            message_hash = %hex(&signed.hash), "transfer message signed and stored");
        let stored = self.store.record(record.payment_id).await?.ok_or(sqlx::Error::RowNotFound)?;
        Ok(Signing::Signed(Box::new(stored)))
    }

    /// Sends the message in flight: at once when it was never sent, again every
    /// `resend_interval` while it is valid and not on chain. Needs no lease: sending the same
    /// bytes twice is harmless (the wallet executes a seqno once).
    #[tracing::instrument(name = "chain.send", skip_all)]
    pub async fn send_in_flight(&self) -> Result<Option<SendOutcome>, ChainError> {
        let Some(record) = self.store.in_flight(&self.wallet_key).await? else {
            return Ok(None);
        };
        let payment_id = record.payment_id;
        let valid_until = record.valid_until.unwrap_or(0);
        if valid_until <= unix_secs() {
            return Ok(Some(SendOutcome::TooLate { payment_id }));
        }
        if record.status() == ChainStatus::Submitted
            && let Some(last) = record.last_sent_at
            && now_ms() - last < i64::try_from(self.timing.resend_interval.as_millis()).unwrap_or(i64::MAX)
        {
            return Ok(Some(SendOutcome::NotDue { payment_id }));
        }
        let boc = record
            .boc
            .as_deref()
            .and_then(|b| STANDARD.decode(b).ok())
            .ok_or_else(|| ChainError::Corrupt(payment_id, "no readable BOC".into()))?;
        let seqno = record.seqno.and_then(|s| u32::try_from(s).ok()).unwrap_or(0);
        match self.api.send_boc(&boc).await {
            Ok(_) => {
                let first = record.status() == ChainStatus::Signed;
                self.store.record_send(&record, None).await?;
                if first {
                    self.metrics.submitted.inc();
                }
                tracing::info!(%payment_id, seqno, first, "transfer message sent");
                Ok(Some(SendOutcome::Sent { payment_id, seqno }))
            }
            Err(ApiError::Rejected(reason)) => {
                self.store.record_send(&record, Some(&reason)).await?;
                tracing::info!(%payment_id, seqno, %reason, "the node refused the message; looking for it on chain");
                Ok(Some(SendOutcome::Refused { payment_id, reason }))
            }
            Err(e) => {
                self.store.record_send(&record, Some(&e.to_string())).await?;
                Err(e.into())
            }
        }
    }

    /// Looks for the message in flight among the wallet's transactions: confirmed when a
    /// transaction executed one of the payment's messages and sent the transfer; expired when
    /// it was not executed and no longer can be. Meant for the lease holder ([`Self::run_once`]
    /// checks the lease first); every write is conditional on the record being unchanged.
    #[tracing::instrument(name = "chain.check", skip_all)]
    pub async fn check_in_flight(&self) -> Result<Option<Check>, ChainError> {
        let Some(record) = self.store.in_flight(&self.wallet_key).await? else {
            return Ok(None);
        };
        let payment_id = record.payment_id;
        let open = self.store.open_messages(payment_id).await?;
        let hashes: Vec<(i32, Hash256, Hash256)> = open
            .iter()
            .filter_map(|m| Some((m.attempt, from_hex(&m.message_hash)?, from_hex(&m.message_hash_norm)?)))
            .collect();
        let give_up = u32::try_from(record.attempts).unwrap_or(0) >= self.timing.max_attempts;
        if let Some((attempt, tx)) = self.find(&record, &hashes).await? {
            let sent_transfer =
                tx.out_msgs.iter().any(|m| m.destination.as_ref().is_some_and(|d| d.to_hex() == record.recipient));
            let tx_hash = hex(&tx.id.hash);
            if !sent_transfer {
                let reason = format!(
                    "message {attempt} was executed in transaction {tx_hash} but the wallet sent no transfer (balance too low?)"
                );
                tracing::warn!(%payment_id, "{reason}");
                if self.store.expire(&record, &reason, Some(attempt), give_up).await? {
                    self.count_expiry(give_up);
                }
                return Ok(Some(Check::NoTransfer { payment_id, failed: give_up }));
            }
            let inclusion = Inclusion {
                attempt,
                tx_hash: tx_hash.clone(),
                tx_lt: i64::try_from(tx.id.lt).unwrap_or(i64::MAX),
                tx_utime: i64::try_from(tx.utime).unwrap_or(0),
            };
            if self.store.confirm(&record, &inclusion).await? {
                if record.submitted_at.is_none() {
                    // Sent by a process that died before recording it: count it now.
                    self.metrics.submitted.inc();
                }
                self.metrics.confirmed.inc();
                let since = record.submitted_at.unwrap_or(record.created_at);
                self.metrics.confirmation_seconds.observe((now_ms() - since).max(0) as f64 / 1000.0);
                tracing::info!(%payment_id, %tx_hash, attempt, "transfer confirmed on chain");
            }
            return Ok(Some(Check::Confirmed { payment_id, tx_hash, attempt }));
        }
        let valid_until = record.valid_until.unwrap_or(0);
        if unix_secs() <= valid_until + secs(self.timing.expiry_margin) {
            return Ok(Some(Check::Waiting { payment_id }));
        }
        // Past valid_until by our clock. Expire only if the wallet did not use the seqno: then
        // this message was not executed, and the wallet refuses it from now on.
        let info = self.api.wallet_info(self.wallet.address()).await?;
        let chain_seqno = match (info.state, info.seqno) {
            (_, Some(s)) => Some(s),
            (AccountState::Active, None) => self.api.seqno(self.wallet.address()).await?,
            (_, None) => Some(0),
        };
        let seqno = record.seqno.unwrap_or(0);
        if chain_seqno.is_some_and(|s| i64::from(s) > seqno) {
            let overdue = unix_secs() - valid_until;
            let patience = 10 * (secs(self.timing.message_ttl) + secs(self.timing.expiry_margin));
            if overdue > patience {
                let reason = format!(
                    "the wallet used seqno {seqno} but no transaction shows this payment's message; \
                     is another sender using the operator wallet? (left for an operator)"
                );
                tracing::error!(%payment_id, "{reason}");
                if self.store.expire(&record, &reason, None, true).await? {
                    self.count_expiry(true);
                }
                return Ok(Some(Check::Expired { payment_id, failed: true }));
            }
            tracing::warn!(%payment_id, seqno, "seqno used but the transaction is not visible yet; waiting");
            return Ok(Some(Check::Waiting { payment_id }));
        }
        let reason =
            format!("message {} (seqno {seqno}) was not included before valid_until {valid_until}", record.attempts);
        tracing::warn!(%payment_id, "{reason}; signing a new one");
        if self.store.expire(&record, &reason, None, give_up).await? {
            self.count_expiry(give_up);
        }
        Ok(Some(Check::Expired { payment_id, failed: give_up }))
    }

    fn count_expiry(&self, failed: bool) {
        self.metrics.expired.inc();
        if failed {
            self.metrics.failed.inc();
        }
    }

    /// The wallet transaction (newer than the record's first message) whose inbound external
    /// message is one of `hashes`.
    async fn find(
        &self,
        record: &Record,
        hashes: &[(i32, Hash256, Hash256)],
    ) -> Result<Option<(i32, ChainTransaction)>, ChainError> {
        if hashes.is_empty() {
            return Ok(None);
        }
        let to_lt = record.scan_from_lt.and_then(|lt| u64::try_from(lt).ok()).unwrap_or(0);
        let mut cursor: Option<TxId> = None;
        for _ in 0..MAX_PAGES {
            let query = TxQuery { limit: PAGE, from: cursor, to_lt };
            let page = self.api.transactions(self.wallet.address(), &query).await?;
            let fetched = page.len();
            let mut last = None;
            for tx in page {
                if Some(tx.id) == cursor {
                    continue;
                }
                last = Some(tx.id);
                let Some(inbound) = tx.in_msg.as_ref().filter(|m| m.source.is_none()) else {
                    continue;
                };
                let hit = hashes.iter().find(|(_, hash, norm)| {
                    inbound.hash.as_ref() == Some(hash) || inbound.hash_norm.as_ref() == Some(norm)
                });
                if let Some((attempt, ..)) = hit {
                    return Ok(Some((*attempt, tx)));
                }
            }
            match last {
                Some(last) if fetched >= PAGE as usize => cursor = Some(last),
                _ => break,
            }
        }
        Ok(None)
    }
}

enum Signing {
    Signed(Box<Record>),
    Blocked(String),
    Idle,
}
