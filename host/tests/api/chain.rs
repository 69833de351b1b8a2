//! The chain worker inside `host serve`: a card payment succeeds, its `payment.completed` event
//! reaches the worker, the receipt transfer is executed by a real wallet contract in the TON
//! emulator behind a toncenter-compatible API (services/chain/tests/ton-peer, the stand-in for
//! toncenter and the TON network), and the payment shows `confirmed` with the transaction hash.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use lessor_chain::{Network, OperatorWallet, WalletVersion};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::Backend;
use crate::payments::env_with;

// A public tonlib-core test vector (never funded on any real network).
const MNEMONIC: &str = "fancy carpet hello mandate penalty trial consider property top vicious exit rebuild tragic profit urban major total month holiday sudden rib gather media vicious";
const RECIPIENT: &str = "0:5f00d0f3d00d4b3b25e4fd5a7b0e4b0c2e3c6d9f1a2b3c4d5e6f708192a3b4c5";

struct TonPeer {
    port: u16,
    _child: Child,
}

impl TonPeer {
    async fn start() -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../services/chain/tests/ton-peer");
        if !dir.join("node_modules/@ton/sandbox").is_dir() {
            let status = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir).status().await;
            assert!(status.expect("npm").success(), "npm ci in {}", dir.display());
        }
        let mut child = Command::new("node")
            .args(["server.js", "0"])
            .current_dir(&dir)
            .env("TON_PEER_EXIT_ON_STDIN_EOF", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap().unwrap();
        Self { port: first.trim().parse().expect("the peer prints its port"), _child: child }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        endpoint: &str,
        body: Option<Value>,
        query: &[(&str, String)],
    ) -> Value {
        let url = format!("http://127.0.0.1:{}/_test/{endpoint}", self.port);
        let mut request = reqwest::Client::new().request(method, url).query(query);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap().json().await.unwrap()
    }
}

async fn a_completed_payment_is_confirmed_on_chain(backend: Backend) {
    let peer = TonPeer::start().await;
    let wallet = OperatorWallet::from_mnemonic(
        &SecretString::from(MNEMONIC.to_owned()),
        WalletVersion::V4R2,
        Network::Mainnet,
        None,
    )
    .unwrap();
    let address = wallet.address().to_hex();
    peer.call(reqwest::Method::POST, "fund", Some(json!({"address": address, "amount": "5000000000"})), &[]).await;

    let api_url = format!("http://127.0.0.1:{}/api/v2", peer.port);
    let env = env_with(backend, |c| {
        c.chain.api_url = Some(api_url);
        c.chain.mnemonic = Some(SecretString::from(MNEMONIC.to_owned()));
        c.chain.wallet_version = Some("v4r2".into());
        c.chain.recipient = Some(RECIPIENT.into());
        c.chain.amount_nanoton = Some(10_000_000);
        c.chain.poll_interval_ms = Some(100);
    })
    .await;
    let body = json!({
        "lease_id": env.lease_id, "installment_id": env.installments[0], "amount": 129900,
        "currency": "EUR", "provider": "stripe", "payment_method": "pm_card_visa",
    });
    let payment: Value = env.pay("chain-1", &body).await.json().await.unwrap();
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(payment["chain_status"], "pending", "{payment:#}");
    let id = payment["id"].as_str().unwrap().to_owned();

    let deadline = Instant::now() + Duration::from_secs(60);
    let confirmed = loop {
        let p: Value = env.app.get_authed(&format!("/api/v1/payments/{id}"), &env.customer).await.json().await.unwrap();
        if p["chain_status"] == "confirmed" {
            break p;
        }
        assert!(Instant::now() < deadline, "not confirmed in time: {p:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let hash = confirmed["blockchain_tx_hash"].as_str().expect("a transaction hash");
    assert!(!hash.is_empty());

    // Exactly one transfer from the operator wallet, to the recipient, carrying the receipt.
    let transfers =
        peer.call(reqwest::Method::GET, "transfers", None, &[("wallet", address.clone())]).await["transfers"].clone();
    let transfers = transfers.as_array().unwrap();
    assert_eq!(transfers.len(), 1, "{transfers:#?}");
    let sent = &transfers[0]["messages"][0];
    assert_eq!(sent["destination"], RECIPIENT);
    let comment = sent["comment"].as_str().unwrap();
    assert!(comment.contains(&id) && comment.contains(&env.lease_id), "{comment}");
    assert!(comment.contains("1299.00 EUR") || comment.contains("129900"), "{comment}");

    let metrics = env.app.client.get(env.app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("lessor_chain_messages_confirmed_total") && l.ends_with(" 1")),
        "{metrics}"
    );
}

crate::on_each_backend!(a_completed_payment_is_confirmed_on_chain);
