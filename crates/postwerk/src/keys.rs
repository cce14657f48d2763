//! `postwerk keys …`: create, list, rotate and revoke API keys. Every change is
//! written to the audit log.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use postwerk_accounts::apikeys;
use postwerk_core::config::{Config, parse_duration};
use postwerk_core::model::parse_scopes;
use postwerk_services::context::{DEFAULT_TENANT, now_ms};
use postwerk_store::prelude::*;

use serde_json::json;

use crate::cli::{audited, open, tenant_for};
use crate::listing::Listing;

/// `postwerk keys …`.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create an API key (printed once).
    Create(KeyCreate),
    /// List a tenant's keys: id, name, scopes, state, allowed addresses, own rate
    /// limit (never the secrets).
    List {
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key at once.
    Revoke {
        /// The key's id (`key_…`).
        id: String,
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Create a successor (same name, scopes, expiry; printed once) and let the old
    /// key work for a grace period.
    Rotate {
        /// The key's id (`key_…`).
        id: String,
        /// How long the old key stays valid, e.g. `24h`, `0s`.
        #[arg(long, default_value = "24h")]
        grace: String,
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// Print only the new key.
        #[arg(long, short)]
        quiet: bool,
    },
}

/// `postwerk keys create` options.
#[derive(Args)]
pub struct KeyCreate {
    /// A label for the key.
    #[arg(long)]
    name: String,
    /// Comma-separated scopes: send, read, write, import, export, privacy, admin.
    #[arg(long, default_value = "send")]
    scopes: String,
    /// Tenant, made by `tenants create` (default: the install's default tenant).
    #[arg(long, default_value = DEFAULT_TENANT)]
    tenant: String,
    /// Lifetime, e.g. `90d` (default: no expiry).
    #[arg(long)]
    expires: Option<String>,
    /// An address or CIDR the key may be used from (repeatable; default: any).
    #[arg(long = "allow-ip", value_name = "CIDR")]
    allow_ip: Vec<String>,
    /// The key's own request limit per `[rate_limits] window` (default: `per_key`).
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Print only the key.
    #[arg(long, short)]
    quiet: bool,
}

fn millis(text: &str, flag: &str) -> anyhow::Result<i64> {
    let d = parse_duration(text).with_context(|| format!("{flag}: use e.g. 90s, 24h, 30d"))?;
    Ok(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Runs `postwerk keys …`.
pub async fn run(cmd: KeysCommand, config: Config) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create(k) => create(k, config).await,
        KeysCommand::List { tenant, json } => {
            let services = open(config).await?;
            let tenant = tenant_for(&services, &tenant).await?.id;
            let now = now_ms();
            let mut list =
                Listing::new(&["id", "name", "scopes", "state", "allowed_ips", "rate_limit"]);
            for k in services.store.list_api_keys(&tenant).await? {
                let state = match (k.revoked_at, k.expires_at) {
                    (Some(_), _) => "revoked",
                    (None, Some(e)) if e <= now => "expired",
                    (None, Some(_)) => "expiring",
                    (None, None) => "active",
                };
                let scopes: Vec<_> = k.scopes.iter().map(|s| s.as_str()).collect();
                list.row([
                    json!(k.id),
                    json!(k.name),
                    json!(scopes),
                    json!(state),
                    json!(k.allowed_ips),
                    json!(k.rate_limit),
                ]);
            }
            list.print(json);
            Ok(())
        }
        KeysCommand::Revoke { id, tenant } => {
            let services = open(config).await?;
            let tenant = tenant_for(&services, &tenant).await?.id;
            audited(&services, Some(&tenant), "key.revoke", id.clone()).await?;
            apikeys::revoke(&services, &tenant, &id).await?;
            println!("Revoked {id}.");
            Ok(())
        }
        KeysCommand::Rotate {
            id,
            grace,
            tenant,
            quiet,
        } => {
            let grace = millis(&grace, "--grace")?;
            let services = open(config).await?;
            let tenant = tenant_for(&services, &tenant).await?.id;
            audited(&services, Some(&tenant), "key.rotate", id.clone()).await?;
            let (record, token) = apikeys::rotate(&services, &tenant, &id, grace).await?;
            if quiet {
                println!("{token}");
            } else {
                println!("Rotated {id}: its successor is {}.", record.id);
                println!("It is shown only once; store it now:\n\n{token}");
            }
            Ok(())
        }
    }
}

async fn create(k: KeyCreate, config: Config) -> anyhow::Result<()> {
    let scopes = parse_scopes(&k.scopes).context("--scopes")?;
    if scopes.is_empty() {
        bail!("--scopes: give at least one scope");
    }
    let expires_at = k
        .expires
        .as_deref()
        .map(|e| millis(e, "--expires").map(|ms| now_ms().saturating_add(ms)))
        .transpose()?;
    if k.rate_limit == Some(0) {
        bail!("--rate-limit: at least 1 request per window");
    }
    let allowed_ips = k
        .allow_ip
        .iter()
        .map(|c| {
            apikeys::parse_allowed_ip(c)
                .with_context(|| format!("--allow-ip: `{c}` is not an address or CIDR"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let services = open(config).await?;
    let tenant = tenant_for(&services, &k.tenant).await?;
    let spec = apikeys::KeySpec {
        name: k.name,
        scopes,
        expires_at,
        allowed_ips,
        rate_limit: k.rate_limit,
    };
    let (record, token) = apikeys::create_key(&services, &tenant.id, spec).await?;
    audited(&services, Some(&tenant.id), "key.create", record.id.clone()).await?;
    if k.quiet {
        println!("{token}");
    } else {
        let scopes: Vec<_> = record.scopes.iter().map(|s| s.as_str()).collect();
        println!(
            "Created API key {} ({}) for tenant {} with scopes {}.",
            record.id,
            record.name,
            tenant.name,
            scopes.join(",")
        );
        println!("It is shown only once; store it now:\n\n{token}");
    }
    Ok(())
}
