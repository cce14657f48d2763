//! DKIM signing (RFC 6376) with RSA-SHA256 and Ed25519-SHA256 (RFC 8463).
//!
//! Canonicalisation is always `relaxed/relaxed`. The body hash and the canonical
//! form of the signed header fields are computed once per message and shared by
//! every signer; each signer then only hashes/signs its own `DKIM-Signature`.
//!
//! Pure computation on bytes: no store, no I/O. postwerk-mta signs with it; domain
//! registration generates keys and DNS records with it.
//!
//! - `canon`: relaxed canonicalisation and splitting a message into header and body.
//! - this file: algorithms, key generation ([`generate_rsa_2048`], [`generate_ed25519`]),
//!   the DNS TXT value ([`dns_txt_value`]), signers ([`DkimSigner`], [`sign_message`]).

mod canon;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::digest::{self, SHA256};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};

use canon::{parse_fields, relaxed_body, relaxed_header, split_message};

/// Header fields signed when present (lower-case). `from` is additionally over-signed once.
const SIGNED_HEADERS: [&str; 16] = [
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-id",
    "feedback-id",
];

/// Longest generated header line, in characters, excluding the CRLF (RFC 5322 §2.1.1).
const MAX_LINE: usize = 78;

/// A DKIM signing algorithm (`a=` tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DkimAlgorithm {
    /// `rsa-sha256` (RFC 6376).
    RsaSha256,
    /// `ed25519-sha256` (RFC 8463).
    Ed25519Sha256,
}

impl DkimAlgorithm {
    /// The `a=` tag value: `rsa-sha256` or `ed25519-sha256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RsaSha256 => "rsa-sha256",
            Self::Ed25519Sha256 => "ed25519-sha256",
        }
    }

    /// The key record's `k=` tag value: `rsa` or `ed25519`.
    pub fn key_type(self) -> &'static str {
        match self {
            Self::RsaSha256 => "rsa",
            Self::Ed25519Sha256 => "ed25519",
        }
    }
}

impl fmt::Display for DkimAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DkimAlgorithm {
    type Err = DkimError;

    /// Parses `rsa-sha256` or `ed25519-sha256` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("rsa-sha256") {
            Ok(Self::RsaSha256)
        } else if s.eq_ignore_ascii_case("ed25519-sha256") {
            Ok(Self::Ed25519Sha256)
        } else {
            Err(DkimError::UnknownAlgorithm(s.chars().take(32).collect()))
        }
    }
}

/// Errors from key handling and signing.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    /// The algorithm name is not `rsa-sha256` or `ed25519-sha256`.
    #[error("unknown DKIM algorithm {0:?}")]
    UnknownAlgorithm(String),
    /// Key generation failed.
    #[error("DKIM key generation failed: {0}")]
    KeyGeneration(String),
    /// The private key could not be loaded (not PKCS#8, wrong algorithm, too small, ...).
    #[error("invalid DKIM private key: {0}")]
    InvalidKey(String),
    /// The signing domain (`d=`) contains characters not allowed in a DNS name.
    #[error("invalid DKIM signing domain {0:?}")]
    InvalidDomain(String),
    /// The selector (`s=`) contains characters not allowed in a DNS label.
    #[error("invalid DKIM selector {0:?}")]
    InvalidSelector(String),
    /// The message has no `From` header field, which DKIM must sign (RFC 6376 §5.4).
    #[error("message has no From header field")]
    MissingFrom,
    /// The cryptographic signing operation failed.
    #[error("DKIM signing operation failed")]
    Signing,
}

/// A freshly generated key pair, ready to be stored and published.
#[derive(Clone)]
pub struct DkimKeyMaterial {
    /// Algorithm the key is for.
    pub algorithm: DkimAlgorithm,
    /// Private key, PKCS#8 DER. Secret: never log it.
    pub private_pkcs8_der: Vec<u8>,
    /// Public key for the DNS `p=` tag, base64 (RSA: SubjectPublicKeyInfo DER; Ed25519: raw 32 bytes).
    pub public_key_b64: String,
}

impl fmt::Debug for DkimKeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKeyMaterial")
            .field("algorithm", &self.algorithm)
            .field("private_pkcs8_der", &"<redacted>")
            .field("public_key_b64", &self.public_key_b64)
            .finish()
    }
}

/// Generates an RSA-2048 key (PKCS#8 DER private key, base64 SubjectPublicKeyInfo public key).
pub fn generate_rsa_2048() -> Result<DkimKeyMaterial, DkimError> {
    use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
    let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
        .map_err(|e| DkimError::KeyGeneration(e.to_string()))?;
    let der = private
        .to_pkcs8_der()
        .map_err(|e| DkimError::KeyGeneration(e.to_string()))?;
    let public = rsa::RsaPublicKey::from(&private)
        .to_public_key_der()
        .map_err(|e| DkimError::KeyGeneration(e.to_string()))?;
    Ok(DkimKeyMaterial {
        algorithm: DkimAlgorithm::RsaSha256,
        private_pkcs8_der: der.as_bytes().to_vec(),
        public_key_b64: B64.encode(public.as_bytes()),
    })
}

