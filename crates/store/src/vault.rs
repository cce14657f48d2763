//! The vault: envelope encryption and blind indexes.
//!
//! A 256-bit master key (file `master.key` in the data directory, mode 0600, or the
//! `POSTWERK_MASTER_KEY` environment variable, base64) wraps one random data key per
//! tenant. From a tenant's data key we derive, with HMAC-SHA256 as a KDF:
//!
//! - an AES-256-GCM key that seals message content, addresses and event details;
//! - an HMAC key for the blind index of addresses (search without storing them);
//! - an HMAC key that authenticates VERP tokens.
//!
//! Every sealed value is `0x01 ‖ nonce(12) ‖ ciphertext ‖ tag(16)` and is bound to a
//! [`SealContext`] (e.g. `rcpt:<id>`) as associated data, so a ciphertext cannot be
//! moved to another row. Nothing in this module logs.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, RwLock};

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;

use postwerk_core::address::Address;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// The master key's file in the data directory (unless `POSTWERK_MASTER_KEY` is set).
pub const MASTER_KEY_FILE: &str = "master.key";

/// Why a vault operation failed. Never carries plaintext.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The master key file or variable is missing, unreadable or malformed.
    #[error("master key: {0}")]
    MasterKey(String),
    /// A sealed value did not authenticate (wrong key, wrong context, or tampering).
    #[error("sealed value failed to authenticate")]
    Authentication,
}

