//! Configuration: [`ChainConfig`] as written (the host fills it from its own configuration or
//! from `LESSOR_TON_*` variables), checked into [`ChainSettings`] with errors that name the
//! variable. No API URL means the chain worker is off.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::wallet::{Network, OperatorWallet, Recipient, WalletVersion, check_mnemonic_words};

pub const ENV_API_URL: &str = "LESSOR_TON_API_URL";
pub const ENV_API_KEY: &str = "LESSOR_TON_API_KEY";
pub const ENV_MNEMONIC: &str = "LESSOR_TON_MNEMONIC";
pub const ENV_WALLET_VERSION: &str = "LESSOR_TON_WALLET_VERSION";
pub const ENV_RECIPIENT: &str = "LESSOR_TON_RECIPIENT";
pub const ENV_AMOUNT_NANOTON: &str = "LESSOR_TON_AMOUNT_NANOTON";
pub const ENV_NETWORK: &str = "LESSOR_TON_NETWORK";
pub const ENV_WALLET_ID: &str = "LESSOR_TON_WALLET_ID";
pub const ENV_POLL_INTERVAL_MS: &str = "LESSOR_TON_POLL_INTERVAL_MS";
pub const ENV_MESSAGE_TTL_SECS: &str = "LESSOR_TON_MESSAGE_TTL_SECS";

/// The transfer amount when none is configured: 0.01 TON.
pub const DEFAULT_AMOUNT_NANOTON: u64 = 10_000_000;
/// The largest amount accepted (1000 TON): a guard against a misplaced digit.
pub const MAX_AMOUNT_NANOTON: u64 = 1_000_000_000_000;

/// The configuration as written; every key optional. Field `x` is `LESSOR_TON_X`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// toncenter-compatible HTTP API v2 base, e.g. `https://toncenter.com/api/v2`. Unset: off.
    pub api_url: Option<String>,
    /// Sent as `X-API-Key`.
    pub api_key: Option<SecretString>,
    /// The operator wallet's 24 words.
    pub mnemonic: Option<SecretString>,
    /// `v4r2` or `v5r1`.
    pub wallet_version: Option<String>,
    /// Where every receipt transfer goes, in any standard address form.
    pub recipient: Option<String>,
    /// Nanotons per transfer (default [`DEFAULT_AMOUNT_NANOTON`]).
    pub amount_nanoton: Option<u64>,
    /// `mainnet` (default) or `testnet`.
    pub network: Option<String>,
    /// Overrides the wallet's sub-wallet id (rarely needed).
    pub wallet_id: Option<i64>,
    /// Base interval between confirmation polls (default 5000).
    pub poll_interval_ms: Option<u64>,
    /// How long a signed message stays valid (`valid_until = now + ttl`; default 60).
    pub message_ttl_secs: Option<u64>,
    /// The wallet [`Self::settings`] derived last, shared by clones: deriving it is slow on
    /// purpose (PBKDF2), and a host checks its configuration before it starts the worker.
    #[serde(skip)]
    pub derived: DerivedWallet,
}

/// The last wallet derived from a configuration, with what it was derived from.
#[derive(Clone, Default)]
pub struct DerivedWallet(Arc<std::sync::Mutex<Option<Derived>>>);

/// A wallet and what it was derived from.
type Derived = (WalletInputs, Arc<OperatorWallet>);

impl std::fmt::Debug for DerivedWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DerivedWallet")
    }
}

struct WalletInputs {
    mnemonic: SecretString,
    version: WalletVersion,
    network: Network,
    wallet_id: Option<i32>,
}

impl WalletInputs {
    fn same(&self, other: &WalletInputs) -> bool {
        self.mnemonic.expose_secret() == other.mnemonic.expose_secret()
            && (self.version, self.network, self.wallet_id) == (other.version, other.network, other.wallet_id)
    }
}

impl DerivedWallet {
    /// The wallet of `inputs`: the one derived before if it was from the same inputs.
    fn get_or_derive(
        &self,
        inputs: WalletInputs,
        derive: impl FnOnce(&WalletInputs) -> Result<OperatorWallet, ConfigError>,
    ) -> Result<Arc<OperatorWallet>, ConfigError> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, wallet)) = slot.as_ref().filter(|(before, _)| before.same(&inputs)) {
            return Ok(wallet.clone());
        }
        let wallet = Arc::new(derive(&inputs)?);
        *slot = Some((inputs, wallet.clone()));
        Ok(wallet)
    }
}

