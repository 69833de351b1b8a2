//! `host serve` as a separate process, the way an operator runs it: for fault tests (kill -9,
//! restarts), the soak and the end-to-end benchmarks. Include it with
//! `#[path = "../support/served.rs"] mod served;` (from `tests/faults/`) or
//! `#[path = "../tests/support/served.rs"] mod served;` (from `benches/`).
//!
//! ```ignore
//! let mut host = Served::new(env!("CARGO_BIN_EXE_host"))
//!     .postgres(&db_url)
//!     .redis("redis://127.0.0.1:6379", "faults-kill9");
//! host.set("LESSOR_PLUGINS__STRIPE__SECRET_KEY", "sk_test_…");
//! host.cli(&["migrate"])?;
//! host.create_admin(ADMIN_EMAIL, PASSWORD)?;
//! host.install(&packages.join("stripe"), &["--grant-host", &peer.origin(), "--allow-private"])?;
//! host.start().await?;                      // waits for /ready (200)
//! let api = host.api();
//! let admin = api.login(ADMIN_EMAIL, PASSWORD).await?;
//! let customer = api.customer_with_active_lease(&admin).await?;
//! let (status, body) = api.pay(&customer, "stripe", "pm_card_visa", "key-1").await?;
//! host.kill();                              // SIGKILL, no shutdown
//! host.start().await?;                      // same data directory, database and port
//! ```
//!
//! Everything is real: the binary cargo built, its own temporary data directory (removed on
//! drop), its own port, the process's stdout and stderr appended to `host.log` there (printed
//! by [`Served::log_tail`] when a test fails). Environment variables named `LESSOR_*` of the
//! calling process are not passed on; everything the host sees is in [`Served::env`].
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A port free right now on 127.0.0.1 (for the host, a private PostgreSQL or Redis).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// One `host serve` process (not running until [`Served::start`]) and its command line.
pub struct Served {
    binary: PathBuf,
    dir: TempDir,
    /// The whole environment of the process and of [`Served::cli`].
    pub env: BTreeMap<String, String>,
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    child: Option<Child>,
}

impl Served {
    /// A host on a free port with a fresh data directory and the embedded defaults (SQLite, no
    /// Redis), workers that would disturb a measurement slowed down (reconciliation hourly,
    /// collection off) and rate limits far above any test's load.
    pub fn new(binary: impl AsRef<Path>) -> Self {
        let dir = tempfile::Builder::new().prefix("lessor-served-").tempdir().expect("temp dir");
        let port = free_port();
        let mut env: BTreeMap<String, String> =
            std::env::vars().filter(|(k, _)| !k.starts_with("LESSOR_") && k != "RUST_LOG").collect();
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        for (k, v) in [
            ("LESSOR_ADDR", format!("127.0.0.1:{port}")),
            ("LESSOR_DATA_DIR", dir.path().display().to_string()),
            ("LESSOR_JWT_SECRET", secret),
            ("LESSOR_LOG_FORMAT", "text".into()),
            ("LESSOR_LOG_LEVEL", "info".into()),
            ("LESSOR_RECONCILE_INTERVAL_SECS", "3600".into()),
            ("LESSOR_COLLECTION_INTERVAL_SECS", "0".into()),
            ("LESSOR_PLUGIN_RELOAD_MS", "200".into()),
            ("LESSOR_RATE_LIMIT_PER_TOKEN", "1000000".into()),
            ("LESSOR_RATE_LIMIT_PER_ADDRESS", "1000000".into()),
        ] {
            env.insert(k.into(), v);
        }
        Self {
            binary: binary.as_ref().to_owned(),
            dir,
            env,
            port,
            base: format!("http://127.0.0.1:{port}"),
            child: None,
        }
    }

    /// Use this PostgreSQL database (it must exist; `host migrate` or `serve` creates the tables).
    pub fn postgres(mut self, url: &str) -> Self {
        self.set("LESSOR_DATABASE_URL", url);
        self
    }

    /// Use Redis at `url` under the key namespace `namespace`.
    pub fn redis(mut self, url: &str, namespace: &str) -> Self {
        self.set("LESSOR_REDIS_URL", url);
        self.set("LESSOR_REDIS_NAMESPACE", namespace);
        self
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.env.insert(key.to_owned(), value.into());
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("host.log")
    }

    /// The last `lines` lines the process wrote (for failure messages).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Runs `host <args>` with this host's environment; an error carries its stderr.
    pub fn cli(&self, args: &[&str]) -> Result<Output, Error> {
        self.cli_with_stdin(args, None)
    }

    pub fn cli_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Result<Output, Error> {
        let mut child = Command::new(&self.binary)
            .args(args)
            .env_clear()
            .envs(&self.env)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(input) = stdin {
            child.stdin.take().expect("piped stdin").write_all(input.as_bytes())?;
        }
        let output = child.wait_with_output()?;
        if !output.status.success() {
            return Err(format!(
                "host {} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )
            .into());
        }
        Ok(output)
    }

    /// `host user create --role admin` with the password on stdin.
    pub fn create_admin(&self, email: &str, password: &str) -> Result<(), Error> {
        self.cli_with_stdin(
            &["user", "create", "--email", email, "--password-stdin", "--role", "admin"],
            Some(&format!("{password}\n")),
        )
        .map(drop)
    }

    /// `host plugin install <package> <flags…>`.
    pub fn install(&self, package: &Path, flags: &[&str]) -> Result<(), Error> {
        let package = package.to_str().ok_or("package path is not UTF-8")?;
        let mut args = vec!["plugin", "install", package];
        args.extend_from_slice(flags);
        self.cli(&args).map(drop)
    }

    /// Starts `host serve` and waits until `/ready` answers 200 (at most 60 s); returns how
    /// long that took. The process keeps the data directory, database and port across restarts.
    pub async fn start(&mut self) -> Result<Duration, Error> {
        if self.is_running() {
            return Err("the host is already running".into());
        }
        let log = OpenOptions::new().create(true).append(true).open(self.log_path())?;
        let started = Instant::now();
        let child = Command::new(&self.binary)
            .arg("serve")
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(60)).await.map(|_| started.elapsed())
    }

