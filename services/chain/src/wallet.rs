//! The operator wallet: its key pair derived from the 24-word mnemonic (tonlib-core), and one
//! signed external message per transfer.
//!
//! Each message carries exactly one internal transfer to the recipient, with a text comment
//! (op `0` and the text in snake format, as wallets and explorers read it), and is signed with
//! the wallet's `seqno` and `valid_until`. The wallet contract accepts a message only while
//! `now < valid_until` and only with its current seqno, which it then increments: two messages
//! signed with the same seqno can never both be executed.

use std::fmt;
use std::str::FromStr;

use num_bigint::BigUint;
use secrecy::{ExposeSecret, SecretString};
use tonlib_core::TonAddress;
use tonlib_core::cell::{ArcCell, Cell, CellBuilder, TonCellError};
use tonlib_core::tlb_types::block::coins::{CurrencyCollection, Grams};
use tonlib_core::tlb_types::block::message::{CommonMsgInfo, IntMsgInfo, Message};
use tonlib_core::tlb_types::block::msg_address::MsgAddress;
use tonlib_core::tlb_types::tlb::TLB;
use tonlib_core::wallet::error::MnemonicError;
use tonlib_core::wallet::mnemonic::Mnemonic;
use tonlib_core::wallet::ton_wallet::TonWallet;
use tonlib_core::wallet::versioned::{DEFAULT_WALLET_ID, DEFAULT_WALLET_ID_V5R1, DEFAULT_WALLET_ID_V5R1_TESTNET};
use tonlib_core::wallet::wallet_version::WalletVersion as TonlibWalletVersion;

/// The number of words of a TON mnemonic.
pub const MNEMONIC_WORDS: usize = 24;

/// A SHA-256 cell hash (a message or transaction hash), shown as lowercase hex.
pub type Hash256 = [u8; 32];

/// Lowercase hex of a hash, the form stored in `blockchain_transactions`.
pub fn hex(hash: &Hash256) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 64 hex digits.
pub fn from_hex(text: &str) -> Option<Hash256> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The wallet contracts the operator wallet may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WalletVersion {
    /// Wallet v4 revision 2 (`v4r2`).
    V4R2,
    /// Wallet v5 revision 1 (`v5r1`, "W5").
    V5R1,
}

impl WalletVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V4R2 => "v4r2",
            Self::V5R1 => "v5r1",
        }
    }

    fn tonlib(self) -> TonlibWalletVersion {
        match self {
            Self::V4R2 => TonlibWalletVersion::V4R2,
            Self::V5R1 => TonlibWalletVersion::V5R1,
        }
    }
}

impl fmt::Display for WalletVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WalletVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "v4r2" => Ok(Self::V4R2),
            "v5r1" => Ok(Self::V5R1),
            other => Err(format!("unknown wallet version `{other}` (expected `v4r2` or `v5r1`)")),
        }
    }
}

/// Which TON network: decides the default wallet id of v5r1 wallets and the testnet flag of
/// addresses shown in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    #[default]
    Mainnet,
    Testnet,
}

impl FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mainnet" => Ok(Self::Mainnet),
            "testnet" => Ok(Self::Testnet),
            other => Err(format!("unknown network `{other}` (expected `mainnet` or `testnet`)")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("expected {MNEMONIC_WORDS} words, got {0}")]
    WordCount(usize),
    /// The word itself is part of the secret and never shown.
    #[error("word {position} is not in the TON word list")]
    UnknownWord { position: usize },
    #[error("not a valid TON mnemonic (its checksum does not match; a mnemonic with a password is not supported)")]
    Checksum,
    #[error("cannot derive the key pair: {0}")]
    Derive(String),
    #[error("cannot build the message: {0}")]
    Cell(String),
}

impl From<TonCellError> for WalletError {
    fn from(e: TonCellError) -> Self {
        Self::Cell(e.to_string())
    }
}

