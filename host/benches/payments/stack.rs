//! One configuration brought up the way an operator would: a fresh PostgreSQL database (or
//! SQLite), a Redis namespace of its own, `host migrate`, an admin, the plugin installed with
//! the CLI, `host serve` started, then customers with active leases created over the API and
//! written to the file the wrk script reads.

use std::path::PathBuf;

use crate::peers::stripe::StripePeer;
use crate::pgbench::Pgbench;
use crate::served::{Error, Served};
use crate::setups::{STRIPE_KEY, Setup};
use lessor_store::testing::PgTestDb;

pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
const ADMIN_EMAIL: &str = "bench-admin@bench.test";
const ADMIN_PASSWORD: &str = "correct horse battery staple";

pub struct Stack {
    pub setup: Setup,
    pub host: Served,
    /// `<namespace>` of the Redis keys, when Redis is used.
    pub namespace: Option<String>,
    /// One `"<token> <lease id>"` line per customer (`BENCH_CUSTOMERS` of the wrk script).
    pub customers_file: PathBuf,
    /// pgbench against this configuration's database (PostgreSQL setups).
    pub pgbench: Option<Pgbench>,
    // Dropped after the host: the database goes last.
    pg: Option<PgTestDb>,
}

impl Stack {
    pub async fn start(
        setup: Setup,
        binary: &str,
        packages: &std::path::Path,
        peer: &StripePeer,
        customers: usize,
    ) -> Result<Self, Error> {
        let pg = if setup.postgres() { Some(PgTestDb::create("lessor_bench").await) } else { None };
        let mut host = Served::new(binary);
        if let Some(pg) = &pg {
            host = host.postgres(&pg.url);
        }
        let namespace = setup.redis().then(|| format!("bench-{}-{}", setup.name(), uuid::Uuid::new_v4().simple()));
        if let Some(ns) = &namespace {
            host = host.redis(REDIS_URL, ns);
        }
        host.set("LESSOR_LOG_LEVEL", "warn");
        let (package, _) = setup.package();
        let mut grants = Vec::new();
        let origin = peer.origin();
        if setup == Setup::StripePgRedis {
            host.set("LESSOR_PLUGINS__STRIPE__API_BASE", origin.clone());
            host.set("LESSOR_PLUGINS__STRIPE__SECRET_KEY", STRIPE_KEY);
            host.set("LESSOR_PLUGINS__STRIPE__WEBHOOK_SECRET", "whsec_bench");
            grants = vec!["--grant-host", origin.as_str(), "--allow-private"];
        }
        host.cli(&["migrate"])?;
        host.create_admin(ADMIN_EMAIL, ADMIN_PASSWORD)?;
        host.install(&packages.join(package), &grants)?;
        host.start().await?;

        let api = host.api();
        let admin = api.login(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
        let mut lines = String::new();
        let mut first = None;
        for _ in 0..customers {
            let customer = api.customer_with_active_lease(&admin).await?;
            lines.push_str(&format!("{} {}\n", customer.token, customer.lease_id));
            first.get_or_insert(customer);
        }
        let customers_file = host.data_dir().join("customers.txt");
        std::fs::write(&customers_file, lines)?;

        let pgbench = match (&pg, first) {
            (Some(pg), Some(customer)) => {
                let (status, lease) =
                    api.send("GET", &format!("/api/v1/leases/{}", customer.lease_id), &admin, None, None).await?;
                let owner = lease["owner_id"].as_str().filter(|_| status == 200).map(str::to_owned);
                let owner = owner.ok_or_else(|| format!("reading the lease: {status} {lease}"))?;
                Some(Pgbench::new(&pg.url, &customer.lease_id, &owner))
            }
            _ => None,
        };
        Ok(Self { setup, host, namespace, customers_file, pgbench, pg })
    }

    /// One payment as wrk would make it, over the harness's client: status and body (to say
    /// what the host answers when wrk saw failures).
    pub async fn probe_payment(&self) -> String {
        let text = std::fs::read_to_string(&self.customers_file).unwrap_or_default();
        let Some((token, lease_id)) = text.lines().next().and_then(|l| l.split_once(' ')) else {
            return "no customer".into();
        };
        let customer = crate::served::Customer { token: token.to_owned(), lease_id: lease_id.to_owned() };
        let key = format!("probe-{}", uuid::Uuid::new_v4().simple());
        match self.host.api().pay(&customer, self.setup.package().1, self.setup.payment_method(), &key).await {
            Ok((status, body)) => {
                format!("a payment now: {status} {body}; the host's log:\n{}", self.host.log_tail(15))
            }
            Err(e) => format!("a payment now: {e}"),
        }
    }

    /// Keeps this configuration's database (for another configuration's pgbench rounds) and
    /// stops its host.
    pub fn into_database(mut self) -> Option<(PgTestDb, Pgbench)> {
        self.host.stop(std::time::Duration::from_secs(10));
        Some((self.pg.take()?, self.pgbench.take()?))
    }

    /// Checks what the load did: every payment in the database `succeeded`, at least as many as
    /// wrk saw answered, except requests wrk cut off when a run ended (at most `cut_off`): the
    /// host stops handling a request whose client went away, and such a payment stays `pending`
    /// for reconciliation.
    pub async fn check_payments(&self, answered: u64, cut_off: u64) -> Result<(), Error> {
        // pgbench's payments (bench/pgbench/payment.sql) have provider_tx_id `pgbench-…`.
        const BY_STATUS: &str = "SELECT status, COUNT(*) FROM payments \
            WHERE provider_tx_id IS NULL OR provider_tx_id NOT LIKE 'pgbench-%' GROUP BY status ORDER BY status";
        let rows: Vec<(String, i64)> = match &self.pg {
            Some(pg) => {
                let pool = sqlx::PgPool::connect(&pg.url).await?;
                let rows = sqlx::query_as(BY_STATUS).fetch_all(&pool).await?;
                pool.close().await;
                rows
            }
            None => {
                let file = self.host.data_dir().join("lessor.db");
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(file).read_only(true);
                let pool = sqlx::SqlitePool::connect_with(options).await?;
                let rows = sqlx::query_as(BY_STATUS).fetch_all(&pool).await?;
                pool.close().await;
                rows
            }
        };
        let count = |status: &str| rows.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n as u64);
        let (succeeded, pending) = (count("succeeded"), count("pending"));
        let others = rows.iter().any(|(s, _)| s != "succeeded" && s != "pending");
        if others || pending > cut_off || succeeded < answered {
            return Err(
                format!("{}: payments by status {rows:?}, wrk saw {answered} answered", self.setup.name()).into()
            );
        }
        println!(
            "  {}: {succeeded} payments succeeded, {pending} pending (cut off when wrk stopped), wrk saw {answered} answered",
            self.setup.name()
        );
        Ok(())
    }
}
