//! Test harness: a fresh database per test (SQLite file or PostgreSQL database), the TON test
//! peer (`tests/ton-peer`, a toncenter-compatible API over a real TVM) on a port of its own,
//! fast timings, and the events plumbing (outbox, relay, in-process bus) of lessor-events.
//!
//! PostgreSQL comes from `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
//! Redis from `TEST_REDIS_URL` (default `redis://127.0.0.1:6379`).

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use lessor_chain::Timing;
use lessor_chain::api::{ChainTransaction, TxQuery};
use lessor_chain::config::ApiSettings;
use lessor_chain::{
    ChainMetrics, ChainPipeline, ChainSettings, ChainStatus, ChainStore, ChainWorker, Network, OperatorWallet,
    Recipient, TonApi, ToncenterClient, WalletVersion,
};
use lessor_events::{Event, EventBus, InProcessBus, Outbox, PAYMENTS, PaymentCompleted, Relay, RelayConfig};
use lessor_store::Db;
pub use lessor_store::testing::{Engine, TestDb};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonlib_core::TonAddress;
use uuid::Uuid;

/// Runs an `async fn(Engine)` test once per engine, as `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_each_engine {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::helpers::Engine;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name(Engine::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name(Engine::Postgres).await }
        }
    )*};
}

/// Logs to the test output when `TEST_LOG` is set (e.g. `TEST_LOG=lessor_chain=debug`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TEST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// A migrated database of one engine, gone when dropped.
async fn test_db(engine: Engine) -> TestDb {
    init_logging();
    TestDb::new(engine, "lessor_chain_test").await
}

fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("ton-peer")
}

/// `npm ci` in the peer's folder when its dependencies are missing: once per test binary.
fn ensure_node_modules() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let dir = peer_dir();
        if dir.join("node_modules").join("@ton").join("sandbox").is_dir() {
            return;
        }
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm is installed (Node 20)");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    });
}

/// The TON test peer: a toncenter v2 API over @ton/sandbox, killed when dropped.
pub struct TonPeer {
    pub port: u16,
    http: reqwest::Client,
    _child: Child,
}

impl TonPeer {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        ensure_node_modules();
        let mut command = Command::new("node");
        command
            .arg("server.js")
            .arg("0")
            .current_dir(peer_dir())
            .env("TON_PEER_EXIT_ON_STDIN_EOF", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("node is installed");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the TON peer starts within a minute")
            .unwrap()
            .expect("the TON peer prints its port");
        let port = first.trim().parse().expect("a port");
        Self { port, http: reqwest::Client::new(), _child: child }
    }

    pub fn api_url(&self) -> url::Url {
        url::Url::parse(&format!("http://127.0.0.1:{}/api/v2", self.port)).unwrap()
    }

    pub async fn test(&self, endpoint: &str, body: Value) -> Value {
        let url = format!("http://127.0.0.1:{}/_test/{endpoint}", self.port);
        let response = self.http.post(&url).json(&body).send().await.unwrap();
        let status = response.status();
        let value: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{endpoint}: {value}");
        value
    }

    async fn test_get(&self, endpoint: &str, query: &[(&str, String)]) -> Value {
        let url = format!("http://127.0.0.1:{}/_test/{endpoint}", self.port);
        self.http.get(&url).query(query).send().await.unwrap().json().await.unwrap()
    }

    /// Credits `nanotons` to the address (non-bounceable, from a treasury).
    pub async fn fund(&self, address: &TonAddress, nanotons: u64) {
        self.test("fund", json!({"address": address.to_hex(), "amount": nanotons.to_string()})).await;
    }

    /// The next `count` API requests are answered `status` (429, 500, …).
    pub async fn fail_next(&self, status: u16, count: u32) {
        self.test("faults", json!({"status": status, "count": count})).await;
    }

    /// Keep accepted messages unexecuted (a mempool) until [`Self::release`].
    pub async fn hold(&self, enabled: bool) {
        self.test("hold", json!({"enabled": enabled})).await;
    }

    /// Executes the held messages in arrival order; for each, whether it was executed.
    pub async fn release(&self) -> Vec<(String, bool)> {
        let out = self.test("release", json!({})).await;
        out["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["hash"].as_str().unwrap().to_owned(), r["executed"].as_bool().unwrap()))
            .collect()
    }

    pub async fn advance_time(&self, seconds: u64) {
        self.test("advanceTime", json!({"seconds": seconds})).await;
    }

    /// The external messages the wallet executed, in order.
    pub async fn transfers(&self, wallet: &TonAddress) -> Vec<Executed> {
        let out = self.test_get("transfers", &[("wallet", wallet.to_hex())]).await;
        out["transfers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| Executed {
                hash: t["hash"].as_str().unwrap().to_owned(),
                seqno_before: t["seqno_before"].as_i64(),
                seqno_after: t["seqno_after"].as_i64(),
                messages: t["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| Sent {
                        destination: m["destination"].as_str().unwrap().to_owned(),
                        value: m["value"].as_str().unwrap().parse().unwrap(),
                        comment: m["comment"].as_str().map(str::to_owned),
                    })
                    .collect(),
            })
            .collect()
    }

    pub async fn stats(&self) -> Value {
        self.test_get("stats", &[]).await
    }
}

