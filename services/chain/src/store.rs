//! The pipeline's state on either engine: `blockchain_transactions` (one row per payment),
//! `blockchain_messages` (every message signed for it) and `blockchain_wallets` (the lease of
//! the worker that uses a wallet). Migration `0006_chain.sql`.
//!
//! [`ChainStore::status_of`] and [`ChainStore::statuses_of`] are what the payments API reads;
//! everything else is the pipeline's.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use lessor_store::{Db, on_db};
use serde::Serialize;
use uuid::Uuid;

use crate::now_ms;
use crate::wallet::{SignedMessage, hex};

/// Where a payment's on-chain record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainStatus {
    /// Stored from the `payment.completed` event; waiting for the wallet.
    Pending,
    /// A message is signed and stored; it may or may not have been sent yet.
    Signed,
    /// The message was sent; waiting for it in the wallet's transactions.
    Submitted,
    /// The transfer is on chain (`tx_hash`).
    Confirmed,
    /// The last message was not included before `valid_until`; it will be signed again.
    Expired,
    /// Gave up after too many messages; see `last_error`.
    Failed,
    /// Never stored: the chain worker is off (no `LESSOR_TON_API_URL`).
    NotConfigured,
}

impl ChainStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Signed => "signed",
            Self::Submitted => "submitted",
            Self::Confirmed => "confirmed",
            Self::Expired => "expired",
            Self::Failed => "failed",
            Self::NotConfigured => "not_configured",
        }
    }

    /// The status to show for a payment: `not_configured` when the worker is off, otherwise
    /// the record's (`None` while there is no record yet, e.g. before the event was handled).
    pub fn of_payment(chain_enabled: bool, record: Option<&ChainRecordView>) -> Option<Self> {
        if !chain_enabled {
            return Some(Self::NotConfigured);
        }
        record.map(|r| r.status)
    }
}

impl fmt::Display for ChainStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChainStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => Self::Pending,
            "signed" => Self::Signed,
            "submitted" => Self::Submitted,
            "confirmed" => Self::Confirmed,
            "expired" => Self::Expired,
            "failed" => Self::Failed,
            "not_configured" => Self::NotConfigured,
            other => return Err(format!("unknown chain status `{other}`")),
        })
    }
}

/// A payment's on-chain record, as the payments API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainRecordView {
    pub payment_id: Uuid,
    pub lease_id: Uuid,
    pub status: ChainStatus,
    /// The operator wallet, raw form (`0:<hex>`).
    pub wallet_address: String,
    /// The recipient, raw form.
    pub recipient: String,
    pub amount_nanoton: i64,
    /// The receipt comment the transfer carries.
    pub comment: String,
    pub seqno: Option<i64>,
    /// Unix seconds.
    pub valid_until: Option<i64>,
    /// Hash of the external message (hex), from signing on; of the included one once confirmed.
    pub message_hash: Option<String>,
    /// Hash of the wallet transaction that executed it (hex), once confirmed.
    pub tx_hash: Option<String>,
    pub tx_lt: Option<i64>,
    /// Messages signed for this payment so far (more than one after an expiry).
    pub attempts: i32,
    pub last_error: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub submitted_at: Option<i64>,
    pub confirmed_at: Option<i64>,
}

impl ChainRecordView {
    /// The payment's `blockchain_tx_hash`: the transaction hash, once confirmed.
    pub fn blockchain_tx_hash(&self) -> Option<&str> {
        self.tx_hash.as_deref()
    }
}

/// One message signed for a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct MessageView {
    pub attempt: i32,
    pub seqno: i64,
    pub valid_until: i64,
    pub message_hash: String,
    pub message_hash_norm: String,
    /// `included`, `expired`, `no_transfer`, or `None` while it may still be included.
    pub outcome: Option<String>,
    pub created_at: i64,
}

