//! Command-line definitions and the administrative commands.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use postwerk_core::address::Address;
use postwerk_core::config::Config;
use postwerk_core::model::SuppressionReason;
use postwerk_mta::domains::{self, DomainError};
use postwerk_mta::view;
use postwerk_services::audit::{self, Actor};
use postwerk_services::context::{DEFAULT_TENANT, Services};
use postwerk_services::tenants::{self, TenantError};
use postwerk_store::model::TenantRecord;
use postwerk_store::prelude::*;
use serde_json::json;

use crate::listing::Listing;

/// Postwerk: self-hosted, GDPR-first email delivery.
#[derive(Parser)]
#[command(name = "postwerk", version, about)]
pub struct Cli {
    /// Configuration file (default: ./postwerk.toml if it exists).
    #[arg(long, global = true, env = "POSTWERK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Subcommand)]
pub enum Command {
    /// Run Postwerk: HTTP API and delivery.
    Serve,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(crate::keys::KeysCommand),
    /// Manage users (people who sign in with a password).
    #[command(subcommand)]
    Users(crate::users::UsersCommand),
    /// Manage sending domains.
    #[command(subcommand)]
    Domains(DomainsCommand),
    /// Manage the suppression list.
    #[command(subcommand)]
    Suppressions(SuppressionsCommand),
    /// Import and export contacts (CSV).
    #[command(subcommand)]
    Contacts(crate::audience::ContactsCommand),
    /// Manage contact lists.
    #[command(subcommand)]
    Lists(crate::audience::ListsCommand),
    /// Contact imports: show, approve or discard what the watchdog held, cancel.
    #[command(subcommand)]
    Imports(crate::audience::ImportsCommand),
    /// Check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Read bounces, complaints and auto-replies offline.
    #[command(subcommand)]
    Bounce(BounceCommand),
    /// Manage tenants (organisations).
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Data-subject requests.
    #[command(subcommand)]
    Gdpr(crate::gdpr::GdprCommand),
    /// Manage streams (priority, pool, retries, pause).
    #[command(subcommand)]
    Streams(crate::streams::StreamsCommand),
    /// Inspect and act on the delivery queue.
    #[command(subcommand)]
    Queue(crate::streams::QueueCommand),
    /// Encrypted backups of the store.
    #[command(subcommand)]
    Backup(crate::backup::BackupCommand),
    /// Replace the store with a backup (stop `postwerk serve` first). Subject keys
    /// come from the current database: people erased since the backup stay erased.
    Restore(crate::backup::RestoreArgs),
}

/// `postwerk tenants …`.
#[derive(Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant with its own data key; fails if the name is taken.
    Create {
        /// Unique name (letters, digits, `-`, `_`, `.`).
        name: String,
        /// Make it a sub-account of this tenant (its admins may act on it).
        #[arg(long)]
        parent: Option<String>,
    },
    /// List tenants: id, name, parent, state (`active`, or `cancelled (deletion due
    /// <time>)`).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a tenant now, with its sub-accounts: its keys, users and SMTP credentials
    /// are refused and its waiting mail held; all its data and its data key are deleted
    /// after `[retention] cancelled_tenants`.
    Cancel {
        /// The tenant's name.
        name: String,
    },
    /// Lift a tenant's cancellation while the grace period lasts (with the
    /// sub-accounts cancelled with it); its held mail is queued again.
    Reactivate {
        /// The tenant's name.
        name: String,
    },
}

/// `postwerk audit …`.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the audit chain: prints the number of entries and the head hash (keep it
    /// elsewhere to detect truncation), or names the first altered, removed, inserted
    /// or moved entry and exits 1.
    Verify,
}

