//! One `host serve` process on a given PostgreSQL database and Redis, with the real Stripe and
//! bank plugins (built by `cargo xtask plugins`) calling local Stripe and bank peers in this
//! process, workers running (reconciliation every second), an admin and customers with active
//! leases: the first pays by SEPA direct debit through the bank, the others by card at Stripe.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::build::packages_dir;
use crate::peers::bank::BankPeer;
use crate::peers::stripe::StripePeer;
use crate::served::{Api, Customer, Error, Served};

pub const STRIPE_KEY: &str = "sk_test_faults_51Hx";
const ADMIN: (&str, &str) = ("faults-admin@lessor.test", "faults admin password 123");
const CUSTOMER_PASSWORD: &str = "correct horse battery staple";
const BANK_CLIENT: &str = "lessor-faults";
const BANK_SECRET: &str = "bank-faults-secret";
/// The Bundesbank's example SEPA creditor identifier (valid check digits).
const CREDITOR_ID: &str = "DE98ZZZ09999999999";

/// A customer whose password the test knows, so it can log in again (sessions live in Redis,
/// and a Redis that lost its data lost them).
#[derive(Clone, Debug)]
pub struct Payer {
    pub email: String,
    pub customer: Customer,
    /// `stripe` or `bank`, and the payment method it takes.
    pub provider: &'static str,
    pub payment_method: Value,
}

pub struct Stack {
    pub host: Served,
    pub stripe: StripePeer,
    pub bank: BankPeer,
    pub namespace: String,
    pub payers: Vec<Payer>,
}

impl Stack {
    /// Migrates, creates the admin, installs the Stripe plugin, starts the host, creates
    /// `customers` customers with an active lease each.
    pub async fn start(db_url: &str, redis_url: &str, customers: usize) -> Result<Self, Error> {
        Self::start_with(db_url, redis_url, customers, &[]).await
    }

    /// As [`Stack::start`], with more environment variables for the host.
    pub async fn start_with(
        db_url: &str,
        redis_url: &str,
        customers: usize,
        env: &[(&str, &str)],
    ) -> Result<Self, Error> {
        let stripe = StripePeer::start(STRIPE_KEY).await;
        let bank = BankPeer::start(BANK_CLIENT, BANK_SECRET).await;
        let namespace = format!("faults-{}", uuid::Uuid::new_v4().simple());
        let mut host = Served::new(env!("CARGO_BIN_EXE_host")).postgres(db_url).redis(redis_url, &namespace);
        host.set("LESSOR_PLUGINS__STRIPE__API_BASE", stripe.origin());
        host.set("LESSOR_PLUGINS__STRIPE__SECRET_KEY", STRIPE_KEY);
        host.set("LESSOR_PLUGINS__STRIPE__WEBHOOK_SECRET", "whsec_faults");
        host.set("LESSOR_PLUGINS__BANK__API_BASE", bank.origin());
        host.set("LESSOR_PLUGINS__BANK__CLIENT_ID", BANK_CLIENT);
        host.set("LESSOR_PLUGINS__BANK__CREDITOR_ID", CREDITOR_ID);
        host.set("LESSOR_PLUGINS__BANK__CLIENT_SECRET", BANK_SECRET);
        host.set("LESSOR_PLUGINS__BANK__WEBHOOK_SECRET", "bank-faults-webhook");
        host.set("LESSOR_RECONCILE_INTERVAL_SECS", "1");
        // Compiling a component takes a debug build of wasmtime tens of seconds: the hosts of
        // the suite share precompiled ones (keyed by digest and engine, see plugins/cache.rs).
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-plugin-cache");
        host.set("LESSOR_PLUGIN_CACHE_DIR", cache.display().to_string());
        host.set("LESSOR_DATABASE_MAX_CONNECTIONS", "8");
        host.set("LESSOR_LOG_LEVEL", "info,sqlx=warn");
        for (key, value) in env {
            host.set(key, *value);
        }
        host.cli(&["migrate"])?;
        host.create_admin(ADMIN.0, ADMIN.1)?;
        host.install(&packages_dir().join("stripe"), &["--grant-host", &stripe.origin(), "--allow-private"])?;
        host.install(&packages_dir().join("bank"), &["--grant-host", &bank.origin(), "--allow-private"])?;
        host.start().await?;
        let api = host.api();
        let admin = api.login(ADMIN.0, ADMIN.1).await?;
        let mut payers = Vec::new();
        for n in 0..customers {
            let mut payer = payer(&api, &admin).await?;
            if n == 0 {
                payer.provider = "bank";
                payer.payment_method = json!({"iban": "DE89 3704 0044 0532 0130 00", "bic": "COBADEFFXXX",
                    "mandate_reference": "LESSOR-FAULTS-1", "mandate_signed_on": "2024-01-15",
                    "debtor_name": "Erika Mustermann"});
            }
            payers.push(payer);
        }
        Ok(Self { host, stripe, bank, namespace, payers })
    }

    /// Restarts a host that was killed (same data directory, database, Redis and port).
    pub async fn restart(&mut self) -> Result<Duration, Error> {
        self.host.start().await
    }
}

/// A new customer with an active lease, logged in.
async fn payer(api: &Api, admin: &str) -> Result<Payer, Error> {
    let email = format!("payer-{}@faults.test", uuid::Uuid::new_v4().simple());
    let body = json!({"email": email, "password": CUSTOMER_PASSWORD, "role": "customer"});
    let (status, answer) = api.send("POST", "/api/v1/users", admin, Some(body), None).await?;
    if status != 201 {
        return Err(format!("creating a customer: {status} {answer}").into());
    }
    let token = api.login(&email, CUSTOMER_PASSWORD).await?;
    let lease = json!({
        "vehicle": {"vin": "WDD2220821A123456", "make": "Mercedes-Benz", "model": "S 580", "year": 2025, "category": "luxury"},
        "start_date": "2026-12-31", "term_months": 12, "monthly_amount": 129900, "deposit": 0, "currency": "EUR"
    });
    let (status, answer) = api.send("POST", "/api/v1/leases", &token, Some(lease), None).await?;
    let lease_id =
        answer["id"].as_str().filter(|_| status == 201).ok_or(format!("lease: {status} {answer}"))?.to_owned();
    let path = format!("/api/v1/leases/{lease_id}");
    let (status, answer) = api.send("PATCH", &path, admin, Some(json!({"status": "active"})), None).await?;
    if status != 200 {
        return Err(format!("activating the lease: {status} {answer}").into());
    }
    let customer = Customer { token, lease_id };
    Ok(Payer { email, customer, provider: "stripe", payment_method: json!("pm_card_visa") })
}

/// Logs `payer` in again.
pub async fn relogin(api: &Api, payer: &Payer) -> Result<String, Error> {
    api.login(&payer.email, CUSTOMER_PASSWORD).await
}
