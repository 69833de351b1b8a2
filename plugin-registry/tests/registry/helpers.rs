//! Test harness: a registry on a fresh database (SQLite file in a temp dir, or a PostgreSQL
//! database created for the test and dropped after), fake packages and a fake checker.
//!
//! PostgreSQL comes from `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

use std::path::{Path, PathBuf};

use lessor_plugin_registry::{
    ComponentChecker, ComponentRefusal, KeyId, Manifest, OriginPattern, Package, PublisherKey, Registry,
    SignaturePolicy, write_signature,
};
use lessor_store::testing::PgTestDb;
use lessor_store::{DatabaseTarget, Db};
use tempfile::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Runs an `async fn(Engine)` test once per engine, as `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::helpers::Engine;
            #[tokio::test]
            async fn sqlite() { super::$name(Engine::Sqlite).await }
            #[tokio::test]
            async fn postgres() { super::$name(Engine::Postgres).await }
        }
    )*};
}

/// One test's world: a migrated database, a registry over it, a scratch directory.
pub struct TestEnv {
    pub db: Db,
    pub registry: Registry,
    pub dir: TempDir,
    target: DatabaseTarget,
    _pg: Option<PgTestDb>,
}

impl TestEnv {
    pub async fn new(engine: Engine) -> Self {
        Self::with_policy(engine, SignaturePolicy::default()).await
    }

    pub async fn with_policy(engine: Engine, policy: SignaturePolicy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pg = match engine {
            Engine::Sqlite => None,
            Engine::Postgres => Some(PgTestDb::create("lessor_registry_test").await),
        };
        let target = DatabaseTarget::from_config(pg.as_ref().map(|p| p.url.as_str()), dir.path()).unwrap();
        let db = Db::connect(&target).await.expect("database connects");
        db.migrate().await.expect("migrations apply");
        let registry = Registry::with_db(db.clone(), store_at(&dir.path().join("store")), policy);
        Self { db, registry, dir, target, _pg: pg }
    }

    /// Another host on the same database, with a package store of its own.
    pub async fn replica(&self, name: &str) -> Registry {
        let db = Db::connect(&self.target).await.expect("replica connects");
        Registry::with_db(db, store_at(&self.dir.path().join(name)), self.registry.policy().clone())
    }

    /// A fresh directory under the scratch directory.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join("packages").join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    /// Writes and loads a package for `provider@version` (see [`write_package`]).
    pub fn package(&self, provider: &str, version: &str) -> Package {
        let dir = self.scratch(&format!("{provider}-{version}"));
        write_package(&dir, provider, version, &[]);
        Package::load(&dir).unwrap()
    }
}

fn store_at(path: &Path) -> lessor_plugin_registry::PackageStore {
    lessor_plugin_registry::PackageStore::open(path).unwrap()
}

/// The fake component of `provider@version`: any bytes will do for the fake checker.
pub fn component_bytes(provider: &str, version: &str) -> Vec<u8> {
    format!("\0asm fake component of {provider}@{version}").into_bytes()
}

/// Writes `dir/plugin.toml` (plus `extra` lines) and `dir/<provider>.wasm`.
pub fn write_package(dir: &Path, provider: &str, version: &str, extra: &[&str]) {
    let mut manifest = format!(
        "name = \"{provider}\"\nversion = \"{version}\"\nwit = \"lessor:payments@0.1.0\"\n\
         provider = \"{provider}\"\ncomponent = \"{provider}.wasm\"\nhosts = [\"https://api.{provider}.test\"]\n\
         secrets = [\"api_key\"]\n"
    );
    for line in extra {
        manifest.push_str(line);
        manifest.push('\n');
    }
    std::fs::write(dir.join("plugin.toml"), manifest).unwrap();
    std::fs::write(dir.join(format!("{provider}.wasm")), component_bytes(provider, version)).unwrap();
}

/// Signs the package directory with `key` (writes `plugin.sig`).
pub fn sign_dir(dir: &Path, key: &PublisherKey) {
    let package = Package::load(dir).unwrap();
    write_signature(dir, &key.sign_package(&package)).unwrap();
}

pub fn publisher(id: &str) -> PublisherKey {
    PublisherKey::generate(KeyId::parse(id).unwrap())
}

pub fn grant(s: &str) -> OriginPattern {
    OriginPattern::parse_grant(s).unwrap()
}

/// Stands in for the host's wasmtime check: knows `lessor:payments@0.1.0` only, and refuses a
/// component whose bytes contain `no-provider-export`.
pub struct FakeChecker;

pub const KNOWN_WIT: &str = "lessor:payments@0.1.0";

impl ComponentChecker for FakeChecker {
    fn check(&self, manifest: &Manifest, component: &[u8]) -> Result<(), ComponentRefusal> {
        if manifest.wit() != KNOWN_WIT {
            return Err(ComponentRefusal::UnknownWit {
                claimed: manifest.wit().to_owned(),
                known: vec![KNOWN_WIT.to_owned()],
            });
        }
        if component.windows(18).any(|w| w == b"no-provider-export") {
            return Err(ComponentRefusal::MissingExport { export: "lessor:payments/provider@0.1.0".into() });
        }
        Ok(())
    }
}
