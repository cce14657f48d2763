//! Contact exports as CSV: a header, then one row per contact the filter names, with
//! one canary row of the export's own among them (see [`super::canaries`]), so that
//! a copy that leaks gives itself away, and says which export it was.

use std::collections::BTreeSet;

use postwerk_core::csv::write_record;
use postwerk_core::id::new_id;
use postwerk_store::model::{CanaryRecord, ContactFilter};
use rand::Rng;

use super::canaries::{self, CanaryError};
use super::search::{self, MAX_PAGE};
use crate::contacts::{Contact, attribute_text};
use postwerk_services::audit::{self, Actor};
use postwerk_services::context::{ServiceError, Services};

/// A contact export under way: call [`Export::next_chunk`] until it returns `None`.
pub struct Export {
    /// `exp_…` (recoverable from its canary's address).
    pub id: String,
    /// Contacts the filter named when it started.
    pub total: i64,
    /// The attribute columns (every attribute name of the exported contacts).
    pub columns: Vec<String>,
    /// The export's canary, if a canary domain is configured.
    pub canary: Option<CanaryRecord>,
    /// How many contact rows precede the canary's (at least one when there are any:
    /// the canary copies the cells of the row before it, so it looks like the rest).
    canary_at: i64,
    /// The cells after the address of the last contact row written.
    last_cells: Vec<String>,
    filter: ContactFilter,
    written: i64,
    header_done: bool,
    finished: bool,
}

/// Starts an export of the contacts `filter` names for `actor` (audited with its id
/// and size); `label` says what was exported (a list's name), for the canary.
pub async fn start(
    services: &Services,
    actor: &Actor,
    mut filter: ContactFilter,
    label: Option<String>,
) -> Result<Export, ServiceError> {
    let tenant_id = filter.tenant_id.clone();
    let id = new_id("exp");
    let total = search::count(services, filter.clone()).await?;
    audit::record(
        services,
        actor,
        Some(&tenant_id),
        "contacts.export",
        Some(format!("{id} rows={total}")),
    )
    .await?;
    let mut names = BTreeSet::new();
    filter.limit = MAX_PAGE;
    let mut scan = filter.clone();
    loop {
        let page = search::page(services, scan.clone()).await?;
        names.extend(
            page.contacts
                .iter()
                .flat_map(|c| c.attributes.keys().cloned()),
        );
        match page.next {
            Some(next) => scan.after = Some(next),
            None => break,
        }
    }
    let canary = match canaries::create(services, &tenant_id, &format!("export:{id}"), label).await
    {
        Ok(c) => Some(c),
        Err(CanaryError::NotConfigured) => None,
        Err(CanaryError::Service(e)) => return Err(e),
    };
    Ok(Export {
        id,
        total,
        columns: names.into_iter().collect(),
        canary,
        canary_at: rand::thread_rng().gen_range(total.min(1)..=total.max(0)),
        last_cells: Vec::new(),
        filter,
        written: 0,
        header_done: false,
        finished: false,
    })
}

impl Export {
    /// The next part of the CSV (the header, then a page of rows); `None` at the end.
    pub async fn next_chunk(
        &mut self,
        services: &Services,
    ) -> Result<Option<String>, ServiceError> {
        let mut out = String::new();
        if !self.header_done {
            self.header_done = true;
            let mut header = vec!["email"];
            header.extend(self.columns.iter().map(String::as_str));
            header.extend(["lists", "created_at"]);
            write_record(&mut out, header);
            return Ok(Some(out));
        }
        if self.finished {
            return Ok(None);
        }
        let page = search::page(services, self.filter.clone()).await?;
        for contact in &page.contacts {
            self.canary_row(&mut out);
            self.row(&mut out, contact);
            self.written += 1;
        }
        self.canary_row(&mut out);
        match page.next {
            Some(next) => self.filter.after = Some(next),
            None => {
                self.finished = true;
                self.canary_row(&mut out);
            }
        }
        Ok(Some(out))
    }

    /// Writes the canary's row if its turn has come (once): its address, then the
    /// cells of the contact row before it (or, in an empty export, its list).
    fn canary_row(&mut self, out: &mut String) {
        if self.written < self.canary_at && !self.finished {
            return;
        }
        if let Some(canary) = self.canary.take() {
            let mut fields = vec![canary.address.clone()];
            if self.last_cells.is_empty() {
                fields.extend(self.columns.iter().map(|_| String::new()));
                fields.push(canary.label.clone().unwrap_or_default());
                fields.push(crate::time_text(canary.created_at));
            } else {
                fields.extend(self.last_cells.iter().cloned());
            }
            write_record(out, fields.iter().map(String::as_str));
        }
    }

    fn row(&mut self, out: &mut String, c: &Contact) {
        let mut cells: Vec<String> = self
            .columns
            .iter()
            .map(|name| {
                c.attributes
                    .get(name)
                    .map(attribute_text)
                    .unwrap_or_default()
            })
            .collect();
        cells.push(c.lists.join(";"));
        cells.push(crate::time_text(c.created_at));
        let fields = std::iter::once(c.email.as_str()).chain(cells.iter().map(String::as_str));
        write_record(out, fields);
        self.last_cells = cells;
    }
}
