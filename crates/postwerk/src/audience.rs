//! `postwerk contacts …` (CSV import and export), `postwerk lists …` and
//! `postwerk imports …`: the audience from the command line, audited as `cli`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use postwerk_privacy::audience::filter::AudienceFilter;
use postwerk_privacy::audience::imports::{
    self, Existing, Import, ImportOptions, Screening, State,
};
use postwerk_privacy::audience::{export, lists};
use postwerk_services::audit::Actor;
use postwerk_services::context::{DEFAULT_TENANT, Services};
use postwerk_store::prelude::*;
use serde_json::json;

use crate::cli::{open, tenant_for};
use crate::listing::Listing;
use crate::progress;

/// `postwerk contacts …`.
#[derive(Subcommand)]
pub enum ContactsCommand {
    /// Import contacts from a CSV file (header first, column `email` required, other
    /// columns become attributes), screened by the watchdog; progress on stderr. Exits
    /// 1 if the watchdog holds the file (approve it with `postwerk imports approve`).
    Import {
        /// The CSV file.
        file: PathBuf,
        /// The list every row joins (name or id; it must exist).
        #[arg(long)]
        list: Option<String>,
        /// Record consent for this purpose for every row.
        #[arg(long)]
        consent: Option<String>,
        /// Where the consent was collected.
        #[arg(long)]
        source: Option<String>,
        /// The consent's lawful basis (default `consent`).
        #[arg(long)]
        lawful_basis: Option<String>,
        /// Leave existing contacts' attributes alone (default: update them).
        #[arg(long)]
        keep_existing: bool,
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Export contacts as CSV to standard output (header first, one canary row of the
    /// export's own among the rows when `[canaries] domain` is set); progress on stderr.
    Export {
        /// Only the members of this list (name or id).
        #[arg(long)]
        list: Option<String>,
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
}

/// `postwerk lists …`.
#[derive(Subcommand)]
pub enum ListsCommand {
    /// List the lists: id, name, members.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Tenant (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Create a list; prints its id.
    Create {
        /// Unique name.
        name: String,
        /// What the list is for.
        #[arg(long)]
        description: Option<String>,
        /// Tenant (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Delete a list (its memberships go, the contacts stay).
    Delete {
        /// Name or id.
        list: String,
        /// Tenant (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
}

/// `postwerk imports …`.
#[derive(Subcommand)]
pub enum ImportsCommand {
    /// List imports, newest first: id, state, rows, imported, rejected, created.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Tenant (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Show an import (JSON): counts, reasons it was held, rejected rows.
    Show(ImportArgs),
    /// Approve a held import: it is written now.
    Approve(ImportArgs),
    /// Discard a held import: nothing of it is written.
    Discard(ImportArgs),
    /// Cancel an unfinished import.
    Cancel(ImportArgs),
}

/// One import.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The import's id (`imp_…`).
    id: String,
    /// Tenant (default: the install's default tenant).
    #[arg(long, default_value = DEFAULT_TENANT)]
    tenant: String,
}

/// Runs `postwerk contacts …`.
pub async fn contacts(
    cmd: ContactsCommand,
    config: postwerk_core::config::Config,
) -> anyhow::Result<()> {
    let services = open(config).await?;
    match cmd {
        ContactsCommand::Import {
            file,
            list,
            consent,
            source,
            lawful_basis,
            keep_existing,
            tenant,
        } => {
            let tenant = tenant_for(&services, &tenant).await?;
            let options = ImportOptions {
                list,
                consent,
                source,
                lawful_basis,
                existing: if keep_existing {
                    Existing::Keep
                } else {
                    Existing::Update
                },
                ..ImportOptions::default()
            };
            import(&services, &tenant.id, &file, options).await
        }
        ContactsCommand::Export { list, tenant } => {
            let tenant = tenant_for(&services, &tenant).await?;
            let filter = AudienceFilter {
                lists: list.iter().cloned().collect(),
                ..AudienceFilter::default()
            };
            let resolved = filter
                .resolve(&services, &tenant.id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut export = export::start(&services, &Actor::cli(), resolved, list).await?;
            let mut out = std::io::stdout().lock();
            let total = export.total.max(0) as u64;
            let mut rows = 0u64;
            while let Some(chunk) = export.next_chunk(&services).await? {
                rows += chunk.matches("\r\n").count() as u64;
                out.write_all(chunk.as_bytes())?;
                let bar = progress::bar(rows.saturating_sub(1), total);
                eprint!(
                    "\rexporting {bar} {}/{total}",
                    rows.saturating_sub(1).min(total)
                );
            }
            out.flush()?;
            eprintln!("\nexported {total} contacts as {}", export.id);
            Ok(())
        }
    }
}

/// Screens `file` (progress in bytes), then commits it (progress in chunks).
async fn import(
    services: &Arc<Services>,
    tenant_id: &str,
    file: &PathBuf,
    options: ImportOptions,
) -> anyhow::Result<()> {
    let mut input =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let size = input.metadata().map(|m| m.len()).unwrap_or(0);
    let mut screening = Screening::start(services, tenant_id, &Actor::cli(), options)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut bar = progress::Bytes::new("screening", size);
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = input.read(&mut buf).context("cannot read the file")?;
        if n == 0 {
            break;
        }
        bar.add(n as u64);
        if let Err(e) = screening.feed(&buf[..n]).await {
            bar.finish();
            screening.fail(&e).await;
            bail!("{e}");
        }
    }
    bar.finish();
    let import = screening
        .finish()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if import.state == State::Held.as_str() {
        for r in &import.detail.reasons {
            eprintln!(
                "  {}: {} rows, {:.1} % (threshold {:.1} %)",
                r.signal,
                r.count,
                r.share * 100.0,
                r.threshold * 100.0
            );
        }
        bail!(
            "the watchdog held import {} ({} rows); approve it with `postwerk imports approve {}` or discard it",
            import.id,
            import.detail.counts.rows,
            import.id
        );
    }
    let done = commit(services, tenant_id, &import).await?;
    eprintln!("import {}: {}", done.id, done.detail.counts);
    for r in done.detail.rejects.iter().take(20) {
        eprintln!("  line {}: {}", r.row, r.reason);
    }
    match done.state.as_str() {
        "done" => Ok(()),
        state => bail!(
            "import {} ended {state}: {}",
            done.id,
            done.detail.error.as_deref().unwrap_or("")
        ),
    }
}

/// Commits a running import, drawing its progress, and returns it as it ended.
async fn commit(
    services: &Arc<Services>,
    tenant_id: &str,
    import: &Import,
) -> anyhow::Result<Import> {
    let task = tokio::spawn(imports::run(
        services.clone(),
        tenant_id.to_string(),
        import.id.clone(),
    ));
    while !task.is_finished() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = imports::get(services, tenant_id, &import.id)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let d = &now.detail;
        eprint!(
            "\rimporting {} {}/{} chunks",
            progress::bar(d.chunks_done, d.chunks),
            d.chunks_done,
            d.chunks
        );
    }
    eprintln!();
    task.await.context("the import task failed")?;
    imports::get(services, tenant_id, &import.id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Runs `postwerk lists …`.
pub async fn lists(cmd: ListsCommand, config: postwerk_core::config::Config) -> anyhow::Result<()> {
    let services = open(config).await?;
    match cmd {
        ListsCommand::List { json, tenant } => {
            let tenant = tenant_for(&services, &tenant).await?;
            let mut listing = Listing::new(&["id", "name", "members"]);
            for l in services.store.lists(&tenant.id).await? {
                listing.row([json!(l.list.id), json!(l.list.name), json!(l.members)]);
            }
            listing.print(json);
        }
        ListsCommand::Create {
            name,
            description,
            tenant,
        } => {
            let tenant = tenant_for(&services, &tenant).await?;
            let list = lists::create(&services, &tenant.id, &name, description).await?;
            println!("{}", list.list.id);
        }
        ListsCommand::Delete { list, tenant } => {
            let tenant = tenant_for(&services, &tenant).await?;
            lists::delete(&services, &tenant.id, &list).await?;
            eprintln!("deleted list {list}");
        }
    }
    Ok(())
}

/// Runs `postwerk imports …`.
pub async fn imports(
    cmd: ImportsCommand,
    config: postwerk_core::config::Config,
) -> anyhow::Result<()> {
    let services = open(config).await?;
    let actor = Actor::cli();
    let shown = |i: &Import| {
        serde_json::to_string_pretty(&json!({
            "id": i.id, "state": i.state, "counts": i.detail.counts,
            "screened": i.detail.screened, "reasons": i.detail.reasons,
            "rejects": i.detail.rejects, "error": i.detail.error,
        }))
        .expect("JSON serialises")
    };
    let err = |e: imports::ImportError| anyhow::anyhow!("{e}");
    match cmd {
        ImportsCommand::List { json, tenant } => {
            let tenant = tenant_for(&services, &tenant).await?;
            let mut listing =
                Listing::new(&["id", "state", "rows", "imported", "rejected", "created"]);
            for i in imports::list(&services, &tenant.id, None, 200)
                .await
                .map_err(err)?
            {
                let c = &i.detail.counts;
                listing.row([
                    json!(i.id),
                    json!(i.state),
                    json!(c.rows),
                    json!(c.imported),
                    json!(c.rejected),
                    json!(postwerk_mta::view::time(i.created_at)),
                ]);
            }
            listing.print(json);
        }
        ImportsCommand::Show(a) => {
            let tenant = tenant_for(&services, &a.tenant).await?;
            let i = imports::get(&services, &tenant.id, &a.id)
                .await
                .map_err(err)?;
            println!("{}", shown(&i));
        }
        ImportsCommand::Approve(a) => {
            let tenant = tenant_for(&services, &a.tenant).await?;
            let i = imports::approve(&services, &tenant.id, &a.id, &actor)
                .await
                .map_err(err)?;
            let done = commit(&services, &tenant.id, &i).await?;
            println!("{}", shown(&done));
            if done.state != State::Done.as_str() {
                bail!("import {} ended {}", done.id, done.state);
            }
        }
        ImportsCommand::Discard(a) => {
            let tenant = tenant_for(&services, &a.tenant).await?;
            let i = imports::discard(&services, &tenant.id, &a.id, &actor)
                .await
                .map_err(err)?;
            println!("{}", shown(&i));
        }
        ImportsCommand::Cancel(a) => {
            let tenant = tenant_for(&services, &a.tenant).await?;
            let i = imports::cancel(&services, &tenant.id, &a.id, &actor)
                .await
                .map_err(err)?;
            println!("{}", shown(&i));
        }
    }
    Ok(())
}
