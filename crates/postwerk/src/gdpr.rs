//! `postwerk gdpr …`: data-subject requests from the command line.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use postwerk_core::address::Address;
use postwerk_core::config::Config;
use postwerk_core::model::DsarKind;
use postwerk_privacy::requests;
use postwerk_services::audit;
use postwerk_services::context::DEFAULT_TENANT;
use postwerk_store::vault::write_private_file;

use crate::cli::open;

/// `postwerk gdpr …`.
#[derive(Subcommand)]
pub enum GdprCommand {
    /// Export everything held on a person (access, portability) to a JSON file
    /// (mode 0600), with progress on stderr; audited and registered as a request.
    Export {
        /// The person's address.
        email: String,
        /// Where to write the document.
        #[arg(long)]
        out: PathBuf,
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
}

/// Runs `postwerk gdpr …`.
pub async fn run(cmd: GdprCommand, config: Config) -> anyhow::Result<()> {
    let GdprCommand::Export { email, out, tenant } = cmd;
    let address = Address::parse(&email).with_context(|| format!("`{email}`"))?;
    let services = open(config).await?;
    let tenant = crate::cli::tenant_for(&services, &tenant).await?;
    let keys = services.tenant_keys(&tenant.id).await?;
    let target = audit::subject(&keys, &address);
    crate::cli::audited(&services, Some(&tenant.id), "subject.export", target).await?;
    let mut stderr = std::io::stderr();
    let document =
        postwerk_api::export::subject_document(&services, &tenant.id, &address, |done, total| {
            let bar = crate::progress::bar(done as u64, total as u64);
            let _ = write!(stderr, "\rexporting messages {bar} {done}/{total}");
        })
        .await?;
    eprintln!();
    let Some(document) = document else {
        bail!("nothing is held on {email} in tenant {}", tenant.name);
    };
    let text = serde_json::to_vec_pretty(&document).expect("JSON serialises");
    write_private_file(&out, &text).with_context(|| format!("cannot write {}", out.display()))?;
    requests::register(
        &services,
        &tenant.id,
        DsarKind::Access,
        Some(&address),
        None,
        Some("cli".into()),
        true,
    )
    .await?;
    eprintln!("wrote {} ({} bytes)", out.display(), text.len());
    Ok(())
}
