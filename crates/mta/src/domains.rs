//! Sending domains: registration (DKIM key generation) and the DNS records to publish.

use postwerk_core::config::Config;
use postwerk_core::id::new_id;
use postwerk_dkim::{self as dkim, DkimAlgorithm, DkimKeyMaterial};
use postwerk_store::model::{DkimKeyRecord, DomainRecord};
use postwerk_store::prelude::*;
use postwerk_store::vault::SealContext;
use serde::Serialize;

use postwerk_services::context::{ServiceError, Services, now_ms};

/// Why a domain could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Not a valid domain name.
    #[error("invalid domain name")]
    Invalid,
    /// The tenant already has this domain.
    #[error("domain already registered")]
    Exists,
    /// Another tenant of the installation holds this domain (a name belongs to one
    /// tenant: otherwise tenants could send as each other).
    #[error("domain registered by another account")]
    Taken,
    /// Key generation failed.
    #[error("key generation failed: {0}")]
    KeyGeneration(String),
    /// Store or vault failure.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// One DNS record to publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsRecord {
    /// `TXT` or `MX`.
    #[serde(rename = "type")]
    pub record_type: &'static str,
    /// Fully qualified owner name.
    pub name: String,
    /// Record data.
    pub value: String,
    /// What it is for.
    pub purpose: &'static str,
}

/// Normalises and validates a domain name: the canonical form of
/// [`postwerk_core::address::normalize_domain`] (A-labels, lower case, no trailing dot),
/// so `bücher.example` is registered, shown and matched as `xn--bcher-kva.example`.
pub fn normalize_domain(name: &str) -> Result<String, DomainError> {
    postwerk_core::address::normalize_domain(name).map_err(|_| DomainError::Invalid)
}

/// Registers `name` for a tenant with a new RSA-2048 and a new Ed25519 DKIM key.
/// A name belongs to at most one tenant: `Taken` if another one holds it (decided
/// atomically by the store when two tenants add it at once).
pub async fn create_domain(
    services: &Services,
    tenant_id: &str,
    name: &str,
) -> Result<DomainRecord, DomainError> {
    let name = normalize_domain(name)?;
    // Checked first to spare the key generation; the insert decides races.
    held_by(services, tenant_id, &name).await?;
    let keys = services.tenant_keys(tenant_id).await?;
    // RSA key generation takes a noticeable moment: keep it off the async workers.
    let (rsa, ed) = tokio::task::spawn_blocking(|| {
        Ok::<_, dkim::DkimError>((dkim::generate_rsa_2048()?, dkim::generate_ed25519()?))
    })
    .await
    .map_err(|e| DomainError::KeyGeneration(e.to_string()))?
    .map_err(|e| DomainError::KeyGeneration(e.to_string()))?;
    let now = now_ms();
    let stamp = chrono::Utc::now().format("%Y%m").to_string();
    let record = |material: DkimKeyMaterial, suffix: &str| {
        let id = new_id("dkim");
        DkimKeyRecord {
            private_key_enc: keys.seal(SealContext::Dkim(&id), &material.private_pkcs8_der),
            id,
            selector: format!("pw{stamp}{suffix}"),
            algorithm: material.algorithm.as_str().to_string(),
            public_key: material.public_key_b64,
            created_at: now,
        }
    };
    let domain = DomainRecord {
        tenant_id: tenant_id.to_string(),
        name,
        created_at: now,
        keys: vec![record(rsa, "r"), record(ed, "e")],
    };
    match services.store.insert_domain(domain.clone()).await {
        Ok(()) => Ok(domain),
        Err(postwerk_store::StoreError::Conflict("domain")) => {
            held_by(services, tenant_id, &domain.name).await?;
            Err(DomainError::Exists)
        }
        Err(e) => Err(ServiceError::from(e).into()),
    }
}

