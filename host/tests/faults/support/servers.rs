//! The servers a fault test breaks: a PostgreSQL cluster and a Redis server of its own (never the
//! machine's shared ones, which other tests use), and a fresh database on the shared PostgreSQL
//! for the tests that only break the host.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::served::free_port;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The shared server for tests that do not restart PostgreSQL: `TEST_POSTGRES_URL` or the local one.
pub fn shared_postgres_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The shared Redis: `TEST_REDIS_URL` or the local one.
pub fn shared_redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a database URL ends in /<name>");
    format!("{base}/{name}")
}

fn run(what: &str, command: &mut Command) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {:?}: {e} (is it installed?)", command.get_program()));
    assert!(
        output.status.success(),
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A database created on a PostgreSQL server for one test, dropped (with `psql`) on drop.
pub struct Database {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl Database {
    /// Creates `lessor_faults_<uuid>` on the server `admin_url` points at.
    pub fn create(admin_url: &str) -> Self {
        let name = format!("lessor_faults_{}", uuid::Uuid::new_v4().simple());
        run("CREATE DATABASE", Command::new("psql").args([admin_url, "-qc", &format!("CREATE DATABASE {name}")]));
        Self { admin_url: admin_url.to_owned(), url: with_database(admin_url, &name), name }
    }
}

impl Database {
    /// `pg_dump -Fc` of the database into `file`.
    pub fn dump(&self, file: &Path) {
        run("pg_dump", Command::new("pg_dump").args(["-Fc", "-f"]).arg(file).arg(&self.url));
    }

    /// Replaces the database by the dump in `file`: dropped (its connections ended), created
    /// again, `pg_restore`d.
    pub fn restore(&self, file: &Path) {
        let drop = format!("DROP DATABASE {} WITH (FORCE)", self.name);
        run("DROP DATABASE", Command::new("psql").args([&self.admin_url, "-qc", &drop]));
        run(
            "CREATE DATABASE",
            Command::new("psql").args([&self.admin_url, "-qc", &format!("CREATE DATABASE {}", self.name)]),
        );
        run("pg_restore", Command::new("pg_restore").args(["--exit-on-error", "-d", &self.url]).arg(file));
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([&self.admin_url, "-qc", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .stdin(Stdio::null())
            .output();
    }
}

/// A PostgreSQL 15 cluster of this test's own (`initdb` + `pg_ctl` in a temporary directory, on
/// a free port), stopped and removed on drop.
pub struct PrivatePostgres {
    dir: TempDir,
    pub port: u16,
}

impl PrivatePostgres {
    /// `initdb` and start. Panics naming the missing program when PostgreSQL 15 is not installed.
    pub fn start() -> Self {
        assert!(
            Path::new(PG_BIN).join("initdb").exists(),
            "the fault suite needs PostgreSQL 15's server programs in {PG_BIN} (initdb, pg_ctl): install postgresql-15"
        );
        let dir = tempfile::Builder::new().prefix("lessor-faults-pg-").tempdir().expect("temp dir");
        let this = Self { dir, port: free_port() };
        if is_root() {
            // initdb refuses to run as root: the cluster belongs to `postgres`.
            run("chown", Command::new("chown").args(["-R", "postgres:postgres"]).arg(this.dir.path()));
        }
        run(
            "initdb",
            &mut this.as_owner("initdb", &["-D", &this.data(), "-A", "trust", "-U", "postgres", "--no-sync"]),
        );
        this.start_again();
        this
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn as_owner(&self, program: &str, args: &[&str]) -> Command {
        let program = PathBuf::from(PG_BIN).join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command.args(args);
        command
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// `pg_ctl start -w`: returns once the server accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=60",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        run(
            "pg_ctl start",
            &mut self.as_owner("pg_ctl", &["-D", &self.data(), "-l", &log, "-o", &options, "-w", "start"]),
        );
    }

    /// `pg_ctl stop -m <mode>` (`fast`: connections are ended; `immediate`: a crash, recovery at start).
    pub fn stop(&self, mode: &str) {
        run("pg_ctl stop", &mut self.as_owner("pg_ctl", &["-D", &self.data(), "-m", mode, "-w", "stop"]));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.as_owner("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]).output();
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A `redis-server` of this test's own without persistence (`--save "" --appendonly no`): a
/// restart comes back empty, as a Redis without persistence does.
pub struct PrivateRedis {
    dir: TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("lessor-faults-redis-").tempdir().expect("temp dir");
        let mut this = Self { dir, port: free_port(), child: None };
        this.start_again().await;
        this
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (empty) and waits until it answers `PING`.
    pub async fn start_again(&mut self) {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("the fault suite needs redis-server on PATH (install redis-server): {e}"));
        self.child = Some(child);
        let client = redis::Client::open(self.url()).expect("Redis URL");
        let started = Instant::now();
        loop {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut c).await.is_ok()
            {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "redis-server on port {port} did not answer");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `kill -9`: everything it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Deletes every key of `namespace` on the Redis at `url` (best effort, at the end of a test).
pub async fn remove_namespace(url: &str, namespace: &str) {
    let Ok(client) = redis::Client::open(url) else { return };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else { return };
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{namespace}:*")).query_async(&mut conn).await.unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<u64, _> = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await;
    }
}