/// Generates an Ed25519 key (PKCS#8 v2 DER private key, base64 raw 32-byte public key per RFC 8463).
pub fn generate_ed25519() -> Result<DkimKeyMaterial, DkimError> {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| DkimError::KeyGeneration("ed25519 key generation failed".into()))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|e| DkimError::KeyGeneration(e.to_string()))?;
    Ok(DkimKeyMaterial {
        algorithm: DkimAlgorithm::Ed25519Sha256,
        private_pkcs8_der: pkcs8.as_ref().to_vec(),
        public_key_b64: B64.encode(pair.public_key().as_ref()),
    })
}

/// The TXT record value to publish at `<selector>._domainkey.<domain>`.
///
/// An RSA-2048 value is longer than 255 bytes: publish it as several character-strings.
pub fn dns_txt_value(algorithm: DkimAlgorithm, public_key_b64: &str) -> String {
    format!("v=DKIM1; k={}; p={}", algorithm.key_type(), public_key_b64)
}

enum SigningKey {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// One DKIM signing identity: domain, selector and private key.
pub struct DkimSigner {
    domain: String,
    selector: String,
    key: SigningKey,
    rng: SystemRandom,
}

impl fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimSigner")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

fn valid_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        && !s.starts_with('.')
        && !s.contains("..")
}

impl DkimSigner {
    /// Loads a PKCS#8 DER private key for `algorithm`. RSA keys must be 2048 to 8192 bits.
    pub fn new(
        domain: &str,
        selector: &str,
        algorithm: DkimAlgorithm,
        private_pkcs8_der: &[u8],
    ) -> Result<Self, DkimError> {
        if !valid_dns_name(domain) {
            return Err(DkimError::InvalidDomain(domain.chars().take(64).collect()));
        }
        if !valid_dns_name(selector) {
            return Err(DkimError::InvalidSelector(
                selector.chars().take(64).collect(),
            ));
        }
        let key = match algorithm {
            DkimAlgorithm::RsaSha256 => RsaKeyPair::from_pkcs8(private_pkcs8_der)
                .map(SigningKey::Rsa)
                .map_err(|e| DkimError::InvalidKey(e.to_string()))?,
            DkimAlgorithm::Ed25519Sha256 => {
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(private_pkcs8_der)
                    .map(SigningKey::Ed25519)
                    .map_err(|e| DkimError::InvalidKey(e.to_string()))?
            }
        };
        Ok(Self {
            domain: domain.trim_end_matches('.').to_owned(),
            selector: selector.to_owned(),
            key,
            rng: SystemRandom::new(),
        })
    }

    /// The signing domain (`d=`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The selector (`s=`).
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// The signing algorithm (`a=`).
    pub fn algorithm(&self) -> DkimAlgorithm {
        match self.key {
            SigningKey::Rsa(_) => DkimAlgorithm::RsaSha256,
            SigningKey::Ed25519(_) => DkimAlgorithm::Ed25519Sha256,
        }
    }

    /// Length of a signature in bytes.
    fn signature_len(&self) -> usize {
        match &self.key {
            SigningKey::Rsa(pair) => pair.public().modulus_len(),
            SigningKey::Ed25519(_) => 64,
        }
    }

    /// Signs the canonical header data (RFC 6376 §3.7 "data-hash input").
    fn sign_data(&self, data: &[u8]) -> Result<Vec<u8>, DkimError> {
        match &self.key {
            SigningKey::Rsa(pair) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.rng, data, &mut sig)
                    .map_err(|_| DkimError::Signing)?;
                Ok(sig)
            }
            // RFC 8463 §3: Ed25519 (PureEdDSA) over the SHA-256 hash of the data.
            SigningKey::Ed25519(pair) => Ok(pair
                .sign(digest::digest(&SHA256, data).as_ref())
                .as_ref()
                .to_vec()),
        }
    }
}

