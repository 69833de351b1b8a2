//! `LeaseRepository` on PostgreSQL and SQLite: one SQL text, compiled per engine by `on_db!`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lessor_store::{Db, on_db};
use uuid::Uuid;

use super::rows::{InstallmentRow, LEASE_COLUMNS, LeaseRow, OutboxRow};
use super::{Cursor, LeaseFilter, LeaseRepository, OutboxEntry, RepoError};
use crate::{Installment, InstallmentStatus, Lease, LeaseStatus, NewLease, VehicleRecord, now_micros};

pub struct SqlLeases {
    db: Db,
}

impl SqlLeases {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// A value for a query built at run time.
enum Arg {
    Uuid(Uuid),
    Text(String),
    Time(DateTime<Utc>),
    Int(i64),
}

/// Binds `args` in order to a query (whatever the engine).
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for arg in $args {
            q = match arg {
                Arg::Uuid(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.as_str()),
                Arg::Time(v) => q.bind(*v),
                Arg::Int(v) => q.bind(*v),
            };
        }
        q
    }};
}

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

fn owner_missing(e: sqlx::Error) -> RepoError {
    match &e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => RepoError::UnknownOwner,
        _ => RepoError::Store(e),
    }
}

const INSERT_LEASE: &str = "INSERT INTO leases (id, owner_id, status, vin, make, model, model_year, category, \
     start_date, term_months, monthly_amount, deposit, currency, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)";
const INSERT_OUTBOX: &str = "INSERT INTO search_outbox (lease_id, enqueued_at, available_at) VALUES ($1, $2, $2)";
/// Rows per multi-row installment insert (7 parameters each).
const INSTALLMENT_CHUNK: usize = 60;