/// `Exists` if the tenant holds `name`, `Taken` if another tenant does.
async fn held_by(services: &Services, tenant_id: &str, name: &str) -> Result<(), DomainError> {
    let owners = services
        .store
        .domain_owners(name)
        .await
        .map_err(ServiceError::from)?;
    if owners.iter().any(|o| o == tenant_id) {
        Err(DomainError::Exists)
    } else if owners.is_empty() {
        Ok(())
    } else {
        Err(DomainError::Taken)
    }
}

/// Removes a tenant's domain and its DKIM keys (an operator's command: to move a
/// domain to another tenant, remove it here and add it there); `false` if the tenant
/// did not have it. Running servers stop accepting mail from it for that tenant
/// within [`postwerk_services::context::REGISTERED_TTL`].
pub async fn remove_domain(
    services: &Services,
    tenant_id: &str,
    name: &str,
) -> Result<bool, DomainError> {
    let name = normalize_domain(name)?;
    Ok(services
        .store
        .delete_domain(tenant_id, &name)
        .await
        .map_err(ServiceError::from)?)
}

/// The records to publish for a domain: a DKIM TXT per key, SPF for the envelope
/// (bounce) domain, DMARC, and the MX that routes bounces back to Postwerk.
pub fn dns_records(domain: &DomainRecord, config: &Config) -> Vec<DnsRecord> {
    let mut out = Vec::with_capacity(domain.keys.len() + 3);
    for k in &domain.keys {
        let Ok(algorithm) = k.algorithm.parse::<DkimAlgorithm>() else {
            continue;
        };
        out.push(DnsRecord {
            record_type: "TXT",
            name: format!("{}._domainkey.{}", k.selector, domain.name),
            value: dkim::dns_txt_value(algorithm, &k.public_key),
            purpose: "dkim",
        });
    }
    let ehlo = &config.delivery.ehlo_name;
    let bounce_domain = config
        .delivery
        .bounce_domain
        .clone()
        .unwrap_or_else(|| domain.name.clone());
    out.push(DnsRecord {
        record_type: "TXT",
        name: bounce_domain.clone(),
        value: format!("v=spf1 a:{ehlo} ~all"),
        purpose: "spf",
    });
    out.push(DnsRecord {
        record_type: "TXT",
        name: format!("_dmarc.{}", domain.name),
        value: "v=DMARC1; p=none; adkim=r; aspf=r".into(),
        purpose: "dmarc",
    });
    out.push(DnsRecord {
        record_type: "MX",
        name: bounce_domain,
        value: format!("10 {ehlo}."),
        purpose: "bounce",
    });
    out
}

/// How a published record compares with the one to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    /// Published as it should be.
    Found,
    /// Nothing of the kind is published at the name.
    Missing,
    /// A record of the kind is published there, with other data.
    Different,
    /// The lookup failed (try again).
    Unknown,
}

/// A record to publish, with what DNS holds at its name.
#[derive(Debug, Clone, Serialize)]
pub struct CheckedRecord {
    /// The record.
    #[serde(flatten)]
    pub record: DnsRecord,
    /// How DNS compares.
    pub status: RecordStatus,
    /// The records of the kind found at the name (TXT data, or `preference host` for MX).
    pub published: Vec<String>,
}

/// TXT data compared without the spaces around `;` separators and case-insensitively
/// for tags such as `v=DKIM1` (the key data is base64 and compares as written).
fn same_txt(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> Vec<String> {
        s.split(';')
            .map(|p| p.split_whitespace().collect::<String>())
            .filter(|p| !p.is_empty())
            .collect()
    };
    norm(a) == norm(b)
}

/// Whether a published TXT record is of the same kind as `record` (a DKIM key, an SPF
/// policy, a DMARC policy).
fn same_kind(record: &DnsRecord, published: &str) -> bool {
    let p = published.trim_start().to_ascii_lowercase();
    match record.purpose {
        "spf" => p.starts_with("v=spf1"),
        "dmarc" => p.starts_with("v=dmarc1"),
        _ => p.starts_with("v=dkim1") || p.contains("p="),
    }
}

