//! A provider written out of tree, as a third party would: `host plugin new` in a temporary
//! folder outside this repository, its own unit test on the SDK's harness (`cargo test`),
//! `host plugin pack --sign`, `host plugin install` of the archive into a running `host serve`,
//! and a payment through it to a local stand-in for the provider's API.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::plugin_build::workspace_root;
use crate::served::Served;

const HOST: &str = env!("CARGO_BIN_EXE_host");
const ADMIN: &str = "admin@authoring.test";
const PASSWORD: &str = "correct horse battery staple";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

/// `cargo` for the scaffolded crate. The plugins workspace's target directory is shared as a
/// build cache (same dependencies, same release profile), and its lock file pins the same
/// dependency versions, so the test compiles the new crate rather than the SDK's dependencies.
fn cargo(dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(dir).env("CARGO_TARGET_DIR", workspace_root().join("plugins").join("target"));
    cmd.env_remove("CARGO_BUILD_TARGET").env_remove("RUSTFLAGS");
    cmd
}

/// The provider's API: `POST /payments` answers a transaction id of its own per request.
async fn provider_api() -> (u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/payments",
        axum::routing::post(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move { (axum::http::StatusCode::CREATED, format!("pay_{n}")) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, hits)
}

#[tokio::test]
async fn a_provider_written_out_of_tree_is_scaffolded_tested_packed_signed_installed_and_pays() {
    let outside = tempfile::Builder::new().prefix("acme-author-").tempdir().unwrap();
    let folder = outside.path();
    assert!(!folder.starts_with(workspace_root()), "the author works outside the repository");
    let sdk = workspace_root().join("plugins").join("sdk");

    // Scaffold.
    let out = run(Command::new(HOST).args(["plugin", "new", "acme", "--dir"]).arg(folder).arg("--sdk-path").arg(&sdk));
    assert!(out.contains("created") && out.contains("cargo test"), "{out}");
    let crate_dir = folder.join("acme");
    for file in ["Cargo.toml", "plugin.toml", "src/lib.rs", ".gitignore"] {
        assert!(crate_dir.join(file).is_file(), "{file} scaffolded");
    }
    let manifest = std::fs::read_to_string(crate_dir.join("plugin.toml")).unwrap();
    assert!(!manifest.lines().any(|l| l.starts_with("version")), "the version lives in Cargo.toml only:\n{manifest}");
    std::fs::copy(workspace_root().join("plugins").join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    let refused = Command::new(HOST).args(["plugin", "new", "acme", "--dir"]).arg(folder).output().unwrap();
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already exists"));

    // Its own unit test, on the SDK's harness: no host, no database, no network.
    let tested = run(cargo(&crate_dir).args(["test", "--quiet"]));
    assert!(tested.contains("2 passed"), "{tested}");

    // Pack, signed.
    let key = folder.join("acme.key");
    let keygen = run(Command::new(HOST).args(["plugin", "keygen", "--id", "acme", "--out"]).arg(&key));
    let public = keygen.lines().find_map(|l| l.strip_prefix("LESSOR_PLUGIN_TRUSTED_KEYS__ACME=")).unwrap().to_owned();
    let mut pack = Command::new(HOST);
    pack.args(["plugin", "pack"]).arg(&crate_dir).arg("--sign").arg(&key);
    pack.env("CARGO_TARGET_DIR", workspace_root().join("plugins").join("target"));
    let packed = run(&mut pack);
    assert!(packed.contains("packed acme@0.1.0") && packed.contains("signed by key `acme`"), "{packed}");
    let archive = crate_dir.join("acme-0.1.0.tar.gz");
    assert!(archive.is_file(), "{packed}");

    // Install into a running host that requires signatures, and pay.
    let (port, hits) = provider_api().await;
    let origin = format!("http://localhost:{port}");
    let mut host = Served::new(HOST);
    host.set("LESSOR_PLUGIN_REQUIRE_SIGNATURES", "true");
    host.set("LESSOR_PLUGIN_TRUSTED_KEYS__ACME", public);
    host.set("LESSOR_PLUGINS__ACME__API_BASE", origin.clone());
    host.set("LESSOR_PLUGINS__ACME__API_KEY", "key_live_1");
    host.cli(&["migrate"]).unwrap();
    host.create_admin(ADMIN, PASSWORD).unwrap();
    host.install(&archive, &["--grant-host", &origin, "--allow-private"]).unwrap();
    host.start().await.unwrap();
    let api = host.api();
    let admin = api.login(ADMIN, PASSWORD).await.unwrap();
    let customer = api.customer_with_active_lease(&admin).await.unwrap();
    let (status, payment) = api.pay(&customer, "acme", "tok_visa", "first-acme-payment").await.unwrap();
    assert_eq!((status, payment["status"].as_str()), (201, Some("succeeded")), "{payment:#}\n{}", host.log_tail(20));
    assert_eq!(payment["provider_tx_id"], "pay_1");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Version in two places is refused at pack, naming both.
    let with_version = manifest.replacen("wit =", "version = \"0.2.0\"\nwit =", 1);
    std::fs::write(crate_dir.join("plugin.toml"), with_version).unwrap();
    let refused = Command::new(HOST).args(["plugin", "pack"]).arg(&crate_dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("0.2.0") && stderr.contains("Cargo.toml says 0.1.0"),
        "{stderr}"
    );
}