/// A row of `blockchain_transactions` as the pipeline works with it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Record {
    pub id: i64,
    pub payment_id: Uuid,
    pub lease_id: Uuid,
    pub event_id: Uuid,
    pub wallet_address: String,
    pub recipient: String,
    pub amount_nanoton: i64,
    pub bounce: bool,
    pub comment: String,
    pub status: String,
    pub seqno: Option<i64>,
    pub valid_until: Option<i64>,
    pub message_hash: Option<String>,
    pub message_hash_norm: Option<String>,
    pub boc: Option<String>,
    pub scan_from_lt: Option<i64>,
    pub attempts: i32,
    pub sends: i32,
    pub last_error: Option<String>,
    pub tx_hash: Option<String>,
    pub tx_lt: Option<i64>,
    pub tx_utime: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub submitted_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    pub confirmed_at: Option<i64>,
}

impl Record {
    pub fn status(&self) -> ChainStatus {
        self.status.parse().unwrap_or(ChainStatus::Failed)
    }

    fn view(self) -> ChainRecordView {
        ChainRecordView {
            status: self.status(),
            payment_id: self.payment_id,
            lease_id: self.lease_id,
            wallet_address: self.wallet_address,
            recipient: self.recipient,
            amount_nanoton: self.amount_nanoton,
            comment: self.comment,
            seqno: self.seqno,
            valid_until: self.valid_until,
            message_hash: self.message_hash,
            tx_hash: self.tx_hash,
            tx_lt: self.tx_lt,
            attempts: self.attempts,
            last_error: self.last_error,
            created_at: self.created_at,
            updated_at: self.updated_at,
            submitted_at: self.submitted_at,
            confirmed_at: self.confirmed_at,
        }
    }
}

/// A message of a record that may still show up on chain (no outcome yet).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct OpenMessage {
    pub attempt: i32,
    pub message_hash: String,
    pub message_hash_norm: String,
}

/// What to store for a new payment.
#[derive(Debug, Clone)]
pub(crate) struct NewRecord {
    pub payment_id: Uuid,
    pub lease_id: Uuid,
    pub event_id: Uuid,
    pub wallet_address: String,
    pub recipient: String,
    pub amount_nanoton: i64,
    pub bounce: bool,
    pub comment: String,
}

/// What [`ChainStore::accept`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// A new record: one transfer will be made for this payment.
    New,
    /// The payment already had its record (another event, or a redelivery): nothing added.
    Existing,
    /// This event was handled before by the group.
    AlreadyHandled,
}

/// Where a confirmed transfer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inclusion {
    pub attempt: i32,
    pub tx_hash: String,
    pub tx_lt: i64,
    pub tx_utime: i64,
}

const RECORD_COLUMNS: &str = "id, payment_id, lease_id, event_id, wallet_address, recipient, amount_nanoton, bounce, \
     comment, status, seqno, valid_until, message_hash, message_hash_norm, boc, scan_from_lt, attempts, sends, \
     last_error, tx_hash, tx_lt, tx_utime, created_at, updated_at, submitted_at, last_sent_at, confirmed_at";

/// The chain tables on either engine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ChainStore {
    db: Db,
}