#[async_trait]
impl LeaseRepository for SqlLeases {
    async fn create(&self, owner_id: Uuid, new: &NewLease) -> Result<Lease, RepoError> {
        let now = now_micros();
        let v = new.vehicle();
        let lease = Lease {
            id: Uuid::new_v4(),
            owner_id,
            status: LeaseStatus::Draft,
            vehicle: VehicleRecord {
                vin: v.vin().as_str().to_owned(),
                make: v.make().as_str().to_owned(),
                model: v.model().as_str().to_owned(),
                year: v.year().get(),
                category: v.category(),
            },
            start_date: new.start_date(),
            term_months: new.term_months().get(),
            monthly_amount: new.monthly_amount().amount(),
            deposit: new.deposit().amount(),
            currency: new.currency(),
            created_at: now,
            updated_at: now,
        };
        let schedule = new.schedule();
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(INSERT_LEASE)
                .bind(lease.id)
                .bind(owner_id)
                .bind(lease.status.as_str())
                .bind(&lease.vehicle.vin)
                .bind(&lease.vehicle.make)
                .bind(&lease.vehicle.model)
                .bind(i32::from(lease.vehicle.year))
                .bind(lease.vehicle.category.as_str())
                .bind(lease.start_date)
                .bind(i32::from(lease.term_months))
                .bind(lease.monthly_amount)
                .bind(lease.deposit)
                .bind(lease.currency.code())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(owner_missing)?;
            for chunk in schedule.chunks(INSTALLMENT_CHUNK) {
                let values: Vec<String> =
                    (0..chunk.len()).map(|i| format!("({})", placeholders(i * 7 + 1, 7))).collect();
                let sql = format!(
                    "INSERT INTO installments (id, lease_id, number, due_date, amount, currency, status) VALUES {}",
                    values.join(", ")
                );
                let mut q = sqlx::query(&sql);
                for line in chunk {
                    q = q
                        .bind(Uuid::new_v4())
                        .bind(lease.id)
                        .bind(i32::from(line.number))
                        .bind(line.due_date)
                        .bind(line.amount.amount())
                        .bind(line.amount.currency().code())
                        .bind(InstallmentStatus::Due.as_str());
                }
                q.execute(&mut *tx).await?;
            }
            sqlx::query(INSERT_OUTBOX).bind(lease.id).bind(now.timestamp_millis()).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, RepoError>(())
        })?;
        Ok(lease)
    }

    async fn get(&self, id: Uuid) -> Result<Option<Lease>, RepoError> {
        let sql = format!("SELECT {LEASE_COLUMNS} FROM leases WHERE id = $1");
        let row: Option<LeaseRow> = on_db!(&self.db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        row.map(Lease::try_from).transpose()
    }

    async fn get_many(&self, ids: &[Uuid]) -> Result<Vec<Lease>, RepoError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {LEASE_COLUMNS} FROM leases WHERE id IN ({})", placeholders(1, ids.len()));
        let args: Vec<Arg> = ids.iter().copied().map(Arg::Uuid).collect();
        let rows: Vec<LeaseRow> =
            on_db!(&self.db, pool => bind_args!(sqlx::query_as(&sql), &args).fetch_all(pool).await)?;
        rows.into_iter().map(Lease::try_from).collect()
    }

    async fn list(&self, filter: &LeaseFilter, after: Option<&Cursor>, limit: u32) -> Result<Vec<Lease>, RepoError> {
        let mut sql = format!("SELECT {LEASE_COLUMNS} FROM leases WHERE 1 = 1");
        let mut args = Vec::new();
        if let Some(owner) = filter.owner_id {
            args.push(Arg::Uuid(owner));
            sql += &format!(" AND owner_id = ${}", args.len());
        }
        if let Some(status) = filter.status {
            args.push(Arg::Text(status.as_str().to_owned()));
            sql += &format!(" AND status = ${}", args.len());
        }
        if let Some(Cursor::After { created_at, id }) = after {
            args.push(Arg::Time(*created_at));
            args.push(Arg::Uuid(*id));
            sql += &format!(" AND (created_at, id) < (${}, ${})", args.len() - 1, args.len());
        }
        args.push(Arg::Int(i64::from(limit)));
        sql += &format!(" ORDER BY created_at DESC, id DESC LIMIT ${}", args.len());
        let rows: Vec<LeaseRow> =
            on_db!(&self.db, pool => bind_args!(sqlx::query_as(&sql), &args).fetch_all(pool).await)?;
        rows.into_iter().map(Lease::try_from).collect()
    }

    async fn set_status(&self, id: Uuid, from: LeaseStatus, to: LeaseStatus) -> Result<Option<Lease>, RepoError> {
        let now = now_micros();
        let sql = format!(
            "UPDATE leases SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4 RETURNING {LEASE_COLUMNS}"
        );
        let row: Option<LeaseRow> = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let row: Option<LeaseRow> = sqlx::query_as(&sql)
                .bind(to.as_str())
                .bind(now)
                .bind(id)
                .bind(from.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if row.is_some() {
                sqlx::query(INSERT_OUTBOX).bind(id).bind(now.timestamp_millis()).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(row)
        })?;
        row.map(Lease::try_from).transpose()
    }

    async fn installments(&self, lease_id: Uuid) -> Result<Vec<Installment>, RepoError> {
        let sql = "SELECT id, lease_id, number, due_date, amount, currency, status FROM installments \
                   WHERE lease_id = $1 ORDER BY number";
        let rows: Vec<InstallmentRow> =
            on_db!(&self.db, pool => sqlx::query_as(sql).bind(lease_id).fetch_all(pool).await)?;
        rows.into_iter().map(Installment::try_from).collect()
    }

    async fn claim_outbox(&self, now_ms: i64, hold_ms: i64, limit: u32) -> Result<Vec<OutboxEntry>, RepoError> {
        // PostgreSQL lets concurrent workers skip each other's rows; SQLite has one writer.
        let lock = match self.db {
            Db::Postgres(_) => "FOR UPDATE SKIP LOCKED",
            Db::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE search_outbox SET available_at = $1 + $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM search_outbox WHERE available_at <= $1 ORDER BY id LIMIT $3 {lock}) \
             RETURNING id, lease_id, enqueued_at, attempts"
        );
        let rows: Vec<OutboxRow> = on_db!(&self.db, pool => sqlx::query_as(&sql)
            .bind(now_ms)
            .bind(hold_ms)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?;
        let mut entries: Vec<OutboxEntry> = rows
            .into_iter()
            .map(|r| OutboxEntry { id: r.id, lease_id: r.lease_id, enqueued_at: r.enqueued_at, attempts: r.attempts })
            .collect();
        entries.sort_by_key(|e| e.id);
        Ok(entries)
    }

    async fn complete_outbox(&self, ids: &[i64]) -> Result<(), RepoError> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!("DELETE FROM search_outbox WHERE id IN ({})", placeholders(1, ids.len()));
        let args: Vec<Arg> = ids.iter().copied().map(Arg::Int).collect();
        on_db!(&self.db, pool => bind_args!(sqlx::query(&sql), &args).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn defer_outbox(&self, ids: &[i64], available_at: i64, error: &str) -> Result<(), RepoError> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE search_outbox SET available_at = $1, last_error = $2 WHERE id IN ({})",
            placeholders(3, ids.len())
        );
        let mut args = vec![Arg::Int(available_at), Arg::Text(error.chars().take(500).collect())];
        args.extend(ids.iter().copied().map(Arg::Int));
        on_db!(&self.db, pool => bind_args!(sqlx::query(&sql), &args).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn oldest_outbox_entry(&self) -> Result<Option<i64>, RepoError> {
        let sql = "SELECT MIN(enqueued_at) FROM search_outbox";
        Ok(on_db!(&self.db, pool => sqlx::query_scalar::<_, Option<i64>>(sql).fetch_one(pool).await)?)
    }

    async fn enqueue_all(&self, now_ms: i64) -> Result<u64, RepoError> {
        let sql = "INSERT INTO search_outbox (lease_id, enqueued_at, available_at) SELECT id, $1, $1 FROM leases";
        Ok(on_db!(&self.db, pool => sqlx::query(sql).bind(now_ms).execute(pool).await.map(|r| r.rows_affected()))?)
    }
}