/// Looks each record up with `resolver` and compares it with what DNS holds. A DMARC
/// policy counts as found whatever its policy (`p=none` is only the first step).
pub async fn check_records(
    resolver: &postwerk_dns::resolve::MxResolver,
    records: Vec<DnsRecord>,
) -> Vec<CheckedRecord> {
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        let (status, published) = if record.record_type == "MX" {
            match resolver.mx(&record.name).await {
                Ok(hosts) => {
                    let want = record.value.split_whitespace().last().unwrap_or_default();
                    let want = want.trim_end_matches('.').to_ascii_lowercase();
                    let status = if hosts.iter().any(|(_, h)| *h == want) {
                        RecordStatus::Found
                    } else if hosts.is_empty() {
                        RecordStatus::Missing
                    } else {
                        RecordStatus::Different
                    };
                    let shown = hosts.iter().map(|(p, h)| format!("{p} {h}.")).collect();
                    (status, shown)
                }
                Err(_) => (RecordStatus::Unknown, Vec::new()),
            }
        } else {
            match resolver.txt(&record.name).await {
                Ok(txts) => {
                    let kind: Vec<String> =
                        txts.into_iter().filter(|t| same_kind(&record, t)).collect();
                    let status = if kind.iter().any(|t| same_txt(t, &record.value))
                        || (record.purpose == "dmarc" && !kind.is_empty())
                    {
                        RecordStatus::Found
                    } else if kind.is_empty() {
                        RecordStatus::Missing
                    } else {
                        RecordStatus::Different
                    };
                    (status, kind)
                }
                Err(_) => (RecordStatus::Unknown, Vec::new()),
            }
        };
        out.push(CheckedRecord {
            record,
            status,
            published,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_domains() {
        assert_eq!(normalize_domain("Example.COM.").unwrap(), "example.com");
        assert_eq!(
            normalize_domain("Bücher.Example").unwrap(),
            "xn--bcher-kva.example"
        );
        for bad in [
            "",
            "localhost",
            "-a.com",
            "a..com",
            "a b.com",
            "ex_ample.com",
        ] {
            assert!(normalize_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dns_records_cover_dkim_spf_dmarc_and_bounce_mx() {
        let domain = DomainRecord {
            tenant_id: "t".into(),
            name: "example.com".into(),
            created_at: 0,
            keys: vec![
                DkimKeyRecord {
                    id: "d1".into(),
                    selector: "pw202611r".into(),
                    algorithm: "rsa-sha256".into(),
                    private_key_enc: vec![],
                    public_key: "AAAA".into(),
                    created_at: 0,
                },
                DkimKeyRecord {
                    id: "d2".into(),
                    selector: "pw202611e".into(),
                    algorithm: "ed25519-sha256".into(),
                    private_key_enc: vec![],
                    public_key: "BBBB".into(),
                    created_at: 0,
                },
            ],
        };
        let mut config = Config::default();
        config.delivery.ehlo_name = "mta.example.com".into();
        config.delivery.bounce_domain = Some("bounces.example.com".into());
        let recs = dns_records(&domain, &config);
        let find = |purpose: &str| {
            recs.iter()
                .filter(|r| r.purpose == purpose)
                .collect::<Vec<_>>()
        };
        assert_eq!(find("dkim").len(), 2);
        assert_eq!(find("dkim")[0].name, "pw202611r._domainkey.example.com");
        assert!(find("dkim")[0].value.contains("k=rsa; p=AAAA"));
        assert!(find("dkim")[1].value.contains("k=ed25519; p=BBBB"));
        assert_eq!(find("spf")[0].name, "bounces.example.com");
        assert_eq!(find("dmarc")[0].name, "_dmarc.example.com");
        assert_eq!(find("bounce")[0].value, "10 mta.example.com.");
    }
}