impl ChainStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The payment's record, if it has one.
    pub async fn status_of(&self, payment_id: Uuid) -> Result<Option<ChainRecordView>, sqlx::Error> {
        Ok(self.record(payment_id).await?.map(Record::view))
    }

    /// The records of several payments at once (payments without one are left out).
    pub async fn statuses_of(&self, payment_ids: &[Uuid]) -> Result<HashMap<Uuid, ChainRecordView>, sqlx::Error> {
        let mut out = HashMap::with_capacity(payment_ids.len());
        for chunk in payment_ids.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT {RECORD_COLUMNS} FROM blockchain_transactions WHERE payment_id IN ({})",
                marks.join(", ")
            );
            let rows: Vec<Record> = on_db!(&self.db, pool => {
                let mut query = sqlx::query_as::<_, Record>(&sql);
                for id in chunk {
                    query = query.bind(*id);
                }
                query.fetch_all(pool).await
            })?;
            out.extend(rows.into_iter().map(|r| (r.payment_id, r.view())));
        }
        Ok(out)
    }

    /// Every message signed for the payment, first attempt first.
    pub async fn messages_of(&self, payment_id: Uuid) -> Result<Vec<MessageView>, sqlx::Error> {
        let sql = "SELECT attempt, seqno, valid_until, message_hash, message_hash_norm, outcome, created_at \
                   FROM blockchain_messages WHERE payment_id = $1 ORDER BY attempt";
        on_db!(&self.db, pool => sqlx::query_as(sql).bind(payment_id).fetch_all(pool).await)
    }

    /// How many records are in each status (for dashboards and tests).
    pub async fn counts(&self) -> Result<HashMap<ChainStatus, i64>, sqlx::Error> {
        let sql = "SELECT status, COUNT(*) FROM blockchain_transactions GROUP BY status";
        let rows: Vec<(String, i64)> = on_db!(&self.db, pool => sqlx::query_as(sql).fetch_all(pool).await)?;
        Ok(rows.into_iter().filter_map(|(s, n)| s.parse().ok().map(|s| (s, n))).collect())
    }

    /// The full row (the pipeline's view; also handy in tests).
    pub async fn record(&self, payment_id: Uuid) -> Result<Option<Record>, sqlx::Error> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM blockchain_transactions WHERE payment_id = $1");
        on_db!(&self.db, pool => sqlx::query_as(&sql).bind(payment_id).fetch_optional(pool).await)
    }

    /// Stores a payment's record (once per payment) and marks the event handled by `group`,
    /// in one transaction.
    pub(crate) async fn accept(&self, new: &NewRecord, group: &str) -> Result<Accepted, sqlx::Error> {
        let now = now_ms();
        let sql = "INSERT INTO blockchain_transactions (payment_id, lease_id, event_id, wallet_address, recipient, \
                   amount_nanoton, bounce, comment, status, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9) ON CONFLICT (payment_id) DO NOTHING";
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            if !lessor_events::mark_handled(&mut *tx, group, new.event_id).await? {
                return Ok(Accepted::AlreadyHandled);
            }
            let inserted = sqlx::query(sql)
                .bind(new.payment_id)
                .bind(new.lease_id)
                .bind(new.event_id)
                .bind(&new.wallet_address)
                .bind(&new.recipient)
                .bind(new.amount_nanoton)
                .bind(new.bounce)
                .bind(&new.comment)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(if inserted == 1 { Accepted::New } else { Accepted::Existing })
        })
    }

    /// Takes or renews the wallet's lease for `holder`; whether it holds it now.
    pub(crate) async fn acquire_lease(&self, wallet: &str, holder: &str, ttl_ms: i64) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let create = "INSERT INTO blockchain_wallets (address, holder, lease_expires_at, updated_at) \
                      VALUES ($1, NULL, 0, $2) ON CONFLICT (address) DO NOTHING";
        let take = "UPDATE blockchain_wallets SET holder = $2, lease_expires_at = $3, updated_at = $4 \
                    WHERE address = $1 AND (holder IS NULL OR holder = $2 OR lease_expires_at <= $4)";
        on_db!(&self.db, pool => {
            sqlx::query(create).bind(wallet).bind(now).execute(pool).await?;
            let n = sqlx::query(take)
                .bind(wallet)
                .bind(holder)
                .bind(now + ttl_ms)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }

    /// Lets another worker take the wallet at once.
    pub(crate) async fn release_lease(&self, wallet: &str, holder: &str) -> Result<(), sqlx::Error> {
        let sql = "UPDATE blockchain_wallets SET holder = NULL, lease_expires_at = 0, updated_at = $3 \
                   WHERE address = $1 AND holder = $2";
        on_db!(&self.db, pool => sqlx::query(sql).bind(wallet).bind(holder).bind(now_ms()).execute(pool).await.map(drop))
    }

    /// The wallet's message in flight (`signed` or `submitted`; at most one by a unique index).
    pub(crate) async fn in_flight(&self, wallet: &str) -> Result<Option<Record>, sqlx::Error> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM blockchain_transactions \
             WHERE wallet_address = $1 AND status IN ('signed', 'submitted') ORDER BY id LIMIT 1"
        );
        on_db!(&self.db, pool => sqlx::query_as(&sql).bind(wallet).fetch_optional(pool).await)
    }

    /// The next payment to sign a message for: expired ones first (they were first in line),
    /// then pending ones, oldest first.
    pub(crate) async fn next_to_sign(&self, wallet: &str) -> Result<Option<Record>, sqlx::Error> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM blockchain_transactions \
             WHERE wallet_address = $1 AND status IN ('pending', 'expired') \
             ORDER BY CASE status WHEN 'expired' THEN 0 ELSE 1 END, id LIMIT 1"
        );
        on_db!(&self.db, pool => sqlx::query_as(&sql).bind(wallet).fetch_optional(pool).await)
    }

    /// The highest seqno the wallet is known to have used (a confirmed transfer's).
    pub(crate) async fn last_used_seqno(&self, wallet: &str) -> Result<Option<i64>, sqlx::Error> {
        let sql = "SELECT MAX(m.seqno) FROM blockchain_messages m \
                   JOIN blockchain_transactions t ON t.payment_id = m.payment_id \
                   WHERE t.wallet_address = $1 AND m.outcome IN ('included', 'no_transfer')";
        on_db!(&self.db, pool => sqlx::query_scalar(sql).bind(wallet).fetch_one(pool).await)
    }

    /// Stores a freshly signed message for `record` (which must still be waiting for one, with
    /// `record.attempts` messages so far) while `holder` holds the wallet's lease. `false` when
    /// the lease was lost or the record moved on: nothing was stored, the message is dropped.
    pub(crate) async fn save_signed(
        &self,
        record: &Record,
        holder: &str,
        signed: &SignedMessage,
        boc: &str,
        scan_from_lt: i64,
    ) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let fence = "UPDATE blockchain_wallets SET updated_at = $3 \
                     WHERE address = $1 AND holder = $2 AND lease_expires_at > $3";
        let update = "UPDATE blockchain_transactions SET status = 'signed', seqno = $3, valid_until = $4, \
                      message_hash = $5, message_hash_norm = $6, boc = $7, attempts = attempts + 1, \
                      scan_from_lt = COALESCE(scan_from_lt, $8), last_error = NULL, updated_at = $9 \
                      WHERE payment_id = $1 AND attempts = $2 AND status IN ('pending', 'expired')";
        let insert = "INSERT INTO blockchain_messages (payment_id, attempt, seqno, valid_until, message_hash, \
                      message_hash_norm, boc, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let (hash, hash_norm) = (hex(&signed.hash), hex(&signed.hash_norm));
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let held = sqlx::query(fence).bind(&record.wallet_address).bind(holder).bind(now).execute(&mut *tx).await?;
            if held.rows_affected() != 1 {
                return Ok(false);
            }
            let moved = sqlx::query(update)
                .bind(record.payment_id)
                .bind(record.attempts)
                .bind(i64::from(signed.seqno))
                .bind(i64::from(signed.valid_until))
                .bind(&hash)
                .bind(&hash_norm)
                .bind(boc)
                .bind(scan_from_lt)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if moved.rows_affected() != 1 {
                return Ok(false);
            }
            sqlx::query(insert)
                .bind(record.payment_id)
                .bind(record.attempts + 1)
                .bind(i64::from(signed.seqno))
                .bind(i64::from(signed.valid_until))
                .bind(&hash)
                .bind(&hash_norm)
                .bind(boc)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Records a send of the current message: accepted by the API (`error` None; the record
    /// becomes `submitted`) or not (the error is kept; the status stays).
    pub(crate) async fn record_send(&self, record: &Record, error: Option<&str>) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let sql = match error {
            None => {
                "UPDATE blockchain_transactions SET status = 'submitted', sends = sends + 1, last_sent_at = $3, \
                 submitted_at = COALESCE(submitted_at, $3), last_error = NULL, updated_at = $3 \
                 WHERE payment_id = $1 AND attempts = $2 AND status IN ('signed', 'submitted')"
            }
            Some(_) => {
                "UPDATE blockchain_transactions SET sends = sends + 1, last_sent_at = $3, last_error = $4, updated_at = $3 \
                 WHERE payment_id = $1 AND attempts = $2 AND status IN ('signed', 'submitted')"
            }
        };
        on_db!(&self.db, pool => {
            let n = sqlx::query(sql)
                .bind(record.payment_id)
                .bind(record.attempts)
                .bind(now)
                .bind(error)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }

    /// The record's messages that may still show up on chain.
    pub(crate) async fn open_messages(&self, payment_id: Uuid) -> Result<Vec<OpenMessage>, sqlx::Error> {
        let sql = "SELECT attempt, message_hash, message_hash_norm FROM blockchain_messages \
                   WHERE payment_id = $1 AND outcome IS NULL ORDER BY attempt";
        on_db!(&self.db, pool => sqlx::query_as(sql).bind(payment_id).fetch_all(pool).await)
    }

    /// The transfer is on chain: the record takes the included message's details and is
    /// `confirmed`; its other messages can no longer be included (same seqno, or expired).
    pub(crate) async fn confirm(&self, record: &Record, found: &Inclusion) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let update = "UPDATE blockchain_transactions SET status = 'confirmed', \
                      seqno = (SELECT seqno FROM blockchain_messages WHERE payment_id = $1 AND attempt = $2), \
                      valid_until = (SELECT valid_until FROM blockchain_messages WHERE payment_id = $1 AND attempt = $2), \
                      message_hash = (SELECT message_hash FROM blockchain_messages WHERE payment_id = $1 AND attempt = $2), \
                      message_hash_norm = (SELECT message_hash_norm FROM blockchain_messages WHERE payment_id = $1 AND attempt = $2), \
                      boc = (SELECT boc FROM blockchain_messages WHERE payment_id = $1 AND attempt = $2), \
                      tx_hash = $3, tx_lt = $4, tx_utime = $5, confirmed_at = $6, last_error = NULL, updated_at = $6 \
                      WHERE payment_id = $1 AND attempts = $7 AND status IN ('signed', 'submitted')";
        let outcomes = "UPDATE blockchain_messages SET outcome = CASE WHEN attempt = $2 THEN 'included' ELSE 'expired' END \
                        WHERE payment_id = $1 AND outcome IS NULL";
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(update)
                .bind(record.payment_id)
                .bind(found.attempt)
                .bind(&found.tx_hash)
                .bind(found.tx_lt)
                .bind(found.tx_utime)
                .bind(now)
                .bind(record.attempts)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                return Ok(false);
            }
            sqlx::query(outcomes).bind(record.payment_id).bind(found.attempt).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The current message will not be included (expired), or was included without sending
    /// the transfer (`no_transfer_attempt`): the record goes back in line for a new message,
    /// or to `failed` when `give_up`.
    pub(crate) async fn expire(
        &self,
        record: &Record,
        reason: &str,
        no_transfer_attempt: Option<i32>,
        give_up: bool,
    ) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let update = "UPDATE blockchain_transactions SET status = $3, last_error = $4, updated_at = $5 \
                      WHERE payment_id = $1 AND attempts = $2 AND status IN ('signed', 'submitted')";
        let outcomes = "UPDATE blockchain_messages SET outcome = CASE WHEN attempt = $2 THEN 'no_transfer' ELSE 'expired' END \
                        WHERE payment_id = $1 AND outcome IS NULL";
        let status = if give_up { ChainStatus::Failed } else { ChainStatus::Expired };
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(update)
                .bind(record.payment_id)
                .bind(record.attempts)
                .bind(status.as_str())
                .bind(reason)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                return Ok(false);
            }
            sqlx::query(outcomes).bind(record.payment_id).bind(no_transfer_attempt.unwrap_or(0)).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Notes why a waiting record cannot get a message yet (e.g. the wallet's balance).
    pub(crate) async fn note_waiting(&self, record: &Record, reason: &str) -> Result<(), sqlx::Error> {
        let sql = "UPDATE blockchain_transactions SET last_error = $3, updated_at = $4 \
                   WHERE payment_id = $1 AND attempts = $2 AND status IN ('pending', 'expired') \
                   AND (last_error IS NULL OR last_error <> $3)";
        on_db!(&self.db, pool => sqlx::query(sql)
            .bind(record.payment_id)
            .bind(record.attempts)
            .bind(reason)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(drop))
    }

    /// Puts a `failed` record back in line (an operator's decision, e.g. after funding the
    /// wallet); `false` if it is not failed.
    pub async fn retry_failed(&self, payment_id: Uuid) -> Result<bool, sqlx::Error> {
        let sql = "UPDATE blockchain_transactions SET status = CASE WHEN seqno IS NULL THEN 'pending' ELSE 'expired' END, \
                   updated_at = $2 WHERE payment_id = $1 AND status = 'failed'";
        on_db!(&self.db, pool => {
            let n = sqlx::query(sql).bind(payment_id).bind(now_ms()).execute(pool).await?.rows_affected();
            Ok(n == 1)
        })
    }
}
