//! The domains area's rows: sending domains and their DKIM keys.

/// One DKIM key of a sending domain.
#[derive(Debug, Clone)]
pub struct DkimKeyRecord {
    /// `dkim_…`.
    pub id: String,
    /// DNS selector (`<selector>._domainkey.<domain>`).
    pub selector: String,
    /// `rsa-sha256` or `ed25519-sha256`.
    pub algorithm: String,
    /// PKCS#8 private key, sealed with context `dkim:<id>`.
    pub private_key_enc: Vec<u8>,
    /// Base64 public key as published in DNS (`p=`).
    pub public_key: String,
    /// Creation time.
    pub created_at: i64,
}

/// A sending domain registered to a tenant, with its DKIM keys.
#[derive(Debug, Clone)]
pub struct DomainRecord {
    /// Owning tenant.
    pub tenant_id: String,
    /// Lower-case domain name.
    pub name: String,
    /// Creation time.
    pub created_at: i64,
    /// DKIM keys, oldest first.
    pub keys: Vec<DkimKeyRecord>,
}