/// Signs `message` (full RFC 5322 message, CRLF line endings) with every signer and returns the
/// message with one `DKIM-Signature:` header per signer prepended (in `signers` order). Body hash
/// and header canonicalisation are computed once and shared by all signers (same c= for all).
///
/// A message without a header/body separator is treated as headers only (empty body).
pub fn sign_message(
    signers: &[DkimSigner],
    message: &[u8],
    unix_time: u64,
) -> Result<Vec<u8>, DkimError> {
    if signers.is_empty() {
        return Ok(message.to_vec());
    }
    let (header_block, body) = split_message(message);
    let fields = parse_fields(header_block);

    let mut ctx = digest::Context::new(&SHA256);
    relaxed_body(body, &mut ctx);
    let body_hash = B64.encode(ctx.finish().as_ref());

    // Signed header names (h=) and their canonical data, bottom-up per name (§5.4.2).
    let mut names: Vec<&'static str> = Vec::with_capacity(24);
    let mut data = Vec::with_capacity(header_block.len() + 1024);
    for name in SIGNED_HEADERS {
        let mut found = false;
        for (field_name, value) in fields.iter().rev() {
            if field_name.eq_ignore_ascii_case(name.as_bytes()) {
                relaxed_header(&mut data, name.as_bytes(), value);
                data.extend_from_slice(b"\r\n");
                names.push(name);
                found = true;
            }
        }
        if name == "from" {
            if !found {
                return Err(DkimError::MissingFrom);
            }
            names.push(name); // over-sign (§8.15): no further From may be added
        }
    }
    let shared_len = data.len();

    let mut out = Vec::with_capacity(message.len() + signers.len() * 640);
    let mut header = String::with_capacity(640);
    for signer in signers {
        header.clear();
        let mut col = write_unsigned_header(&mut header, signer, unix_time, &names, &body_hash);
        data.truncate(shared_len);
        let (name, value) = header.as_bytes().split_at("DKIM-Signature".len());
        relaxed_header(&mut data, name, &value[1..]);
        let signature = B64.encode(signer.sign_data(&data)?);
        fold_value(&mut header, &mut col, &signature, "");
        header.push_str("\r\n");
        out.extend_from_slice(header.as_bytes());
    }
    out.extend_from_slice(message);
    Ok(out)
}

/// Writes the DKIM-Signature header up to and including the empty `b=`; returns the column.
fn write_unsigned_header(
    out: &mut String,
    signer: &DkimSigner,
    unix_time: u64,
    names: &[&str],
    body_hash: &str,
) -> usize {
    out.push_str("DKIM-Signature:");
    let mut col = out.len();
    let t = unix_time.to_string();
    let tags: [(&str, &str); 6] = [
        ("v=", "1"),
        ("a=", signer.algorithm().as_str()),
        ("c=", "relaxed/relaxed"),
        ("d=", &signer.domain),
        ("s=", &signer.selector),
        ("t=", &t),
    ];
    for (tag, value) in tags {
        push_word(out, &mut col, " ", &[tag, value, ";"]);
    }
    for (i, name) in names.iter().enumerate() {
        let (sep, prefix) = if i == 0 { (" ", "h=") } else { ("", "") };
        let suffix = if i + 1 == names.len() { ";" } else { ":" };
        push_word(out, &mut col, sep, &[prefix, name, suffix]);
    }
    start_value(out, &mut col, "bh=", body_hash.len() + 1);
    fold_value(out, &mut col, body_hash, ";");
    start_value(out, &mut col, "b=", signer.signature_len().div_ceil(3) * 4);
    col
}

/// Appends " " or a fold, then `prefix`: folds when a value of `len` would fit on a fresh
/// line but not on this one, or when fewer than 8 of its characters would fit here.
fn start_value(out: &mut String, col: &mut usize, prefix: &str, len: usize) {
    let need = 1 + prefix.len() + len;
    let fits_here = *col + need <= MAX_LINE;
    let fits_fresh = need <= MAX_LINE;
    if fits_here || (!fits_fresh && *col + prefix.len() + 9 <= MAX_LINE) {
        out.push(' ');
        *col += 1;
    } else {
        out.push_str("\r\n\t");
        *col = 1;
    }
    out.push_str(prefix);
    *col += prefix.len();
}

/// Appends `sep` + the concatenated `parts`, folding first if the line would exceed 78 chars.
fn push_word(out: &mut String, col: &mut usize, sep: &str, parts: &[&str]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if *col + sep.len() + len > MAX_LINE {
        out.push_str("\r\n\t");
        *col = 1;
    } else {
        out.push_str(sep);
        *col += sep.len();
    }
    for p in parts {
        out.push_str(p);
    }
    *col += len;
}

/// Appends a base64 `value` + `suffix`, splitting it with FWS where lines would get too long.
fn fold_value(out: &mut String, col: &mut usize, value: &str, suffix: &str) {
    let mut rest = value;
    loop {
        let room = MAX_LINE.saturating_sub(*col);
        if rest.len() + suffix.len() <= room {
            out.push_str(rest);
            out.push_str(suffix);
            *col += rest.len() + suffix.len();
            return;
        }
        // base64 is ASCII, so any byte index is a char boundary.
        let take = room.min(rest.len());
        out.push_str(&rest[..take]);
        rest = &rest[take..];
        out.push_str("\r\n\t");
        *col = 1;
    }
}