/// Where transfers go. `bounce` follows the address form: a bounceable user-friendly address
/// (`EQ…`/`kQ…`) bounces a transfer an uninitialised account cannot take; a non-bounceable one
/// (`UQ…`/`0Q…`) or the raw form (`0:hex`) does not.
#[derive(Clone, PartialEq, Eq)]
pub struct Recipient {
    pub address: TonAddress,
    pub bounce: bool,
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({}, bounce: {})", self.address.to_hex(), self.bounce)
    }
}

/// Why an address does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a TON address (raw `0:<64 hex>` or user-friendly base64/base64url of 48 characters): {reason}"
)]
pub struct AddressError {
    pub input: String,
    pub reason: String,
}

impl Recipient {
    /// Parses an address in any standard form; also returns whether a user-friendly address
    /// carries the testnet flag.
    pub fn parse(text: &str) -> Result<(Self, bool), AddressError> {
        let text = text.trim();
        let error = |reason: String| AddressError { input: text.to_owned(), reason };
        let (address, bounce, testnet) = if text.len() == 48 {
            let url_safe = text.contains('-') || text.contains('_');
            let parsed = if url_safe {
                TonAddress::from_base64_url_flags(text)
            } else {
                TonAddress::from_base64_std_flags(text).or_else(|_| TonAddress::from_base64_url_flags(text))
            };
            let (address, non_bounceable, testnet) = parsed.map_err(|e| error(e.to_string()))?;
            (address, !non_bounceable, testnet)
        } else {
            let address = TonAddress::from_hex_str(text).map_err(|e| error(e.to_string()))?;
            (address, false, false)
        };
        if address == TonAddress::NULL {
            return Err(error("the zero address cannot receive transfers".into()));
        }
        Ok((Self { address, bounce }, testnet))
    }
}

/// What one transfer message says.
#[derive(Debug, Clone)]
pub struct Transfer<'a> {
    pub seqno: u32,
    /// Unix seconds; the wallet refuses the message from then on.
    pub valid_until: u32,
    /// Attach the wallet's state init, so the message deploys a wallet that is not active yet.
    pub deploy: bool,
    pub recipient: &'a Recipient,
    pub amount_nanoton: u64,
    pub comment: &'a str,
}

/// A signed external message, ready to send.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedMessage {
    /// The bag of cells to submit (`sendBoc`), without CRC.
    pub boc: Vec<u8>,
    /// The hash of the message cell: what the wallet's transaction shows as its inbound message.
    pub hash: Hash256,
    /// The normalised hash (TEP-467: source, import fee and state init left out, body as a
    /// reference), which some APIs show instead.
    pub hash_norm: Hash256,
    pub seqno: u32,
    pub valid_until: u32,
}

impl fmt::Debug for SignedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedMessage")
            .field("hash", &hex(&self.hash))
            .field("seqno", &self.seqno)
            .field("valid_until", &self.valid_until)
            .field("boc_bytes", &self.boc.len())
            .finish()
    }
}

/// The operator wallet. `Debug` shows the version and address, never a key.
pub struct OperatorWallet {
    version: WalletVersion,
    inner: TonWallet,
}

impl fmt::Debug for OperatorWallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorWallet")
            .field("version", &self.version)
            .field("address", &self.inner.address.to_hex())
            .field("wallet_id", &self.inner.wallet_id)
            .finish()
    }
}

/// Checks the phrase's shape without deriving anything (cheap; errors never show a word).
pub fn check_mnemonic_words(phrase: &SecretString) -> Result<(), WalletError> {
    let words: Vec<&str> = phrase.expose_secret().split_whitespace().collect();
    if words.len() != MNEMONIC_WORDS {
        return Err(WalletError::WordCount(words.len()));
    }
    Ok(())
}