/// A configuration value that cannot be used; names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{env}: {reason}")]
pub struct ConfigError {
    pub env: &'static str,
    pub reason: String,
}

fn invalid(env: &'static str, reason: impl fmt::Display) -> ConfigError {
    ConfigError { env, reason: reason.to_string() }
}

/// How the API client talks to the server.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// The v2 base URL, without a trailing slash; methods are `<url>/<method>`.
    pub url: Url,
    pub api_key: Option<SecretString>,
    /// For one HTTP request, connection included.
    pub request_timeout: Duration,
    /// Retries of a request answered 429 or 5xx, or not answered (timeouts, connection errors).
    pub max_retries: u32,
    /// The first retry waits this long, then twice as long each time (or what `Retry-After` says)…
    pub retry_min: Duration,
    /// …at most this long.
    pub retry_max: Duration,
}

/// The pipeline's clocks. Tests shrink them to milliseconds.
#[derive(Debug, Clone)]
pub struct Timing {
    /// The first poll for a sent message comes this long after sending; later polls back off
    /// (×1.5 each) up to `max_poll_interval`.
    pub poll_interval: Duration,
    pub max_poll_interval: Duration,
    /// `valid_until` of a message is its signing time plus this.
    pub message_ttl: Duration,
    /// A message not found once `valid_until + expiry_margin` has passed (by this machine's
    /// clock) is expired and signed again. Covers clock skew against the chain.
    pub expiry_margin: Duration,
    /// A sent message not yet included is sent again (the same bytes) this often while valid.
    pub resend_interval: Duration,
    /// How long a worker's hold on the wallet lasts without renewal.
    pub lease_ttl: Duration,
    /// After this many signed messages for one payment without a transfer, it is `failed`.
    pub max_attempts: u32,
    /// Failing passes (API or database down) back off up to this long.
    pub error_backoff_max: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(5),
            max_poll_interval: Duration::from_secs(30),
            message_ttl: Duration::from_secs(60),
            expiry_margin: Duration::from_secs(30),
            resend_interval: Duration::from_secs(15),
            lease_ttl: Duration::from_secs(60),
            max_attempts: 10,
            error_backoff_max: Duration::from_secs(60),
        }
    }
}

/// Checked configuration: what [`crate::ChainWorker`] runs with. `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct ChainSettings {
    pub api: ApiSettings,
    pub wallet: Arc<OperatorWallet>,
    pub recipient: Recipient,
    pub amount_nanoton: u64,
    pub network: Network,
    pub timing: Timing,
}