/// `postwerk tenants …`.
pub async fn tenants(cmd: TenantsCommand, config: Config) -> anyhow::Result<()> {
    let services = open(config).await?;
    match cmd {
        TenantsCommand::Create { name, parent } => create_tenant(&services, &name, parent).await,
        TenantsCommand::List { json } => {
            let all = services.store.list_tenants(None).await?;
            let name_of = |id: &str| all.iter().find(|t| t.id == id).map(|t| t.name.clone());
            let mut list = Listing::new(&["id", "name", "parent", "state"]);
            for t in &all {
                let parent = t
                    .parent_id
                    .as_deref()
                    .map(|p| name_of(p).unwrap_or(p.into()));
                let state = match t.cancelled_at {
                    Some(at) => format!(
                        "cancelled (deletion due {})",
                        rfc3339(tenants::deletion_due(&services, at))
                    ),
                    None => "active".into(),
                };
                list.row([json!(t.id), json!(t.name), json!(parent), json!(state)]);
            }
            list.print(json);
            Ok(())
        }
        TenantsCommand::Cancel { name } => {
            let tenant = tenant_named(&services, &name).await?;
            match tenants::cancel(&services, &Actor::cli(), &tenant).await {
                Ok(due) => {
                    println!(
                        "Cancelled tenant {name}; its data will be deleted at {}.",
                        rfc3339(due)
                    );
                    Ok(())
                }
                Err(TenantError::Cancelled { deletion_due }) => bail!(
                    "tenant `{name}` is already cancelled (deletion due {})",
                    rfc3339(deletion_due)
                ),
                Err(e) => Err(e.into()),
            }
        }
        TenantsCommand::Reactivate { name } => {
            let tenant = tenant_named(&services, &name).await?;
            match tenants::reactivate(&services, &Actor::cli(), &tenant).await {
                Ok(()) => {
                    println!("Reactivated tenant {name}.");
                    Ok(())
                }
                Err(TenantError::Service(e)) => Err(e.into()),
                Err(e) => bail!("tenant `{name}`: {e}"),
            }
        }
    }
}

/// A time for people to read (RFC 3339, UTC).
fn rfc3339(ms: i64) -> String {
    view::time(ms).unwrap_or_else(|| ms.to_string())
}

async fn create_tenant(
    services: &Services,
    name: &str,
    parent: Option<String>,
) -> anyhow::Result<()> {
    if !postwerk_services::context::valid_tenant_name(name) {
        bail!("tenant name: 1–64 letters, digits, '-', '_' or '.'");
    }
    if services.store.get_tenant_by_name(name).await?.is_some() {
        bail!("tenant `{name}` already exists");
    }
    let parent = match parent {
        Some(p) => {
            let found = services.store.get_tenant_by_name(&p).await?;
            let found = found.with_context(|| format!("--parent: no tenant '{p}'"))?;
            if found.parent_id.is_some() {
                bail!("--parent: `{p}` is itself a sub-account");
            }
            if found.cancelled_at.is_some() {
                bail!("--parent: `{p}` is cancelled");
            }
            Some(found.id)
        }
        None => None,
    };
    let tenant = services.create_tenant(name, parent.as_deref()).await?;
    audit::record(
        services,
        &Actor::cli(),
        Some(&tenant.id),
        "tenant.create",
        Some(tenant.id.clone()),
    )
    .await?;
    println!("Created tenant {} ({}).", tenant.name, tenant.id);
    Ok(())
}

/// `postwerk audit verify`: exit status 1 when the chain is broken.
pub async fn audit_verify(config: Config) -> anyhow::Result<bool> {
    let services = open(config).await?;
    match audit::verify(&services).await? {
        Ok((n, head)) => {
            let hex = postwerk_core::hex::encode(&head);
            println!("audit chain intact: {n} entries, head {hex}");
            Ok(true)
        }
        Err(e) => {
            eprintln!("audit chain BROKEN: {e}");
            Ok(false)
        }
    }
}

/// `postwerk bounce …`.
#[derive(Subcommand)]
pub enum BounceCommand {
    /// Parse a received message (DSN, ARF report, auto-reply or plain failure notice)
    /// with the inbound MX's parser and classifier, and print one JSON line per
    /// affected recipient: {"recipient", "reason", "hardbounce", "status", "reply",
    /// "feedback_type", "kind"}. Exits 1 if the message is none of these.
    Classify {
        /// The message (RFC 5322, e.g. a saved .eml); `-` reads standard input.
        file: PathBuf,
    },
}