impl OperatorWallet {
    /// Derives the wallet from its mnemonic. `wallet_id` overrides the standard sub-wallet id
    /// (698983191 for v4r2; for v5r1 the network's default, 2147483409 on mainnet).
    ///
    /// Key derivation runs PBKDF2 with 100 000 rounds: call it once, at start-up.
    pub fn from_mnemonic(
        phrase: &SecretString,
        version: WalletVersion,
        network: Network,
        wallet_id: Option<i32>,
    ) -> Result<Self, WalletError> {
        check_mnemonic_words(phrase)?;
        let words: Vec<&str> = phrase.expose_secret().split_whitespace().collect();
        let mnemonic = Mnemonic::new(words.clone(), &None).map_err(|e| match e {
            MnemonicError::UnexpectedWordCount(n) => WalletError::WordCount(n),
            MnemonicError::InvalidWord(word) => {
                let position = words.iter().position(|w| w.to_lowercase() == word).map_or(0, |p| p + 1);
                WalletError::UnknownWord { position }
            }
            MnemonicError::InvalidFirstByte(_) | MnemonicError::InvalidPasswordlessMenmonicFirstByte(_) => {
                WalletError::Checksum
            }
            other => WalletError::Derive(other.to_string()),
        })?;
        let key_pair = mnemonic.to_key_pair().map_err(|e| WalletError::Derive(e.to_string()))?;
        let wallet_id = wallet_id.unwrap_or(match (version, network) {
            (WalletVersion::V4R2, _) => DEFAULT_WALLET_ID,
            (WalletVersion::V5R1, Network::Mainnet) => DEFAULT_WALLET_ID_V5R1,
            (WalletVersion::V5R1, Network::Testnet) => DEFAULT_WALLET_ID_V5R1_TESTNET,
        });
        let inner = TonWallet::new_with_params(version.tonlib(), key_pair, 0, wallet_id)?;
        Ok(Self { version, inner })
    }

    pub fn version(&self) -> WalletVersion {
        self.version
    }

    pub fn address(&self) -> &TonAddress {
        &self.inner.address
    }

    /// The address as wallet apps show it: user-friendly, non-bounceable (`UQ…`, or `0Q…` on
    /// testnet). Fund this address.
    pub fn friendly_address(&self, network: Network) -> String {
        self.inner.address.to_base64_url_flags(true, network == Network::Testnet)
    }

    pub fn wallet_id(&self) -> i32 {
        self.inner.wallet_id
    }

    /// Builds and signs the external message carrying one transfer.
    pub fn sign_transfer(&self, transfer: &Transfer<'_>) -> Result<SignedMessage, WalletError> {
        let internal = internal_transfer(transfer)?;
        let body = self.inner.create_external_body(transfer.valid_until, transfer.seqno, [internal])?;
        let signed_body = self.inner.sign_external_body(&body)?;
        let hash_norm = normalized_hash(&self.inner.address, &signed_body)?;
        let external =
            self.inner.wrap_signed_body(signed_body, transfer.deploy).map_err(|e| WalletError::Cell(e.to_string()))?;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(external.cell_hash().as_slice());
        Ok(SignedMessage {
            boc: external.to_boc(false)?,
            hash,
            hash_norm,
            seqno: transfer.seqno,
            valid_until: transfer.valid_until,
        })
    }
}

/// The internal message: `value` nanotons to the recipient, the comment as its body. The
/// wallet sends it with mode 3 (fees paid apart from the value; errors in the action phase
/// ignored, so such a failure shows as a transaction without the outbound message).
fn internal_transfer(transfer: &Transfer<'_>) -> Result<ArcCell, WalletError> {
    let info = CommonMsgInfo::Int(IntMsgInfo {
        ihr_disabled: true,
        bounce: transfer.recipient.bounce,
        bounced: false,
        src: MsgAddress::NONE,
        dest: transfer.recipient.address.to_msg_address(),
        value: CurrencyCollection::new(BigUint::from(transfer.amount_nanoton)),
        ihr_fee: Grams::new(BigUint::from(0u8)),
        fwd_fee: Grams::new(BigUint::from(0u8)),
        created_lt: 0,
        created_at: 0,
    });
    let message = Message::new(info, comment_cell(transfer.comment)?.to_arc());
    Ok(message.to_cell()?.to_arc())
}