impl ChainConfig {
    /// Reads the `LESSOR_TON_*` variables of this process.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the `LESSOR_TON_*` names through `lookup` (empty values count as unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let number = |name: &'static str| -> Result<Option<u64>, ConfigError> {
            get(name)
                .map(|v| v.parse::<u64>().map_err(|_| invalid(name, format!("`{v}` is not a whole number"))))
                .transpose()
        };
        let wallet_id = get(ENV_WALLET_ID)
            .map(|v| v.parse::<i64>().map_err(|_| invalid(ENV_WALLET_ID, format!("`{v}` is not a number"))))
            .transpose()?;
        Ok(Self {
            api_url: get(ENV_API_URL),
            api_key: get(ENV_API_KEY).map(SecretString::from),
            mnemonic: lookup(ENV_MNEMONIC).filter(|v| !v.trim().is_empty()).map(SecretString::from),
            wallet_version: get(ENV_WALLET_VERSION),
            recipient: get(ENV_RECIPIENT),
            amount_nanoton: number(ENV_AMOUNT_NANOTON)?,
            network: get(ENV_NETWORK),
            wallet_id,
            poll_interval_ms: number(ENV_POLL_INTERVAL_MS)?,
            message_ttl_secs: number(ENV_MESSAGE_TTL_SECS)?,
            derived: DerivedWallet::default(),
        })
    }

    /// Whether an API URL is set (the worker runs only then).
    pub fn enabled(&self) -> bool {
        self.api_url.as_deref().is_some_and(|u| !u.trim().is_empty())
    }

    /// Checks everything and derives the wallet; `None` when the worker is off (no API URL).
    ///
    /// Deriving the key pair takes a moment (PBKDF2): call this once at start-up.
    pub fn settings(&self) -> Result<Option<ChainSettings>, ConfigError> {
        if !self.enabled() {
            return Ok(None);
        }
        let api = ApiSettings {
            url: parse_api_url(self.api_url.as_deref().unwrap_or_default())?,
            api_key: self.api_key.clone().filter(|k| !k.expose_secret().trim().is_empty()),
            request_timeout: Duration::from_secs(10),
            max_retries: 5,
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(10),
        };
        let network: Network = match self.network.as_deref() {
            None => Network::Mainnet,
            Some(n) => n.parse().map_err(|e| invalid(ENV_NETWORK, e))?,
        };
        let version: WalletVersion = self
            .wallet_version
            .as_deref()
            .ok_or_else(|| invalid(ENV_WALLET_VERSION, "required when the chain worker is on (`v4r2` or `v5r1`)"))?
            .parse()
            .map_err(|e| invalid(ENV_WALLET_VERSION, e))?;
        let (recipient, testnet_address) = Recipient::parse(
            self.recipient.as_deref().ok_or_else(|| invalid(ENV_RECIPIENT, "required when the chain worker is on"))?,
        )
        .map_err(|e| invalid(ENV_RECIPIENT, e))?;
        if testnet_address && network == Network::Mainnet {
            return Err(invalid(
                ENV_RECIPIENT,
                format!("a testnet-only address; set {ENV_NETWORK}=testnet to use it, or give its mainnet form"),
            ));
        }
        let amount_nanoton = self.amount_nanoton.unwrap_or(DEFAULT_AMOUNT_NANOTON);
        if amount_nanoton > MAX_AMOUNT_NANOTON {
            return Err(invalid(
                ENV_AMOUNT_NANOTON,
                format!(
                    "{amount_nanoton} nanotons is more than the {MAX_AMOUNT_NANOTON} (1000 TON) allowed per transfer"
                ),
            ));
        }
        let wallet_id = self
            .wallet_id
            .map(|id| i32::try_from(id).map_err(|_| invalid(ENV_WALLET_ID, format!("{id} does not fit 32 bits"))))
            .transpose()?;
        let mut timing = Timing::default();
        if let Some(ms) = self.poll_interval_ms {
            if !(10..=600_000).contains(&ms) {
                return Err(invalid(ENV_POLL_INTERVAL_MS, "must be between 10 and 600000"));
            }
            timing.poll_interval = Duration::from_millis(ms);
            timing.max_poll_interval = timing.max_poll_interval.max(timing.poll_interval);
        }
        if let Some(secs) = self.message_ttl_secs {
            if !(5..=3_600).contains(&secs) {
                return Err(invalid(ENV_MESSAGE_TTL_SECS, "must be between 5 and 3600"));
            }
            timing.message_ttl = Duration::from_secs(secs);
        }
        let mnemonic =
            self.mnemonic.as_ref().ok_or_else(|| invalid(ENV_MNEMONIC, "required when the chain worker is on"))?;
        check_mnemonic_words(mnemonic).map_err(|e| invalid(ENV_MNEMONIC, e))?;
        let inputs = WalletInputs { mnemonic: mnemonic.clone(), version, network, wallet_id };
        let wallet = self.derived.get_or_derive(inputs, |i| {
            OperatorWallet::from_mnemonic(&i.mnemonic, i.version, i.network, i.wallet_id)
                .map_err(|e| invalid(ENV_MNEMONIC, e))
        })?;
        Ok(Some(ChainSettings { api, wallet, recipient, amount_nanoton, network, timing }))
    }
}

