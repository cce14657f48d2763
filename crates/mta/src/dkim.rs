//! DKIM signing (RFC 6376) with RSA-SHA256 and Ed25519-SHA256 (RFC 8463).
//!
//! Canonicalisation is always `relaxed/relaxed`. The body hash and the canonical
//! form of the signed header fields are computed once per message and shared by
//! every signer; each signer then only hashes/signs its own `DKIM-Signature`.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::digest::{self, SHA256};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};

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

/// Splits a message into its header block (including the last header's CRLF) and body.
fn split_message(message: &[u8]) -> (&[u8], &[u8]) {
    if let Some(rest) = message.strip_prefix(b"\r\n") {
        return (&[], rest);
    }
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&message[..i + 2], &message[i + 4..]),
        None => (message, &[]),
    }
}

/// Splits a header block into `(name, value)` fields; `value` keeps its folding CRLFs.
fn parse_fields(block: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut fields: Vec<(&[u8], &[u8])> = Vec::with_capacity(32);
    let mut current: Option<(usize, usize)> = None; // (start, end) of the current field
    let mut pos = 0;
    while pos < block.len() {
        let end = block[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(block.len(), |i| pos + i + 1);
        let continuation = matches!(block[pos], b' ' | b'\t');
        match current {
            Some((start, _)) if continuation => current = Some((start, end)),
            _ => {
                if let Some((s, e)) = current.take() {
                    push_field(&mut fields, &block[s..e]);
                }
                current = Some((pos, end));
            }
        }
        pos = end;
    }
    if let Some((s, e)) = current {
        push_field(&mut fields, &block[s..e]);
    }
    fields
}

fn push_field<'a>(fields: &mut Vec<(&'a [u8], &'a [u8])>, raw: &'a [u8]) {
    if let Some(colon) = raw.iter().position(|&b| b == b':') {
        fields.push((trim_wsp_end(&raw[..colon]), &raw[colon + 1..]));
    }
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_wsp_end(s: &[u8]) -> &[u8] {
    let n = s.iter().rposition(|&b| !is_wsp(b)).map_or(0, |i| i + 1);
    &s[..n]
}

/// Appends the relaxed canonical form (RFC 6376 §3.4.2) of one field, without CRLF.
fn relaxed_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend(trim_wsp_end(name).iter().map(u8::to_ascii_lowercase));
    out.push(b':');
    let (mut started, mut space) = (false, false);
    for (i, &b) in value.iter().enumerate() {
        match b {
            b'\n' => {}
            b'\r' if value.get(i + 1) == Some(&b'\n') => {}
            b' ' | b'\t' => space = started,
            _ => {
                if space {
                    out.push(b' ');
                    space = false;
                }
                out.push(b);
                started = true;
            }
        }
    }
}

/// Receives canonical body bytes: a hash context in production, a `Vec` in tests.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for digest::Context {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Streams the relaxed canonical body (RFC 6376 §3.4.4) into `sink` without allocating:
/// WSP runs become one SP, trailing WSP and trailing empty lines are dropped, a missing final
/// CRLF is added, and an empty body stays empty.
fn relaxed_body<S: Sink>(body: &[u8], sink: &mut S) {
    const CRLFS: &[u8; 64] = b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";
    let mut pending_empty = 0usize;
    let mut rest = body;
    while !rest.is_empty() {
        let (line, full) = match find_crlf(rest) {
            Some(i) => (&rest[..i], &rest[..i + 2]),
            None => (rest, rest),
        };
        rest = &rest[full.len()..];
        let trimmed = trim_wsp_end(line);
        if trimmed.is_empty() {
            pending_empty += 1;
            continue;
        }
        while pending_empty > 0 {
            let n = pending_empty.min(CRLFS.len() / 2);
            sink.put(&CRLFS[..n * 2]);
            pending_empty -= n;
        }
        let mut seg_start = 0;
        let mut i = 0;
        while i < trimmed.len() {
            if !is_wsp(trimmed[i]) {
                i += 1;
                continue;
            }
            let run = i;
            while is_wsp(trimmed[i]) {
                i += 1; // cannot run off the end: `trimmed` ends with a non-WSP byte
            }
            if i - run > 1 || trimmed[run] == b'\t' {
                sink.put(&trimmed[seg_start..run]);
                sink.put(b" ");
                seg_start = i;
            }
        }
        if seg_start == 0 && trimmed.len() + 2 == full.len() {
            sink.put(full); // unchanged line: one update including its CRLF
        } else {
            sink.put(&trimmed[seg_start..]);
            sink.put(b"\r\n");
        }
    }
}