/// An external message the peer executed for a wallet.
#[derive(Debug, Clone)]
pub struct Executed {
    /// Hex hash of the external message.
    pub hash: String,
    /// The wallet's seqno before and after (`None` before deployment).
    pub seqno_before: Option<i64>,
    pub seqno_after: Option<i64>,
    /// The internal messages the wallet sent.
    pub messages: Vec<Sent>,
}

#[derive(Debug, Clone)]
pub struct Sent {
    /// Raw form `0:<hex>`.
    pub destination: String,
    pub value: u64,
    pub comment: Option<String>,
}

// Public test vectors of tonlib-core (never funded on any real network).
const PHRASE_V4: &str = "fancy carpet hello mandate penalty trial consider property top vicious exit rebuild tragic profit urban major total month holiday sudden rib gather media vicious";
const PHRASE_V5: &str = "section garden tomato dinner season dice renew length useful spin trade intact use universe what post spike keen mandate behind concert egg doll rug";

/// The operator wallet of a version, derived once per test binary (key derivation is slow
/// in unoptimised builds).
pub fn operator_wallet(version: WalletVersion) -> Arc<OperatorWallet> {
    static WALLETS: OnceLock<Mutex<HashMap<WalletVersion, Arc<OperatorWallet>>>> = OnceLock::new();
    let wallets = WALLETS.get_or_init(Default::default);
    if let Some(w) = wallets.lock().unwrap().get(&version) {
        return w.clone();
    }
    let phrase = match version {
        WalletVersion::V4R2 => PHRASE_V4,
        WalletVersion::V5R1 => PHRASE_V5,
    };
    let wallet = Arc::new(
        OperatorWallet::from_mnemonic(&SecretString::from(phrase.to_owned()), version, Network::Mainnet, None).unwrap(),
    );
    wallets.lock().unwrap().entry(version).or_insert(wallet).clone()
}

/// The receipts' recipient in the tests (raw form: non-bounceable).
pub const RECIPIENT: &str = "0:5f00d0f3d00d4b3b25e4fd5a7b0e4b0c2e3c6d9f1a2b3c4d5e6f708192a3b4c5";

pub fn fast_timing() -> Timing {
    Timing {
        poll_interval: Duration::from_millis(25),
        max_poll_interval: Duration::from_millis(250),
        message_ttl: Duration::from_secs(60),
        expiry_margin: Duration::from_secs(1),
        resend_interval: Duration::from_secs(2),
        lease_ttl: Duration::from_secs(3),
        max_attempts: 5,
        error_backoff_max: Duration::from_millis(300),
    }
}

pub fn api_settings(url: url::Url) -> ApiSettings {
    ApiSettings {
        url,
        api_key: None,
        request_timeout: Duration::from_secs(5),
        max_retries: 4,
        retry_min: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
    }
}

/// Settings for a worker of `version` against `peer`, sending 0.01 TON to [`RECIPIENT`].
pub fn settings(peer: &TonPeer, version: WalletVersion) -> ChainSettings {
    ChainSettings {
        api: api_settings(peer.api_url()),
        wallet: operator_wallet(version),
        recipient: Recipient::parse(RECIPIENT).unwrap().0,
        amount_nanoton: 10_000_000,
        network: Network::Mainnet,
        timing: fast_timing(),
    }
}

pub fn client(peer: &TonPeer) -> ToncenterClient {
    ToncenterClient::new(&api_settings(peer.api_url())).unwrap()
}

/// A `payment.completed` event with fresh ids.
pub fn payment_completed(amount: i64) -> (Event, PaymentCompleted) {
    let payment = PaymentCompleted {
        payment_id: Uuid::new_v4(),
        lease_id: Uuid::new_v4(),
        installment_id: Some(Uuid::new_v4()),
        amount,
        currency: "EUR".into(),
        provider: "stripe".into(),
        provider_tx_id: format!("pi_{amount}"),
    };
    (Event::new(payment.clone().into()), payment)
}

/// Stops background loops: each task gets `signal()`, the test calls `stop()`.
#[derive(Clone)]
pub struct Stop(Arc<tokio::sync::watch::Sender<bool>>);

impl Stop {
    pub fn new() -> Self {
        Self(Arc::new(tokio::sync::watch::channel(false).0))
    }