fn parse_api_url(raw: &str) -> Result<Url, ConfigError> {
    let mut url = Url::parse(raw.trim()).map_err(|e| invalid(ENV_API_URL, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(ENV_API_URL, "expected http(s)://host[:port]/api/v2"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(ENV_API_URL, "must not have a query or fragment (put the key in LESSOR_TON_API_KEY)"));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const PHRASE: &str = "fancy carpet hello mandate penalty trial consider property top vicious exit rebuild tragic profit urban major total month holiday sudden rib gather media vicious";
    const RECIPIENT: &str = "EQCDM_QGggZ3qMa_f3lRPk4_qLDnLTqdi6OkMAV2NB9r5TG3";

    fn config(pairs: &[(&str, &str)]) -> Result<ChainConfig, ConfigError> {
        let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        ChainConfig::from_lookup(|name| vars.get(name).cloned())
    }

    fn full(overrides: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut pairs = vec![
            (ENV_API_URL, "https://testnet.toncenter.com/api/v2/"),
            (ENV_MNEMONIC, PHRASE),
            (ENV_WALLET_VERSION, "v4r2"),
            (ENV_RECIPIENT, RECIPIENT),
        ];
        for (k, v) in overrides {
            pairs.retain(|(key, _)| key != k);
            pairs.push((k, v));
        }
        pairs
    }

    #[test]
    fn without_an_api_url_the_worker_is_off() {
        let off = config(&[(ENV_MNEMONIC, "not even checked")]).unwrap();
        assert!(!off.enabled());
        assert!(off.settings().unwrap().is_none());
    }

    #[test]
    fn a_full_configuration_is_checked_and_never_shows_its_secrets() {
        let raw = config(&full(&[(ENV_API_KEY, "k3y-secret"), (ENV_AMOUNT_NANOTON, "5000")])).unwrap();
        let settings = raw.settings().unwrap().unwrap();
        assert_eq!(settings.api.url.as_str(), "https://testnet.toncenter.com/api/v2");
        assert_eq!(settings.amount_nanoton, 5000);
        assert!(settings.recipient.bounce);
        let shown = format!("{raw:?} {settings:?}");
        assert!(!shown.contains("fancy") && !shown.contains("k3y-secret"), "{shown}");
    }

    #[test]
    fn the_wallet_is_derived_once_per_mnemonic_and_version() {
        let checked = config(&full(&[])).unwrap();
        let first = checked.settings().unwrap().unwrap().wallet;
        // A clone (the host's configuration, handed to the worker) finds it derived.
        let started = checked.clone().settings().unwrap().unwrap().wallet;
        assert!(Arc::ptr_eq(&first, &started));
        // Changed inputs derive again.
        let mut other = checked.clone();
        other.wallet_version = Some("v5r1".into());
        let v5 = other.settings().unwrap().unwrap().wallet;
        assert!(!Arc::ptr_eq(&first, &v5));
        assert_eq!(v5.version(), WalletVersion::V5R1);
        assert_ne!(v5.address(), first.address());
    }

    #[test]
    fn every_mistake_names_its_variable() {
        let (recipient, _) = Recipient::parse(RECIPIENT).unwrap();
        let testnet_form: &'static str = Box::leak(recipient.address.to_base64_url_flags(false, true).into_boxed_str());
        type Case = (Vec<(&'static str, &'static str)>, &'static str, &'static str);
        let cases: Vec<Case> = vec![
            (full(&[(ENV_MNEMONIC, "fancy carpet hello")]), ENV_MNEMONIC, "expected 24 words, got 3"),
            (full(&[(ENV_WALLET_VERSION, "v3r2")]), ENV_WALLET_VERSION, "unknown wallet version `v3r2`"),
            (full(&[(ENV_RECIPIENT, "EQnope")]), ENV_RECIPIENT, "is not a TON address"),
            (full(&[(ENV_API_URL, "ftp://x")]), ENV_API_URL, "expected http(s)"),
            (full(&[(ENV_NETWORK, "devnet")]), ENV_NETWORK, "unknown network"),
            (full(&[(ENV_AMOUNT_NANOTON, "2000000000000")]), ENV_AMOUNT_NANOTON, "1000 TON"),
            (full(&[(ENV_RECIPIENT, testnet_form)]), ENV_RECIPIENT, "testnet-only"),
        ];
        for (pairs, env, reason) in cases {
            let err = config(&pairs).and_then(|c| c.settings().map(drop)).unwrap_err();
            assert_eq!(err.env, env, "{err}");
            assert!(err.to_string().contains(reason), "{err}");
            assert!(!err.to_string().contains("fancy carpet"), "{err}");
        }
        let err = config(&full(&[(ENV_AMOUNT_NANOTON, "lots")])).unwrap_err();
        assert_eq!(err.env, ENV_AMOUNT_NANOTON);
        let missing = config(&[(ENV_API_URL, "http://127.0.0.1:1/api/v2")]).unwrap().settings().unwrap_err();
        assert_eq!(missing.env, ENV_WALLET_VERSION);
    }
}