/// A text comment: op `0` (32 bits) and the UTF-8 text in snake format (123 bytes in the first
/// cell, 127 in each following one, chained by their only reference).
pub fn comment_cell(text: &str) -> Result<Cell, WalletError> {
    let bytes = text.as_bytes();
    let first = bytes.len().min(123);
    let mut chunks: Vec<&[u8]> = vec![&bytes[..first]];
    chunks.extend(bytes[first..].chunks(127));
    let mut tail: Option<ArcCell> = None;
    for (i, chunk) in chunks.iter().enumerate().rev() {
        let mut builder = CellBuilder::new();
        if i == 0 {
            builder.store_u32(32, 0)?;
        }
        builder.store_slice(chunk)?;
        if let Some(next) = tail.take() {
            builder.store_reference(&next)?;
        }
        let cell = builder.build()?;
        if i == 0 {
            return Ok(cell);
        }
        tail = Some(cell.to_arc());
    }
    unreachable!("there is always a first chunk")
}

/// Reads a text comment (op `0` + snake text) back; `None` for any other body.
pub fn read_comment(cell: &Cell) -> Option<String> {
    let mut parser = cell.parser();
    if parser.load_u32(32).ok()? != 0 {
        return None;
    }
    let len = parser.remaining_bits() / 8;
    let mut bytes = parser.load_bytes(len).ok()?;
    let mut next = cell.references().first().cloned();
    while let Some(current) = next {
        let mut parser = current.parser();
        let len = parser.remaining_bits() / 8;
        bytes.extend(parser.load_bytes(len).ok()?);
        next = current.references().first().cloned();
    }
    String::from_utf8(bytes).ok()
}