    /// Waits until `/ready` answers 200; fails when the process exits first or on timeout.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<Duration, Error> {
        let started = Instant::now();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                return Err(format!("host serve exited with {status}; log:\n{}", self.log_tail(30)).into());
            }
            if let Ok(r) = client.get(format!("{}/ready", self.base)).send().await
                && r.status() == 200
            {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                return Err(format!("host not ready within {timeout:?}; log:\n{}", self.log_tail(30)).into());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `/ready` as it answers now: status and body.
    pub async fn ready(&self) -> Result<(u16, Value), Error> {
        let r =
            reqwest::Client::new().get(format!("{}/ready", self.base)).timeout(Duration::from_secs(5)).send().await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `kill -9`: no shutdown, no flush, whatever was in flight is cut off.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for the graceful shutdown (SIGKILL after `grace`). Returns the exit code.
    pub fn stop(&mut self, grace: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok().and_then(|s| s.code());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory of the process in KiB (`VmRSS`), 0 when not running.
    pub fn rss_kib(&self) -> u64 {
        self.proc_status_kib("VmRSS:")
    }

    /// Peak resident memory of the process in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        self.proc_status_kib("VmHWM:")
    }

    fn proc_status_kib(&self, field: &str) -> u64 {
        let Some(pid) = self.pid() else { return 0 };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Open file descriptors of the process.
    pub fn open_fds(&self) -> usize {
        self.pid().and_then(|pid| std::fs::read_dir(format!("/proc/{pid}/fd")).ok()).map_or(0, |d| d.count())
    }

    /// CPU time (user + system) the process used so far.
    pub fn cpu_time(&self) -> Duration {
        self.pid().map_or(Duration::ZERO, process_cpu_time)
    }

    /// An API client for this host.
    pub fn api(&self) -> Api {
        Api::new(&self.base)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// CPU time (user + system) of process `pid`, from `/proc/<pid>/stat`.
pub fn process_cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 (1-based) of the whole line: 11 and 12 here.
    let total = ticks(11) + ticks(12);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(total * 1_000_000 / hz)
}

/// The REST API of one host, over real HTTP (keep-alive connections, 30 s timeout).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

/// A customer ready to pay: its token and an active lease of its own.
#[derive(Clone, Debug)]
pub struct Customer {
    pub token: String,
    pub lease_id: String,
}

impl Api {
    pub fn new(base: &str) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("HTTP client");
        Self { base: base.to_owned(), client }
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<String, Error> {
        let r = self
            .client
            .post(format!("{}/auth/login", self.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?;
        let status = r.status();
        let body: Value = r.json().await?;
        match body["access_token"].as_str() {
            Some(token) if status == 200 => Ok(token.to_owned()),
            _ => Err(format!("login as {email}: {status} {body}").into()),
        }
    }

    /// A new customer (created by `admin`), logged in, with a lease that `admin` activated.
    pub async fn customer_with_active_lease(&self, admin: &str) -> Result<Customer, Error> {
        let email = format!("customer-{}@served.test", uuid::Uuid::new_v4().simple());
        let password = "correct horse battery staple";
        let (status, body) = self
            .send(
                "POST",
                "/api/v1/users",
                admin,
                Some(json!({"email": email, "password": password, "role": "customer"})),
                None,
            )
            .await?;
        if status != 201 {
            return Err(format!("creating a customer: {status} {body}").into());
        }
        let token = self.login(&email, password).await?;
        let lease = json!({
            "vehicle": {"vin": "WDD2220821A123456", "make": "Mercedes-Benz", "model": "S 580", "year": 2025, "category": "luxury"},
            "start_date": "2026-12-31", "term_months": 12, "monthly_amount": 129900, "deposit": 0, "currency": "EUR"
        });
        let (status, body) = self.send("POST", "/api/v1/leases", &token, Some(lease), None).await?;
        let lease_id = body["id"]
            .as_str()
            .filter(|_| status == 201)
            .ok_or_else(|| format!("creating a lease: {status} {body}"))?
            .to_owned();
        let (status, body) = self
            .send("PATCH", &format!("/api/v1/leases/{lease_id}"), admin, Some(json!({"status": "active"})), None)
            .await?;
        if status != 200 {
            return Err(format!("activating the lease: {status} {body}").into());
        }
        Ok(Customer { token, lease_id })
    }

    /// `POST /api/v1/payments` for `customer`'s lease: status and body.
    pub async fn pay(
        &self,
        customer: &Customer,
        provider: &str,
        payment_method: &str,
        idempotency_key: &str,
    ) -> Result<(u16, Value), Error> {
        let body = json!({"lease_id": customer.lease_id, "amount": 1000, "currency": "EUR", "provider": provider,
                          "payment_method": payment_method});
        self.send("POST", "/api/v1/payments", &customer.token, Some(body), Some(idempotency_key)).await
    }

    /// One request with a bearer token (and an Idempotency-Key when given): status and JSON
    /// body (`null` when the body is not JSON).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(u16, Value), Error> {
        let method: reqwest::Method = method.parse()?;
        let mut request = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }
}