    pub fn signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }

    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// Polls `check` until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Everything a test of the whole flow needs: a database, the peer with a funded operator
/// wallet, the in-process bus with its relay running.
pub struct World {
    pub t: TestDb,
    pub peer: TonPeer,
    pub settings: ChainSettings,
    pub bus: InProcessBus,
    pub relay_wake: Arc<tokio::sync::Notify>,
    pub stop: Stop,
    pub metrics: ChainMetrics,
}

impl World {
    /// A world whose operator wallet holds 1000 TON (not deployed yet).
    pub async fn new(engine: Engine, version: WalletVersion) -> Self {
        let world = Self::unfunded(engine, version).await;
        world.peer.fund(world.wallet(), 1_000_000_000_000).await;
        world
    }

    /// A world whose operator wallet holds nothing.
    pub async fn unfunded(engine: Engine, version: WalletVersion) -> Self {
        let (t, peer) = tokio::join!(test_db(engine), TonPeer::start());
        let settings = settings(&peer, version);
        let bus = InProcessBus::new(t.db.clone());
        let stop = Stop::new();
        let relay_wake = Arc::new(tokio::sync::Notify::new());
        let mut config = RelayConfig::new(PAYMENTS);
        config.poll = Duration::from_millis(50);
        config.min_backoff = Duration::from_millis(20);
        config.max_backoff = Duration::from_millis(200);
        let relay = Relay::new(t.db.clone(), Arc::new(bus.sink()), config);
        tokio::spawn(relay.run(relay_wake.clone(), |_| {}, stop.signal()));
        Self { t, peer, settings, bus, relay_wake, stop, metrics: ChainMetrics::new() }
    }

    pub fn db(&self) -> &Db {
        &self.t.db
    }

    pub fn store(&self) -> ChainStore {
        ChainStore::new(self.t.db.clone())
    }

    pub fn wallet(&self) -> &TonAddress {
        self.settings.wallet.address()
    }

    pub fn api(&self) -> Arc<dyn TonApi> {
        Arc::new(client(&self.peer))
    }

    /// A pipeline of its own (a "process"), named `holder`.
    pub fn pipeline(&self, holder: &str) -> Arc<ChainPipeline> {
        Arc::new(ChainPipeline::new(self.store(), self.api(), &self.settings, self.metrics.clone()).with_holder(holder))
    }

    /// A worker reading the in-process bus with short timings.
    pub fn worker(&self, holder: &str) -> ChainWorker {
        let bus: Arc<dyn EventBus> = Arc::new(self.bus.clone());
        ChainWorker::from_pipeline(self.pipeline(holder), bus, self.metrics.clone()).with_subscription(|s| {
            s.consumer = holder.to_owned();
            s.block = Duration::from_millis(100);
            s.claim_idle = Duration::from_millis(1_500);
        })
    }

    /// Starts a worker until `stop`; returns its task.
    pub fn spawn_worker(&self, holder: &str, stop: &Stop) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.worker(holder).run(stop.signal()))
    }

    /// Writes events to the outbox (each in a transaction of its own) and wakes the relay.
    pub async fn publish(&self, events: &[Event]) {
        let outbox = Outbox::new(self.t.db.clone());
        for event in events {
            outbox.enqueue(PAYMENTS, event).await.unwrap();
        }
        self.relay_wake.notify_one();
    }

    pub async fn status(&self, payment_id: Uuid) -> Option<ChainStatus> {
        self.store().status_of(payment_id).await.unwrap().map(|v| v.status)
    }

    pub async fn wait_confirmed(&self, payment_ids: &[Uuid], within: Duration) {
        let store = self.store();
        eventually(within, "every payment confirmed", || async {
            let statuses = store.statuses_of(payment_ids).await.unwrap();
            statuses.len() == payment_ids.len() && statuses.values().all(|v| v.status == ChainStatus::Confirmed)
        })
        .await;
    }

    /// The transactions of the recipient (newest first), through the toncenter API.
    pub async fn recipient_transactions(&self) -> Vec<ChainTransaction> {
        let address = Recipient::parse(RECIPIENT).unwrap().0.address;
        let query = TxQuery { limit: 100, from: None, to_lt: 0 };
        client(&self.peer).transactions(&address, &query).await.unwrap()
    }

    /// The wallet's executed messages that made a transfer, with the receipt's payment id.
    pub async fn transfers_by_payment(&self) -> Vec<(Uuid, Executed)> {
        let mut out = Vec::new();
        for executed in self.peer.transfers(self.wallet()).await {
            for sent in &executed.messages {
                let receipt =
                    sent.comment.as_deref().and_then(lessor_chain::Receipt::parse).expect("a receipt comment");
                out.push((receipt.payment_id, executed.clone()));
            }
        }
        out
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop.stop();
    }
}