/// TEP-467 normalised external message hash.
fn normalized_hash(wallet: &TonAddress, signed_body: &Cell) -> Result<Hash256, WalletError> {
    let mut builder = CellBuilder::new();
    builder
        .store_u8(2, 0b10)? // ext_in_msg_info$10
        .store_u8(2, 0b00)? // src: addr_none
        .store_raw_address(wallet)? // dest
        .store_u8(4, 0)? // import_fee: 0
        .store_bit(false)? // init: nothing
        .store_bit(true)? // body: ^Cell
        .store_reference(&signed_body.clone().to_arc())?;
    let mut hash = [0u8; 32];
    hash.copy_from_slice(builder.build()?.cell_hash().as_slice());
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonlib_core::cell::BagOfCells;

    // Public test vectors of tonlib-core (never funded on any network).
    const V4_PHRASE: &str = "fancy carpet hello mandate penalty trial consider property top vicious exit rebuild tragic profit urban major total month holiday sudden rib gather media vicious";

    fn phrase(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    /// Key derivation is slow unoptimised: derive each test wallet once.
    fn wallet(version: WalletVersion) -> &'static OperatorWallet {
        static V4: std::sync::OnceLock<OperatorWallet> = std::sync::OnceLock::new();
        static V5: std::sync::OnceLock<OperatorWallet> = std::sync::OnceLock::new();
        let cell = if version == WalletVersion::V4R2 { &V4 } else { &V5 };
        cell.get_or_init(|| OperatorWallet::from_mnemonic(&phrase(V4_PHRASE), version, Network::Mainnet, None).unwrap())
    }

    #[test]
    fn the_mnemonic_derives_the_known_v4r2_address() {
        let wallet = wallet(WalletVersion::V4R2);
        assert_eq!(wallet.address().to_base64_url(), "EQCDM_QGggZ3qMa_f3lRPk4_qLDnLTqdi6OkMAV2NB9r5TG3");
        assert!(!format!("{wallet:?}").contains("fancy"));
    }

    #[test]
    fn bad_mnemonics_are_refused_without_showing_a_word() {
        let short = OperatorWallet::from_mnemonic(&phrase("fancy carpet"), WalletVersion::V4R2, Network::Mainnet, None);
        assert!(matches!(short, Err(WalletError::WordCount(2))));
        let typo = V4_PHRASE.replace("mandate", "mandatx");
        let err =
            OperatorWallet::from_mnemonic(&phrase(&typo), WalletVersion::V4R2, Network::Mainnet, None).unwrap_err();
        assert!(matches!(err, WalletError::UnknownWord { position: 4 }), "{err}");
        assert!(!err.to_string().contains("mandatx"));
        let swapped = V4_PHRASE.replacen("fancy carpet", "carpet fancy", 1);
        let err =
            OperatorWallet::from_mnemonic(&phrase(&swapped), WalletVersion::V4R2, Network::Mainnet, None).unwrap_err();
        assert!(matches!(err, WalletError::Checksum), "{err}");
    }

    #[test]
    fn addresses_parse_in_every_standard_form() {
        let raw = "0:8333f406820677a8c6bf7f79513e4e3fa8b0e72d3a9d8ba3a430057634 1f6be5".replace(' ', "");
        let (a, testnet) = Recipient::parse(&raw).unwrap();
        assert!(!a.bounce && !testnet);
        let (b, _) = Recipient::parse("EQCDM_QGggZ3qMa_f3lRPk4_qLDnLTqdi6OkMAV2NB9r5TG3").unwrap();
        assert_eq!(a.address, b.address);
        assert!(b.bounce);
        let non_bounceable = b.address.to_base64_url_flags(true, true);
        let (c, testnet) = Recipient::parse(&non_bounceable).unwrap();
        assert_eq!((c.address.clone(), c.bounce, testnet), (a.address.clone(), false, true));
        let (d, _) = Recipient::parse(&b.address.to_base64_std()).unwrap();
        assert_eq!(d.address, a.address);
        for bad in ["", "EQCDM_QGggZ3qMa_f3lRPk4_qLDnLTqdi6OkMAV2NB9r5TG4", "0:zz", "hello", "0:00"] {
            assert!(Recipient::parse(bad).is_err(), "{bad}");
        }
        let zero = format!("0:{}", "0".repeat(64));
        assert!(Recipient::parse(&zero).unwrap_err().reason.contains("zero"));
    }

    #[test]
    fn comments_round_trip_through_snake_cells() {
        for len in [0, 1, 123, 124, 250, 251, 400] {
            let text: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let cell = comment_cell(&text).unwrap();
            assert_eq!(read_comment(&cell).as_deref(), Some(text.as_str()), "{len}");
        }
    }

    #[test]
    fn a_signed_transfer_is_one_external_message_with_one_transfer() {
        for version in [WalletVersion::V4R2, WalletVersion::V5R1] {
            let wallet = wallet(version);
            let (recipient, _) = Recipient::parse("EQCDM_QGggZ3qMa_f3lRPk4_qLDnLTqdi6OkMAV2NB9r5TG3").unwrap();
            let transfer = Transfer {
                seqno: 7,
                valid_until: 1_900_000_000,
                deploy: true,
                recipient: &recipient,
                amount_nanoton: 1_000_000,
                comment: "hello",
            };
            let signed = wallet.sign_transfer(&transfer).unwrap();
            let root = BagOfCells::parse(&signed.boc).unwrap().single_root().unwrap();
            assert_eq!(Cell::cell_hash(&root).as_slice(), signed.hash.as_slice());
            assert_ne!(signed.hash, signed.hash_norm);
            // Same inputs, same message: a re-send is byte for byte the same.
            assert_eq!(wallet.sign_transfer(&transfer).unwrap(), signed);
            assert_ne!(wallet.sign_transfer(&Transfer { seqno: 8, ..transfer.clone() }).unwrap().hash, signed.hash);
        }
    }

    #[test]
    fn hashes_print_as_hex_and_parse_back() {
        let hash = [0xabu8; 32];
        assert_eq!(from_hex(&hex(&hash)), Some(hash));
        assert_eq!(from_hex("ab"), None);
    }
}