/// What a sealed value is bound to (its associated data): the row and field it
/// belongs to, so that a ciphertext cannot be moved to another. Each is written as
/// `<kind>:<id>` (ids of hashes in lowercase hex): these bytes are in every existing
/// database and must never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealContext<'a> {
    /// A tenant's data key, wrapped by the master key: `tenant:<tenant id>`.
    Tenant(&'a str),
    /// A recipient's address: `rcpt:<recipient id>`.
    Recipient(&'a str),
    /// A message's summary: `meta:<message id>`.
    Meta(&'a str),
    /// A message's content: `msg:<message id>`.
    Content(&'a str),
    /// A message's explicit envelope sender: `from:<message id>`.
    MailFrom(&'a str),
    /// The details of a recipient's event: `event:<recipient id>`.
    Event(&'a str),
    /// The details of a stream's event: `stream:<stream name>`.
    StreamEvent(&'a str),
    /// An Idempotency-Key's stored response: `idem:<key hash>`.
    Idempotency(&'a [u8]),
    /// A person's own data key: `contactkey:<blind index>` (it names contacts, the
    /// first data sealed under these keys).
    PersonKey(&'a [u8]),
    /// A contact's data: `contact:<blind index>`.
    Contact(&'a [u8]),
    /// A contact's consent record: `consent:<blind index>`.
    Consent(&'a [u8]),
    /// A suppressed address: `supp:<blind index>`.
    Suppression(&'a [u8]),
    /// A data subject request's details: `dsar:<blind index>`.
    SubjectRequest(&'a [u8]),
    /// A domain's DKIM private key: `dkim:<key id>`.
    Dkim(&'a str),
    /// A user's email address: `user:<user id>`.
    UserEmail(&'a str),
    /// A user's TOTP secret: `totp:<user id>`.
    Totp(&'a str),
    /// A tenant's incident details: `incident:<tenant id>`.
    Incident(&'a str),
    /// A webhook's signing secret: `webhook:<webhook id>`.
    WebhookSecret(&'a str),
    /// A segment's filter: `segment:<segment id>`.
    Segment(&'a str),
    /// A campaign template's version: `template:<template id>:<version>`.
    Template(&'a str, i64),
    /// A chunk of an import's spooled rows: `import:<import id>`.
    Import(&'a str),
    /// A broadcast's spec (template, From, lists, …): `broadcast:<broadcast id>`.
    Broadcast(&'a str),
}

impl fmt::Display for SealContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, id) = match *self {
            SealContext::Tenant(id) => ("tenant", id),
            SealContext::Recipient(id) => ("rcpt", id),
            SealContext::Meta(id) => ("meta", id),
            SealContext::Content(id) => ("msg", id),
            SealContext::MailFrom(id) => ("from", id),
            SealContext::Event(id) => ("event", id),
            SealContext::StreamEvent(name) => ("stream", name),
            SealContext::Dkim(id) => ("dkim", id),
            SealContext::UserEmail(id) => ("user", id),
            SealContext::Totp(id) => ("totp", id),
            SealContext::Incident(id) => ("incident", id),
            SealContext::WebhookSecret(id) => ("webhook", id),
            SealContext::Segment(id) => ("segment", id),
            SealContext::Template(id, version) => return write!(f, "template:{id}:{version}"),
            SealContext::Import(id) => ("import", id),
            SealContext::Broadcast(id) => ("broadcast", id),
            SealContext::Idempotency(hash) => return write_hex(f, "idem", hash),
            SealContext::PersonKey(hash) => return write_hex(f, "contactkey", hash),
            SealContext::Contact(hash) => return write_hex(f, "contact", hash),
            SealContext::Consent(hash) => return write_hex(f, "consent", hash),
            SealContext::Suppression(hash) => return write_hex(f, "supp", hash),
            SealContext::SubjectRequest(hash) => return write_hex(f, "dsar", hash),
        };
        write!(f, "{kind}:{id}")
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, kind: &str, bytes: &[u8]) -> fmt::Result {
    let mut text = String::with_capacity(kind.len() + 1 + 2 * bytes.len());
    text.push_str(kind);
    text.push(':');
    postwerk_core::hex::encode_into(&mut text, bytes);
    f.write_str(&text)
}

/// The installation's master key. Wraps and unwraps tenant data keys, and
/// authenticates link tokens that must be checked before the tenant is known.
pub struct MasterKey {
    key: LessSafeKey,
    links: hmac::Key,
}

impl MasterKey {
    /// Loads the master key from `POSTWERK_MASTER_KEY` (base64) if `env_value` is set,
    /// else from `<data_dir>/master.key`, creating it (mode 0600) on first start.
    pub fn load_or_create(data_dir: &Path, env_value: Option<&str>) -> Result<Self, VaultError> {
        if let Some(b64) = env_value {
            return Self::from_base64(b64.trim());
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(text.trim()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut raw = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut raw);
                write_private_file(&path, format!("{}\n", B64.encode(raw)).as_bytes()).map_err(
                    |e| VaultError::MasterKey(format!("cannot create {}: {e}", path.display())),
                )?;
                Ok(Self::from_bytes(&raw))
            }
            Err(e) => Err(VaultError::MasterKey(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// Builds a master key from its base64 form (32 bytes).
    pub fn from_base64(b64: &str) -> Result<Self, VaultError> {
        let raw = B64
            .decode(b64)
            .map_err(|_| VaultError::MasterKey("not valid base64".into()))?;
        let raw: [u8; 32] = raw
            .try_into()
            .map_err(|_| VaultError::MasterKey("must be 32 bytes".into()))?;
        Ok(Self::from_bytes(&raw))
    }

    fn from_bytes(raw: &[u8; 32]) -> Self {
        let kdf = hmac::Key::new(hmac::HMAC_SHA256, raw);
        let links = hmac::sign(&kdf, b"postwerk/links/v1");
        MasterKey {
            key: aead_key(raw),
            links: hmac::Key::new(hmac::HMAC_SHA256, links.as_ref()),
        }
    }

    /// The authenticator of a link token that is verified without a store lookup
    /// (tracking pixels and redirects): see [`TenantKeys::link_tag`].
    pub fn link_tag(&self, purpose: &str, token: &str) -> String {
        tag_hex(&self.links, purpose, token)
    }

    /// Creates a fresh tenant data key and returns it wrapped for storage.
    pub fn new_wrapped_tenant_key(&self, tenant_id: &str) -> Vec<u8> {
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        seal_with(&self.key, SealContext::Tenant(tenant_id), &raw)
    }

    /// Unwraps a stored tenant data key into the tenant's working keys.
    pub fn unwrap_tenant_key(
        &self,
        tenant_id: &str,
        wrapped: &[u8],
    ) -> Result<TenantKeys, VaultError> {
        let raw = open_with(&self.key, SealContext::Tenant(tenant_id), wrapped)?;
        let raw: [u8; 32] = raw.try_into().map_err(|_| VaultError::Authentication)?;
        Ok(TenantKeys::derive(&raw))
    }
}

/// The working keys of one tenant, derived from its data key.
pub struct TenantKeys {
    seal: LessSafeKey,
    index: hmac::Key,
    verp: hmac::Key,
}

impl TenantKeys {
    fn derive(data_key: &[u8; 32]) -> Self {
        let kdf = hmac::Key::new(hmac::HMAC_SHA256, data_key);
        let sub = |label: &[u8]| -> [u8; 32] {
            let tag = hmac::sign(&kdf, label);
            let mut out = [0u8; 32];
            out.copy_from_slice(tag.as_ref());
            out
        };
        TenantKeys {
            seal: aead_key(&sub(b"postwerk/seal/v1")),
            index: hmac::Key::new(hmac::HMAC_SHA256, &sub(b"postwerk/blind-index/v1")),
            verp: hmac::Key::new(hmac::HMAC_SHA256, &sub(b"postwerk/verp/v1")),
        }
    }

    /// Encrypts `plaintext`, bound to `context`.
    pub fn seal(&self, context: SealContext<'_>, plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.seal, context, plaintext)
    }

    /// Creates a fresh per-record data key (a contact's), returned with its wrapped
    /// form (sealed under this tenant's key, bound to `context`) for storage.
    /// Deleting the wrapped key makes everything sealed with it unreadable, also in
    /// backups (crypto-shredding).
    pub fn new_record_key(&self, context: SealContext<'_>) -> (RecordKey, Vec<u8>) {
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        (RecordKey(aead_key(&raw)), self.seal(context, &raw))
    }

    /// Unwraps a record key stored with [`TenantKeys::new_record_key`].
    pub fn open_record_key(
        &self,
        context: SealContext<'_>,
        wrapped: &[u8],
    ) -> Result<RecordKey, VaultError> {
        let raw = self.open(context, wrapped)?;
        let raw: [u8; 32] = raw.try_into().map_err(|_| VaultError::Authentication)?;
        Ok(RecordKey(aead_key(&raw)))
    }

    /// Decrypts a value sealed with the same context.
    pub fn open(&self, context: SealContext<'_>, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        open_with(&self.seal, context, sealed)
    }

    /// The blind index of an address: HMAC-SHA256 under the tenant's index key of
    /// its one canonical form ([`Address::normalized`], domain in IDNA A-labels), so
    /// that every spelling of an address has the same index.
    pub fn blind_index(&self, address: &Address) -> BlindIndex {
        BlindIndex(self.index(&address.normalized()))
    }

    /// The blind index of a message tag (filtering by tag without storing tags
    /// plainly). The NUL prefix keeps tags apart from addresses in the same index.
    pub fn tag_index(&self, tag: &str) -> Vec<u8> {
        self.index(&format!("\0tag\0{tag}"))
    }

    /// The keyed tag of a contact attribute's value, for equality filters without the
    /// value: 8 bytes of an HMAC under the index key over the attribute's name and its
    /// value (trimmed, lower case), as 16 hex digits. Equal values have equal tags
    /// (so a reader of the database learns which contacts share a value, not the
    /// value); the NUL prefix keeps tags apart from addresses and message tags.
    pub fn attribute_tag(&self, name: &str, value: &str) -> String {
        let value = value.trim().to_lowercase();
        postwerk_core::hex::encode(&self.index(&format!("\0attr\0{name}\0{value}"))[..8])
    }

    fn index(&self, text: &str) -> Vec<u8> {
        hmac::sign(&self.index, text.as_bytes()).as_ref().to_vec()
    }

    /// The authenticator of a link token (unsubscribe, tracking): 16 bytes of an
    /// HMAC over the purpose and the token, hex. Long enough that tokens cannot be
    /// forged or guessed over HTTP.
    pub fn link_tag(&self, purpose: &str, token: &str) -> String {
        tag_hex(&self.verp, purpose, token)
    }

    /// A short authenticator for a VERP token: the first 5 bytes of an HMAC, as 10 hex
    /// digits (40 bits), short so that the bounce address's local part stays within
    /// RFC 5321's 64 octets. A forger must guess it over SMTP, where each session ends
    /// after a few refused recipients; bounces already in flight carry this length, so
    /// it cannot grow without accepting both for a retry period.
    pub fn verp_tag(&self, token: &str) -> String {
        let tag = hmac::sign(&self.verp, token.as_bytes());
        postwerk_core::hex::encode(&tag.as_ref()[..5])
    }
}

/// The blind index of a person's address (see [`TenantKeys::blind_index`]): what the
/// store keeps and looks people up by instead of the address. Made only from a parsed
/// [`Address`], so no caller can index an unnormalised spelling; read as bytes
/// (`&[u8]` through `Deref`) or turned into them ([`BlindIndex::into_bytes`]) for a row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlindIndex(Vec<u8>);

impl BlindIndex {
    /// The index's bytes, for a store lookup.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// The index's bytes, for a row.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl std::ops::Deref for BlindIndex {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for BlindIndex {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<BlindIndex> for Vec<u8> {
    fn from(index: BlindIndex) -> Vec<u8> {
        index.0
    }
}

/// 16 bytes of an HMAC over `purpose`, a NUL and `token`, as 32 hex digits.
fn tag_hex(key: &hmac::Key, purpose: &str, token: &str) -> String {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(purpose.as_bytes());
    ctx.update(&[0]);
    ctx.update(token.as_bytes());
    postwerk_core::hex::encode(&ctx.sign().as_ref()[..16])
}

/// A data key of one record (a contact), wrapped by the tenant key when stored.
pub struct RecordKey(LessSafeKey);

impl RecordKey {
    /// Encrypts `plaintext`, bound to `context`.
    pub fn seal(&self, context: SealContext<'_>, plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.0, context, plaintext)
    }

    /// Decrypts a value sealed with the same context.
    pub fn open(&self, context: SealContext<'_>, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        open_with(&self.0, context, sealed)
    }
}

/// Caches unwrapped tenant keys so the hot path never unwraps twice.
pub struct KeyRing {
    master: MasterKey,
    tenants: RwLock<HashMap<String, Arc<TenantKeys>>>,
}

impl KeyRing {
    /// A key ring over `master`.
    pub fn new(master: MasterKey) -> Self {
        KeyRing {
            master,
            tenants: RwLock::new(HashMap::new()),
        }
    }

    /// The master key (to wrap keys of new tenants).
    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// The cached keys of a tenant, if unwrapped before.
    pub fn cached(&self, tenant_id: &str) -> Option<Arc<TenantKeys>> {
        self.tenants.read().ok()?.get(tenant_id).cloned()
    }

    /// Drops a tenant's cached keys (its data key was destroyed).
    pub fn forget(&self, tenant_id: &str) {
        if let Ok(mut map) = self.tenants.write() {
            map.remove(tenant_id);
        }
    }

    /// Unwraps (once) and caches a tenant's keys.
    pub fn unwrap(&self, tenant_id: &str, wrapped: &[u8]) -> Result<Arc<TenantKeys>, VaultError> {
        if let Some(keys) = self.cached(tenant_id) {
            return Ok(keys);
        }
        let keys = Arc::new(self.master.unwrap_tenant_key(tenant_id, wrapped)?);
        if let Ok(mut map) = self.tenants.write() {
            map.insert(tenant_id.to_string(), keys.clone());
        }
        Ok(keys)
    }
}

fn aead_key(raw: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, raw).expect("AES-256 key is 32 bytes"))
}

fn seal_with(key: &LessSafeKey, context: SealContext<'_>, plaintext: &[u8]) -> Vec<u8> {
    let context = context.to_string();
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context.as_bytes()),
            &mut out[1 + NONCE_LEN..],
        )
        .expect("AES-GCM sealing cannot fail below 64 GiB");
    out.extend_from_slice(tag.as_ref());
    out
}

fn open_with(
    key: &LessSafeKey,
    context: SealContext<'_>,
    sealed: &[u8],
) -> Result<Vec<u8>, VaultError> {
    let context = context.to_string();
    if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != VERSION {
        return Err(VaultError::Authentication);
    }
    let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN]
        .try_into()
        .map_err(|_| VaultError::Authentication)?;
    let mut buf = sealed[1 + NONCE_LEN..].to_vec();
    let len = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context.as_bytes()),
            &mut buf,
        )
        .map_err(|_| VaultError::Authentication)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// Writes a file readable by its owner only (0600), atomically, and fsyncs it.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TenantKeys {
        let master = MasterKey::from_base64(&B64.encode([7u8; 32])).unwrap();
        let wrapped = master.new_wrapped_tenant_key("t1");
        master.unwrap_tenant_key("t1", &wrapped).unwrap()
    }

    const RCPT_1: SealContext = SealContext::Recipient("1");

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let k = keys();
        let sealed = k.seal(RCPT_1, b"bob@example.test");
        assert!(!sealed.windows(3).any(|w| w == b"bob"));
        assert_eq!(k.open(RCPT_1, &sealed).unwrap(), b"bob@example.test");
        let other = SealContext::Recipient("2");
        assert!(k.open(other, &sealed).is_err(), "context must be bound");
        let meta = SealContext::Meta("1");
        assert!(k.open(meta, &sealed).is_err(), "kind must be bound");
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(k.open(RCPT_1, &tampered).is_err());
        assert_ne!(
            k.seal(RCPT_1, b"same"),
            k.seal(RCPT_1, b"same"),
            "nonces must differ"
        );
    }

    #[test]
    fn seal_contexts_keep_their_stored_bytes() {
        let hash: &[u8] = &[0x0a, 0xff];
        let cases = [
            (SealContext::Tenant("ten_1"), "tenant:ten_1"),
            (SealContext::Recipient("rcpt_1"), "rcpt:rcpt_1"),
            (SealContext::Meta("msg_1"), "meta:msg_1"),
            (SealContext::Content("msg_1"), "msg:msg_1"),
            (SealContext::MailFrom("msg_1"), "from:msg_1"),
            (SealContext::Event("rcpt_1"), "event:rcpt_1"),
            (SealContext::StreamEvent("news"), "stream:news"),
            (SealContext::Idempotency(hash), "idem:0aff"),
            (SealContext::PersonKey(hash), "contactkey:0aff"),
            (SealContext::Contact(hash), "contact:0aff"),
            (SealContext::Consent(hash), "consent:0aff"),
            (SealContext::Suppression(hash), "supp:0aff"),
            (SealContext::SubjectRequest(hash), "dsar:0aff"),
            (SealContext::Dkim("dk_1"), "dkim:dk_1"),
            (SealContext::UserEmail("usr_1"), "user:usr_1"),
            (SealContext::Totp("usr_1"), "totp:usr_1"),
            (SealContext::Incident("ten_1"), "incident:ten_1"),
            (SealContext::WebhookSecret("wh_1"), "webhook:wh_1"),
        ];
        for (context, bytes) in cases {
            assert_eq!(context.to_string(), bytes);
        }
    }

    #[test]
    fn record_keys_are_separate_and_shred_with_their_wrapping() {
        let k = keys();
        let (key_of_1, contact_1) = (SealContext::PersonKey(&[1]), SealContext::Contact(&[1]));
        let (key, wrapped) = k.new_record_key(key_of_1);
        let sealed = key.seal(contact_1, b"Zofia");
        let reopened = k.open_record_key(key_of_1, &wrapped).unwrap();
        assert_eq!(reopened.open(contact_1, &sealed).unwrap(), b"Zofia");
        let key_of_2 = SealContext::PersonKey(&[2]);
        assert!(k.open_record_key(key_of_2, &wrapped).is_err());
        let (other, _) = k.new_record_key(key_of_1);
        assert!(
            other.open(contact_1, &sealed).is_err(),
            "each record has its own key"
        );
        assert!(k.open(contact_1, &sealed).is_err(), "not the tenant key");
    }

    #[test]
    fn tenant_key_wrapping_is_bound_to_tenant() {
        let master = MasterKey::from_base64(&B64.encode([9u8; 32])).unwrap();
        let wrapped = master.new_wrapped_tenant_key("a");
        assert!(master.unwrap_tenant_key("b", &wrapped).is_err());
        let other = MasterKey::from_base64(&B64.encode([8u8; 32])).unwrap();
        assert!(other.unwrap_tenant_key("a", &wrapped).is_err());
    }

    #[test]
    fn blind_index_is_deterministic_per_tenant() {
        let (a, b) = (keys(), keys());
        let address = |s| Address::parse(s).unwrap();
        let x = address("x@y.z");
        assert_eq!(a.blind_index(&x), a.blind_index(&address("x@Y.Z")));
        assert_eq!(
            a.blind_index(&x).into_bytes(),
            a.index("x@y.z"),
            "the normalised form"
        );
        assert_ne!(a.blind_index(&x), a.blind_index(&address("x@y.zz")));
        assert_ne!(
            a.blind_index(&x),
            b.blind_index(&x),
            "tenants must not share an index"
        );
        assert_eq!(a.tag_index("t"), a.index("\0tag\0t"));
    }

    #[test]
    fn master_key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let m1 = MasterKey::load_or_create(dir.path(), None).unwrap();
        let wrapped = m1.new_wrapped_tenant_key("t");
        let m2 = MasterKey::load_or_create(dir.path(), None).unwrap();
        assert!(m2.unwrap_tenant_key("t", &wrapped).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(MASTER_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(MasterKey::from_base64("short").is_err());
    }
}