/// Index of the next CRLF (bare LF and CR are ordinary bytes, as in RFC 6376).
fn find_crlf(s: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].iter().position(|&b| b == b'\n') {
        let at = from + i;
        if at > 0 && s[at - 1] == b'\r' {
            return Some(at - 1);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_canon(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        relaxed_body(body, &mut out);
        out
    }

    #[test]
    fn relaxed_body_table() {
        let many_empty = [&b"a\r\n"[..], &b"\r\n".repeat(40), b"x"].concat();
        let many_expected = [&b"a\r\n"[..], &b"\r\n".repeat(40), b"x\r\n"].concat();
        let cases: &[(&[u8], &[u8])] = &[
            // RFC 6376 §3.4.5 example body
            (b" C \r\nD \t E\r\n\r\n\r\n", b" C\r\nD E\r\n"),
            (b"", b""),
            (b"\r\n", b""),
            (b"\r\n\r\n\r\n", b""),
            (b"  \r\n\t\r\n", b""),
            (b"abc", b"abc\r\n"),
            (b"abc \t ", b"abc\r\n"),
            (b"abc  \r\n", b"abc\r\n"),
            (b"a\tb\r\n", b"a b\r\n"),
            (b"a b  c\r\n", b"a b c\r\n"),
            (b"\ta\r\n", b" a\r\n"),
            (b"a\r\n\r\nb\r\n\r\n", b"a\r\n\r\nb\r\n"),
            (b"a \r\n \r\nb", b"a\r\n\r\nb\r\n"),
            (b"a\nb\r\n", b"a\nb\r\n"),
            (&many_empty, &many_expected),
        ];
        for (input, expected) in cases {
            assert_eq!(
                body_canon(input),
                expected.to_vec(),
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn relaxed_header_table() {
        let cases: &[(&[u8], &[&[u8]])] = &[
            // RFC 6376 §3.4.5 example headers
            (b"A: X\r\nB : Y\t\r\n\tZ  \r\n", &[b"a:X", b"b:Y Z"]),
            (b"Subject:\r\n", &[b"subject:"]),
            (b"X-Empty:   \r\n", &[b"x-empty:"]),
            (b"To: a@x,\r\n  b@y\r\n", &[b"to:a@x, b@y"]),
            (b"Last: no crlf  ", &[b"last:no crlf"]),
            (b"garbage line\r\nFrom: x\r\n", &[b"from:x"]),
        ];
        for (block, expected) in cases {
            let got: Vec<Vec<u8>> = parse_fields(block)
                .into_iter()
                .map(|(name, value)| {
                    let mut out = Vec::new();
                    relaxed_header(&mut out, name, value);
                    out
                })
                .collect();
            let expected: Vec<Vec<u8>> = expected.iter().map(|e| e.to_vec()).collect();
            assert_eq!(got, expected, "block {:?}", String::from_utf8_lossy(block));
        }
    }

    #[test]
    fn split_message_table() {
        let cases: &[(&[u8], &[u8], &[u8])] = &[
            (b"A: 1\r\n\r\nbody\r\n", b"A: 1\r\n", b"body\r\n"),
            (b"A: 1\r\n", b"A: 1\r\n", b""),
            (b"A: 1", b"A: 1", b""),
            (b"\r\nbody", b"", b"body"),
            (b"A: 1\r\n\r\n", b"A: 1\r\n", b""),
        ];
        for (msg, headers, body) in cases {
            assert_eq!(split_message(msg), (*headers, *body));
        }
    }

    #[test]
    fn algorithm_names() {
        for alg in [DkimAlgorithm::RsaSha256, DkimAlgorithm::Ed25519Sha256] {
            assert_eq!(alg.as_str().parse::<DkimAlgorithm>().ok(), Some(alg));
        }
        assert_eq!(
            "ED25519-SHA256".parse::<DkimAlgorithm>().ok(),
            Some(DkimAlgorithm::Ed25519Sha256)
        );
        assert!("rsa-sha1".parse::<DkimAlgorithm>().is_err());
        assert_eq!(DkimAlgorithm::Ed25519Sha256.key_type(), "ed25519");
        assert_eq!(
            dns_txt_value(DkimAlgorithm::RsaSha256, "AAAA"),
            "v=DKIM1; k=rsa; p=AAAA"
        );
    }

    const MESSAGE: &[u8] = b"From: Alice <alice@example.com>\r\n\
To: bob@example.net,\r\n carol@example.net\r\n\
Subject:  Hello   world \r\n\
To: dave@example.net\r\n\
X-Unsigned: whatever\r\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
Message-ID: <1@example.com>\r\n\
\r\n\
Hi Bob,\r\n\
.a line with a dot\r\n\
\x20 indented\ttab \x20\r\n\
\r\n\
\r\n";

    /// One RSA and one Ed25519 key for all tests (RSA generation is slow).
    fn keys() -> &'static (DkimKeyMaterial, DkimKeyMaterial) {
        static KEYS: std::sync::OnceLock<(DkimKeyMaterial, DkimKeyMaterial)> =
            std::sync::OnceLock::new();
        KEYS.get_or_init(|| (generate_rsa_2048().unwrap(), generate_ed25519().unwrap()))
    }

    fn signers(rsa: &DkimKeyMaterial, ed: &DkimKeyMaterial) -> Vec<DkimSigner> {
        vec![
            DkimSigner::new(
                "example.com",
                "rsa2024",
                rsa.algorithm,
                &rsa.private_pkcs8_der,
            )
            .unwrap(),
            DkimSigner::new("example.com", "ed2024", ed.algorithm, &ed.private_pkcs8_der).unwrap(),
        ]
    }

    /// Runs dkimpy on `signed` and returns one verdict per DKIM-Signature (top to bottom).
    fn dkimpy_verify(signed: &[u8], records: &[(&str, String)]) -> Vec<bool> {
        use std::io::Write as _;
        const SCRIPT: &str = r#"
import sys, dkim
msg = sys.stdin.buffer.read()
a = sys.argv[1:]
recs = {a[i]: a[i + 1].encode() for i in range(0, len(a), 2)}
def dns(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    return recs.get(name.rstrip(".").lower())
def ok(i):
    try:
        return dkim.DKIM(msg).verify(idx=i, dnsfunc=dns)
    except dkim.ValidationError:
        return False
n = sum(1 for k, _ in dkim.DKIM(msg).headers if k.lower() == b"dkim-signature")
print(" ".join("1" if ok(i) else "0" for i in range(n)))
"#;
        let mut cmd = std::process::Command::new("python3");
        cmd.arg("-c").arg(SCRIPT);
        for (name, txt) in records {
            cmd.arg(name).arg(txt);
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3 must be installed (with dkimpy and pynacl)");
        child.stdin.take().unwrap().write_all(signed).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "dkimpy failed (pip install dkimpy pynacl): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .map(|v| v == "1")
            .collect()
    }

    fn records(rsa: &DkimKeyMaterial, ed: &DkimKeyMaterial) -> Vec<(&'static str, String)> {
        vec![
            (
                "rsa2024._domainkey.example.com",
                dns_txt_value(rsa.algorithm, &rsa.public_key_b64),
            ),
            (
                "ed2024._domainkey.example.com",
                dns_txt_value(ed.algorithm, &ed.public_key_b64),
            ),
        ]
    }

    #[test]
    fn dkimpy_verifies_rsa_and_ed25519_and_rejects_tampering() {
        let (rsa, ed) = keys();
        let signers = signers(rsa, ed);
        let records = records(rsa, ed);
        let signed = sign_message(&signers, MESSAGE, 1_700_000_000).unwrap();
        assert!(signed.ends_with(MESSAGE));
        let text = String::from_utf8(signed.clone()).unwrap();
        for line in text.split("\r\n") {
            assert!(line.len() <= MAX_LINE, "line too long: {line:?}");
        }
        let unfolded = text.replace("\r\n\t", " ");
        assert!(unfolded.contains("a=rsa-sha256;"), "{text}");
        assert!(unfolded.contains("a=ed25519-sha256;"));
        assert!(unfolded.contains(" t=1700000000;"));
        assert!(
            unfolded.contains("h=from:from:to:to:subject:date:message-id;"),
            "{unfolded}"
        );
        assert_eq!(dkimpy_verify(&signed, &records), [true, true]);

        // Each algorithm alone.
        for signer in signers.iter().map(std::slice::from_ref) {
            let one = sign_message(signer, MESSAGE, 1_700_000_000).unwrap();
            assert_eq!(dkimpy_verify(&one, &records), [true]);
        }

        let tampered: &[(&str, &str)] = &[
            ("Hi Bob,", "Hi Rob,"),
            ("Hello   world", "Hello   World"),
            ("To: dave@", "To: mallory@"),
        ];
        for (from, to) in tampered {
            let bad = text.replacen(from, to, 1);
            assert_eq!(
                dkimpy_verify(bad.as_bytes(), &records),
                [false, false],
                "{from}"
            );
        }
        // Over-signing: a From header added on top breaks both signatures.
        let mut extra = b"From: mallory@example.org\r\n".to_vec();
        extra.extend_from_slice(&signed);
        assert_eq!(dkimpy_verify(&extra, &records), [false, false]);
        // Relaxed canonicalisation tolerates whitespace changes and trailing empty lines.
        let relaxed = text.replacen("Hi Bob,", "Hi  Bob, ", 1) + "\r\n\r\n";
        assert_eq!(dkimpy_verify(relaxed.as_bytes(), &records), [true, true]);
    }

    #[test]
    fn dkimpy_verifies_messages_without_body() {
        let (rsa, ed) = keys();
        let signers = signers(rsa, ed);
        let records = records(rsa, ed);
        for msg in [
            &b"From: a@example.com\r\nSubject: x\r\n\r\n"[..],
            b"From: a@example.com\r\n",
        ] {
            let signed = sign_message(&signers, msg, 1).unwrap();
            let text = String::from_utf8(signed.clone())
                .unwrap()
                .replace("\r\n\t", "");
            // sha256 of the empty string: the relaxed canonical form of an empty body.
            assert!(text.contains("bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;"));
            assert_eq!(dkimpy_verify(&signed, &records), [true, true]);
        }
    }

    #[test]
    fn signing_errors() {
        let (rsa, ed) = keys();
        let signers = signers(rsa, ed);
        assert!(matches!(
            sign_message(&signers, b"Subject: no from\r\n\r\nbody\r\n", 1),
            Err(DkimError::MissingFrom)
        ));
        assert_eq!(sign_message(&[], MESSAGE, 1).unwrap(), MESSAGE);
        let bad: &[(&str, &str, DkimAlgorithm, &[u8])] = &[
            (
                "example.com",
                "s",
                DkimAlgorithm::RsaSha256,
                &ed.private_pkcs8_der,
            ),
            (
                "example.com",
                "s",
                DkimAlgorithm::Ed25519Sha256,
                &rsa.private_pkcs8_der,
            ),
            ("example.com", "s", DkimAlgorithm::RsaSha256, b"junk"),
            (
                "exa mple.com",
                "s",
                DkimAlgorithm::RsaSha256,
                &rsa.private_pkcs8_der,
            ),
            (
                "example.com",
                "s;x=1",
                DkimAlgorithm::RsaSha256,
                &rsa.private_pkcs8_der,
            ),
            (
                "example.com",
                "",
                DkimAlgorithm::RsaSha256,
                &rsa.private_pkcs8_der,
            ),
        ];
        for (domain, selector, alg, key) in bad {
            assert!(
                DkimSigner::new(domain, selector, *alg, key).is_err(),
                "{domain} {selector}"
            );
        }
        assert!(!format!("{rsa:?}").contains(&B64.encode(&rsa.private_pkcs8_der)[..20]));
    }
}