/// One line of `postwerk bounce classify`.
#[derive(serde::Serialize)]
struct ClassifyLine<'a> {
    recipient: Option<&'a str>,
    reason: postwerk_core::model::BounceReason,
    hardbounce: bool,
    status: Option<&'a str>,
    reply: Option<&'a str>,
    feedback_type: Option<&'a str>,
    kind: postwerk_reports::Kind,
}

/// `postwerk bounce classify FILE`: needs no configuration or store.
pub fn bounce(cmd: &BounceCommand) -> std::process::ExitCode {
    use std::io::Read;
    use std::process::ExitCode;
    let BounceCommand::Classify { file } = cmd;
    let read = if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map(|_| buf)
    } else {
        std::fs::read(file)
    };
    let raw = match read {
        Ok(raw) => raw,
        Err(e) => {
            eprintln!("postwerk: cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let findings = postwerk_reports::parse(&raw);
    if findings.is_empty() {
        eprintln!("postwerk: not a bounce, delay notice, complaint or auto-reply");
        return ExitCode::from(1);
    }
    for f in &findings {
        let line = ClassifyLine {
            recipient: f.recipient.as_deref(),
            reason: f.reason,
            hardbounce: f.hardbounce,
            status: f.status.as_deref(),
            reply: f.reply.as_deref(),
            feedback_type: f.feedback_type.as_deref(),
            kind: f.kind,
        };
        println!("{}", serde_json::to_string(&line).expect("serialisable"));
    }
    ExitCode::SUCCESS
}

/// `postwerk suppressions …`.
#[derive(Subcommand)]
pub enum SuppressionsCommand {
    /// List suppressed addresses (optionally one): email, stream (`-`: every stream),
    /// reason, time added.
    List {
        /// Only this address.
        #[arg(long)]
        email: Option<String>,
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Suppress an address.
    Add(SuppressionArgs),
    /// Remove an address from the list.
    Remove(SuppressionArgs),
    /// Write the list as CSV to standard output (email, stream, reason, created_at,
    /// source); erased addresses are left out and counted on standard error.
    Export {
        /// Only this stream's entries (default: every entry).
        #[arg(long)]
        stream: Option<String>,
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Import a CSV file: a header naming an email column, optionally reason, stream
    /// and source; prints the counts.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Stream of the rows that name none (default: every stream).
        #[arg(long)]
        stream: Option<String>,
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
}

/// An address on the suppression list.
#[derive(Args)]
pub struct SuppressionArgs {
    /// The address.
    email: String,
    /// Only this stream (default: every stream).
    #[arg(long)]
    stream: Option<String>,
    /// Reason for `add`: hard_bounce, complaint, unsubscribe or manual.
    #[arg(long, default_value = "manual")]
    reason: String,
    /// Tenant, made by `tenants create` (default: the install's default tenant).
    #[arg(long, default_value = DEFAULT_TENANT)]
    tenant: String,
}

/// `postwerk domains …`.
#[derive(Subcommand)]
pub enum DomainsCommand {
    /// Register a sending domain; prints the DNS records to publish.
    Add(DomainArg),
    /// Show a domain's DNS records.
    Show(DomainArg),
    /// List domains: name, time registered.
    List(TenantArg),
    /// Remove a tenant's domain and its DKIM keys (e.g. to move it to another tenant).
    Remove(DomainArg),
}

/// A domain argument.
#[derive(Args)]
pub struct DomainArg {
    /// The domain, e.g. example.com.
    domain: String,
    /// Tenant, made by `tenants create` (default: the install's default tenant).
    #[arg(long, default_value = DEFAULT_TENANT)]
    tenant: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// A tenant argument, for a listing.
#[derive(Args)]
pub struct TenantArg {
    /// Tenant, made by `tenants create` (default: the install's default tenant).
    #[arg(long, default_value = DEFAULT_TENANT)]
    tenant: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `postwerk config …`.
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration (file given with --config) and exit.
    Check,
}

/// The tenant called `name`, or the error `no tenant 'name'`.
pub async fn tenant_named(services: &Services, name: &str) -> anyhow::Result<TenantRecord> {
    services
        .store
        .get_tenant_by_name(name)
        .await?
        .with_context(|| format!("no tenant '{name}'"))
}

/// The tenant a command's `--tenant` names. Only `tenants create` creates tenants: a
/// name that does not exist is the error `no tenant 'name'`, so a typo never makes a
/// tenant with its own data key. The exception is the default tenant, made on first
/// use so that a fresh install works without `tenants create`.
pub async fn tenant_for(services: &Services, name: &str) -> anyhow::Result<TenantRecord> {
    if name == DEFAULT_TENANT {
        return Ok(services.ensure_tenant(name).await?);
    }
    tenant_named(services, name).await
}

/// Writes an audit entry by the CLI (actor `cli`) about `target` in `tenant_id`.
pub async fn audited(
    services: &Services,
    tenant_id: Option<&str>,
    action: &str,
    target: String,
) -> anyhow::Result<()> {
    audit::record(services, &Actor::cli(), tenant_id, action, Some(target)).await?;
    Ok(())
}

/// Opens the store and keys named by the configuration.
pub async fn open(config: Config) -> anyhow::Result<Arc<Services>> {
    Ok(Arc::new(
        Services::open(config)
            .await
            .context("cannot open the store")?,
    ))
}

/// `postwerk domains …`.
pub async fn domains(cmd: DomainsCommand, config: Config) -> anyhow::Result<()> {
    let services = open(config).await?;
    match cmd {
        DomainsCommand::Add(d) => {
            let tenant = tenant_for(&services, &d.tenant).await?;
            let record = match domains::create_domain(&services, &tenant.id, &d.domain).await {
                Ok(r) => r,
                Err(DomainError::Exists) => bail!(
                    "{} is already registered (see `postwerk domains show`)",
                    d.domain
                ),
                Err(DomainError::Taken) => bail!(
                    "{} is registered by another tenant; a domain belongs to one tenant \
                     (to move it: `postwerk domains remove {} --tenant <that tenant>`)",
                    d.domain,
                    d.domain
                ),
                Err(e) => return Err(e.into()),
            };
            print_domain(&services, &record, d.json);
        }
        DomainsCommand::Show(d) => {
            let tenant = tenant_for(&services, &d.tenant).await?;
            let name = domains::normalize_domain(&d.domain)?;
            let Some(record) = services.store.get_domain(&tenant.id, &name).await? else {
                bail!("{name} is not registered");
            };
            print_domain(&services, &record, d.json);
        }
        DomainsCommand::Remove(d) => {
            let tenant = services.ensure_tenant(&d.tenant).await?;
            let name = domains::normalize_domain(&d.domain)?;
            if !domains::remove_domain(&services, &tenant.id, &name).await? {
                bail!("{name} is not registered for tenant {}", d.tenant);
            }
            audited(&services, Some(&tenant.id), "domain.remove", name.clone()).await?;
            println!("removed {name} from tenant {}", d.tenant);
        }
        DomainsCommand::List(t) => {
            let tenant = tenant_for(&services, &t.tenant).await?;
            let mut list = Listing::new(&["domain", "created_at"]);
            for d in services.store.list_domains(&tenant.id).await? {
                list.row([json!(d.name), json!(rfc3339(d.created_at))]);
            }
            list.print(t.json);
        }
    }
    Ok(())
}

fn print_domain(services: &Services, d: &postwerk_store::model::DomainRecord, json: bool) {
    let records = domains::dns_records(d, &services.config);
    if json {
        println!(
            "{}",
            serde_json::json!({"domain": d.name, "dns_records": records})
        );
        return;
    }
    println!("Domain {} — publish these DNS records:\n", d.name);
    for r in records {
        println!(
            "{:<5} {:<44} {}\n      ({})",
            r.record_type, r.name, r.value, r.purpose
        );
    }
}

/// The reason `suppressions add --reason` names: any but `erasure`, whose entries
/// only erasing a person makes.
fn manual_reason(text: &str) -> anyhow::Result<SuppressionReason> {
    match text.parse() {
        Ok(r) if r != SuppressionReason::Erasure => Ok(r),
        _ => bail!(
            "--reason: unknown reason `{text}` (valid: hard_bounce, complaint, unsubscribe, manual)"
        ),
    }
}

/// `postwerk suppressions …`.
pub async fn suppressions(cmd: SuppressionsCommand, config: Config) -> anyhow::Result<()> {
    let services = open(config).await?;
    match cmd {
        SuppressionsCommand::List {
            email,
            tenant,
            json,
        } => {
            let tenant = tenant_for(&services, &tenant).await?;
            let keys = services.tenant_keys(&tenant.id).await?;
            let hash = email
                .as_deref()
                .map(|e| Address::parse(e).map(|a| keys.blind_index(&a).into_bytes()))
                .transpose()
                .context("--email")?;
            let mut list = Listing::new(&["email", "stream", "reason", "created_at"]);
            let mut after = None;
            loop {
                let page = services
                    .store
                    .list_suppressions(&tenant.id, hash.clone(), after, 1000)
                    .await?;
                // The operator reads people's addresses: on the audit chain first, as
                // through the API.
                if let Some(target) = audit::subjects(page.iter().map(|e| e.rcpt_hash.as_slice())) {
                    audited(&services, Some(&tenant.id), "suppression.list", target).await?;
                }
                let people = services
                    .subject_keys(&tenant.id, page.iter().map(|e| e.rcpt_hash.as_slice()))
                    .await?;
                for e in &page {
                    let address = postwerk_privacy::suppressions::address_of(&people, e)
                        .unwrap_or_else(|| "(erased)".into());
                    list.row([
                        json!(address),
                        json!(e.stream.as_deref().filter(|s| !s.is_empty())),
                        json!(e.reason),
                        json!(rfc3339(e.created_at)),
                    ]);
                }
                match page.last() {
                    Some(last) if page.len() == 1000 => after = Some(last.seq),
                    _ => break,
                }
            }
            list.print(json);
        }
        SuppressionsCommand::Add(a) => {
            let tenant = tenant_for(&services, &a.tenant).await?;
            let address = Address::parse(&a.email).context("not a valid address")?;
            let reason = manual_reason(&a.reason)?;
            let added = postwerk_privacy::suppressions::suppress(
                &services,
                &tenant.id,
                &address,
                reason,
                a.stream.as_deref(),
                "cli",
            )
            .await?;
            println!(
                "{}",
                if added {
                    "suppressed"
                } else {
                    "already suppressed"
                }
            );
        }
        SuppressionsCommand::Remove(a) => {
            let tenant = tenant_for(&services, &a.tenant).await?;
            let keys = services.tenant_keys(&tenant.id).await?;
            let address = Address::parse(&a.email).context("not a valid address")?;
            let removed = services
                .store
                .remove_suppression(
                    &tenant.id,
                    &keys.blind_index(&address),
                    a.stream.as_deref(),
                    false,
                )
                .await?;
            if removed == 0 {
                bail!(
                    "that address is not suppressed (for that stream scope), or it is an erasure \
                     tombstone (lifted only with DELETE /v1/suppressions/{{email}} and the privacy scope)"
                );
            }
            println!("removed");
        }
        SuppressionsCommand::Export { stream, tenant } => {
            let tenant = tenant_for(&services, &tenant).await?;
            crate::suppressions_csv::export(&services, &tenant, stream.as_deref()).await?;
        }
        SuppressionsCommand::Import {
            file,
            stream,
            tenant,
        } => {
            let tenant = tenant_for(&services, &tenant).await?;
            crate::suppressions_csv::import(&services, &tenant, &file, stream.as_deref()).await?;
        }
    }
    Ok(())
}
