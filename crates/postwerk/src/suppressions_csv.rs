//! `postwerk suppressions export|import`: the suppression list as CSV on the store
//! directly (see [`postwerk_api::suppressions_csv`], shared with the API), audited as
//! the API's are.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{Context, bail};
use postwerk_api::suppressions_csv::{self, Export, Import};
use postwerk_services::context::Services;
use postwerk_store::model::TenantRecord;

use crate::cli::audited;
use crate::progress::Bytes;

/// Bytes of the file read per chunk.
const CHUNK: usize = 64 * 1024;

/// Fails unless `stream` (if given) is one of the tenant's streams.
async fn check_stream(
    services: &Services,
    tenant: &TenantRecord,
    stream: Option<&str>,
) -> anyhow::Result<()> {
    let Some(name) = stream else {
        return Ok(());
    };
    if services
        .streams
        .find(&services.store, &tenant.id, name)
        .await?
        .is_none()
    {
        bail!(
            "--stream: no stream '{name}' in tenant {} (see `postwerk streams list`)",
            tenant.name
        );
    }
    Ok(())
}

/// Writes the tenant's list (of `stream` only, if given) as CSV to standard output, a
/// page at a time; erased addresses are left out and counted on standard error.
pub async fn export(
    services: &Services,
    tenant: &TenantRecord,
    stream: Option<&str>,
) -> anyhow::Result<()> {
    check_stream(services, tenant, stream).await?;
    let count = suppressions_csv::count(services, &tenant.id, stream).await?;
    // The operator takes people's addresses out: on the audit chain first.
    let target = count.audit_target(stream);
    audited(services, Some(&tenant.id), "suppression.export", target).await?;
    let mut export = Export::new(&tenant.id, stream, &count);
    let mut out = std::io::stdout().lock();
    let mut written = Ok(());
    while let Some(text) = export.next_chunk(services).await? {
        written = out.write_all(text.as_bytes());
        if written.is_err() {
            break;
        }
    }
    match written.and_then(|()| out.flush()) {
        // The reader stopped early (`| head`): not a failure of the export.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        written => written.context("cannot write to standard output")?,
    }
    eprintln!(
        "exported {} entries; {} erased addresses not exported",
        count.entries - export.unreadable.min(count.entries),
        count.skipped_erased + export.unreadable
    );
    Ok(())
}

/// Imports `file` into the tenant's list (rows without a stream into `stream`, if
/// given), with a progress bar on standard error when that is a terminal; prints the
/// counts, and the first rejected rows on standard error.
pub async fn import(
    services: &Services,
    tenant: &TenantRecord,
    file: &Path,
    stream: Option<&str>,
) -> anyhow::Result<()> {
    check_stream(services, tenant, stream).await?;
    let shown = file.display();
    let mut input = std::fs::File::open(file).with_context(|| format!("cannot read {shown}"))?;
    let total = input.metadata().map(|m| m.len()).unwrap_or(0);
    let mut progress = std::io::stderr()
        .is_terminal()
        .then(|| Bytes::new("importing", total));
    let mut import = Import::new(services, &tenant.id, stream);
    let mut buf = vec![0; CHUNK];
    let mut fed = Ok(());
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                fed = Err(anyhow::Error::new(e).context(format!("cannot read {shown}")));
                break;
            }
        };
        if let Some(p) = &mut progress {
            p.add(n as u64);
        }
        if let Err(e) = import.feed(&buf[..n]).await {
            fed = Err(anyhow::Error::new(e).context(format!("{shown}")));
            break;
        }
    }
    if let Some(p) = progress {
        p.finish();
    }
    fed?;
    let counts = import.finish().await.with_context(|| format!("{shown}"))?;
    let target = format!(
        "{} imported, {} already listed, {} rejected",
        counts.imported, counts.already, counts.rejected
    );
    audited(services, Some(&tenant.id), "suppression.import", target).await?;
    for e in &counts.errors {
        eprintln!("row {}: {}", e.row, e.reason);
    }
    if counts.rejected > counts.errors.len() as u64 {
        eprintln!(
            "… and {} more rejected rows",
            counts.rejected - counts.errors.len() as u64
        );
    }
    println!(
        "imported {}, already listed {}, rejected {}",
        counts.imported, counts.already, counts.rejected
    );
    Ok(())
}
