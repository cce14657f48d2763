//! The store's audience area: contact lists and their members, segments, the contact
//! search, imports and canary addresses. Every operation is written once for both
//! backends (the filters are built at run time, see [`contact_filter_sql`]).

use crate::StoreResult;
use crate::model::*;
use crate::privacy::CONTACT_COLS;
use crate::row::Columns;
use crate::run::{Arg, FromRow, Step, multi_row};
use crate::sql::Sql;

/// The columns a [`ListRecord`] is read from.
const LIST_COLS: &str = "id, tenant_id, name, description, created_at, updated_at";

impl FromRow for ListSummary {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(ListSummary {
            list: ListRecord {
                id: r.get("id")?,
                tenant_id: r.get("tenant_id")?,
                name: r.get("name")?,
                description: r.get("description")?,
                created_at: r.get("created_at")?,
                updated_at: r.get("updated_at")?,
            },
            members: r.get("members")?,
        })
    }
}

/// The columns a [`SegmentRecord`] is read from.
const SEGMENT_COLS: &str = "id, tenant_id, name, filter_enc, created_at, updated_at";

impl FromRow for SegmentRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(SegmentRecord {
            id: r.get("id")?,
            tenant_id: r.get("tenant_id")?,
            name: r.get("name")?,
            filter_enc: r.get("filter_enc")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// The columns an [`ImportRecord`] is read from.
const IMPORT_COLS: &str = "id, tenant_id, state, detail, created_at, updated_at";

impl FromRow for ImportRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(ImportRecord {
            id: r.get("id")?,
            tenant_id: r.get("tenant_id")?,
            state: r.get("state")?,
            detail: r.get("detail")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// The columns a [`CanaryRecord`] is read from.
const CANARY_COLS: &str = "address, tenant_id, origin, label, created_at, triggered_at";

impl FromRow for CanaryRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(CanaryRecord {
            address: r.get("address")?,
            tenant_id: r.get("tenant_id")?,
            origin: r.get("origin")?,
            label: r.get("label")?,
            created_at: r.get("created_at")?,
            triggered_at: r.get("triggered_at")?,
        })
    }
}

/// A count ([`COUNT_CONTACTS`]-like statements' one column `n`).
struct Count(i64);

impl FromRow for Count {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(Count(r.get("n")?))
    }
}

/// The select list of a list with its member count.
fn list_select() -> String {
    format!(
        "SELECT {LIST_COLS}, (SELECT count(*) FROM list_members m \
         WHERE m.tenant_id = lists.tenant_id AND m.list_id = lists.id) AS members FROM lists"
    )
}

sql! {
    /// A new list (`$1`..`$6` in [`LIST_COLS`] order).
    INSERT_LIST = "INSERT INTO lists ({LIST_COLS}) VALUES ($1, $2, $3, $4, $5, $6)";
    /// Tenant `$1`'s lists with their member counts, by name.
    LISTS = "{} WHERE tenant_id = $1 ORDER BY name", list_select();
    /// Tenant `$1`'s list whose id or name is `$2`, with its member count.
    FIND_LIST = "{} WHERE tenant_id = $1 AND (id = $2 OR name = $2)", list_select();
    /// Tenant `$1`'s list `$2` takes name `$3`, description `$4` and change time `$5`.
    UPDATE_LIST = "UPDATE lists SET name = $3, description = $4, updated_at = $5 \
         WHERE tenant_id = $1 AND id = $2";
    /// Tenant `$1`'s list `$2` goes.
    DELETE_LIST = "DELETE FROM lists WHERE tenant_id = $1 AND id = $2";
    /// The members of tenant `$1`'s list `$2` go.
    DELETE_LIST_MEMBERS = "DELETE FROM list_members WHERE tenant_id = $1 AND list_id = $2";
    /// Tenant `$1`'s contact `$3` joins list `$2` at `$4` (if a contact, and not already).
    ADD_MEMBER = "INSERT INTO list_members (tenant_id, list_id, rcpt_hash, added_at) \
         SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM contacts \
         WHERE tenant_id = $1 AND rcpt_hash = $3 AND deleted_at IS NULL) \
         ON CONFLICT (tenant_id, list_id, rcpt_hash) DO NOTHING";
    /// Tenant `$1`'s person `$3` leaves list `$2`.
    REMOVE_MEMBER = "DELETE FROM list_members WHERE tenant_id = $1 AND list_id = $2 AND rcpt_hash = $3";
    /// Tenant `$1`'s person `$2` leaves every list.
    REMOVE_FROM_ALL_LISTS = "DELETE FROM list_members WHERE tenant_id = $1 AND rcpt_hash = $2";
    /// The lists tenant `$1`'s person `$2` is on, with their member counts, by name.
    SUBJECT_LISTS = "{} WHERE tenant_id = $1 AND id IN (SELECT list_id FROM list_members \
         WHERE tenant_id = $1 AND rcpt_hash = $2) ORDER BY name", list_select();
    /// A new segment (`$1`..`$6` in [`SEGMENT_COLS`] order).
    INSERT_SEGMENT = "INSERT INTO segments ({SEGMENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6)";
    /// Tenant `$1`'s segments, by name.
    SEGMENTS = "SELECT {SEGMENT_COLS} FROM segments WHERE tenant_id = $1 ORDER BY name";
    /// Tenant `$1`'s segment whose id or name is `$2`.
    FIND_SEGMENT = "SELECT {SEGMENT_COLS} FROM segments WHERE tenant_id = $1 AND (id = $2 OR name = $2)";
    /// Tenant `$1`'s segment `$2` takes name `$3`, filter `$4` and change time `$5`.
    UPDATE_SEGMENT = "UPDATE segments SET name = $3, filter_enc = $4, updated_at = $5 \
         WHERE tenant_id = $1 AND id = $2";
    /// Tenant `$1`'s segment `$2` goes.
    DELETE_SEGMENT = "DELETE FROM segments WHERE tenant_id = $1 AND id = $2";
    /// A new import (`$1`..`$6` in [`IMPORT_COLS`] order).
    INSERT_IMPORT = "INSERT INTO imports ({IMPORT_COLS}) VALUES ($1, $2, $3, $4, $5, $6)";
    /// Tenant `$1`'s import `$2`.
    GET_IMPORT = "SELECT {IMPORT_COLS} FROM imports WHERE tenant_id = $1 AND id = $2";
    /// Tenant `$1`'s imports, newest first, before id `$2` (`''`: from the newest), at
    /// most `$3`.
    LIST_IMPORTS = "SELECT {IMPORT_COLS} FROM imports WHERE tenant_id = $1 \
         AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3";
    /// Every tenant's imports in state `$1`, oldest first.
    IMPORTS_IN_STATE = "SELECT {IMPORT_COLS} FROM imports WHERE state = $1 ORDER BY id";
    /// Import `$1` takes state `$2`, detail `$3` and change time `$4` if its state is
    /// still one of `$5` (a comma-separated list).
    UPDATE_IMPORT = "UPDATE imports SET state = $2, detail = $3, updated_at = $4 \
         WHERE id = $1 AND ',' || $5 || ',' LIKE '%,' || state || ',%'";
    /// A canary address (`$1`..`$6` in [`CANARY_COLS`] order).
    INSERT_CANARY = "INSERT INTO canaries ({CANARY_COLS}) VALUES ($1, $2, $3, $4, $5, $6)";
    /// Tenant `$1`'s canaries handed out as `$2` (`registered` or an export's
    /// origin), newest first.
    CANARIES = "SELECT {CANARY_COLS} FROM canaries WHERE tenant_id = $1 \
         AND ($2 = '' OR origin = $2) ORDER BY created_at DESC, address";
    /// The canary of address `$1`, whoever's it is.
    FIND_CANARY = "SELECT {CANARY_COLS} FROM canaries WHERE address = $1";
    /// Canary `$1` was first triggered at `$2` (a later trigger keeps the first time).
    TRIGGER_CANARY = "UPDATE canaries SET triggered_at = coalesce(triggered_at, $2) WHERE address = $1";
    /// A tenant event (`$1` tenant, `$2` type, `$3` time, `$4` sealed detail): about no
    /// message, recipient or stream.
    ADD_TENANT_EVENT = "INSERT INTO events (tenant_id, message_id, recipient_id, rcpt_hash, type, at, \
         detail_enc, stream) VALUES ($1, '', '', $5, $2, $3, $4, NULL)";
    /// Tenant `$1`'s registered canary `$2` goes.
    DELETE_CANARY = "DELETE FROM canaries WHERE tenant_id = $1 AND address = $2";
}

/// Takes the lock that orders event inserts by commit: PostgreSQL's advisory lock (see
/// `postgres::EVENTS_LOCK`); SQLite's single writer needs none (a statement that does
/// nothing).
static LOCK_EVENTS: Sql = Sql::per_dialect(
    || {
        format!(
            "SELECT pg_advisory_xact_lock({})",
            crate::postgres::EVENTS_LOCK
        )
    },
    || "SELECT 1 WHERE 0".into(),
);

/// The statement selecting `what` from the contacts `f` names, and its arguments:
/// `f`'s conditions become `AND` clauses numbered from `$2` (`$1`: the tenant); with
/// `page`, ordered by blind index after the cursor, at most `f.limit`.
pub(crate) fn contact_filter_sql(f: &ContactFilter, what: &str, page: bool) -> (String, Vec<Arg>) {
    let mut args: Vec<Arg> = vec![f.tenant_id.as_str().into()];
    let next = |arg: Arg, args: &mut Vec<Arg>| {
        args.push(arg);
        format!("${}", args.len())
    };
    let mut sql = format!("SELECT {what} FROM contacts c");
    for list in &f.lists {
        let p = next(list.as_str().into(), &mut args);
        sql.push_str(&format!(
            " JOIN list_members m{n} ON m{n}.tenant_id = c.tenant_id \
             AND m{n}.rcpt_hash = c.rcpt_hash AND m{n}.list_id = {p}",
            n = args.len()
        ));
    }
    sql.push_str(" WHERE c.tenant_id = $1 AND c.deleted_at IS NULL");
    let mut clause = |text: String| {
        sql.push_str(" AND ");
        sql.push_str(&text);
    };
    if let Some(any) = &f.any_list {
        let params: Vec<String> = any
            .iter()
            .map(|l| next(l.as_str().into(), &mut args))
            .collect();
        clause(match params.is_empty() {
            true => "1 = 0".into(),
            false => format!(
                "EXISTS (SELECT 1 FROM list_members ma WHERE ma.tenant_id = c.tenant_id \
                 AND ma.rcpt_hash = c.rcpt_hash AND ma.list_id IN ({}))",
                params.join(", ")
            ),
        });
    }
    if let Some(h) = &f.rcpt_hash {
        clause(format!(
            "c.rcpt_hash = {}",
            next(h.clone().into(), &mut args)
        ));
    }
    for tag in &f.attr_tags {
        clause(format!(
            "c.attr_tags LIKE {}",
            next(format!("%{tag}%").into(), &mut args)
        ));
    }
    let times = [
        (f.created_after, "c.created_at >="),
        (f.created_before, "c.created_at <"),
        (f.updated_after, "c.updated_at >="),
        (f.updated_before, "c.updated_at <"),
    ];
    for (at, cmp) in times {
        if let Some(at) = at {
            clause(format!("{cmp} {}", next(at.into(), &mut args)));
        }
    }
    for c in &f.consent {
        let purpose = next(c.purpose.as_str().into(), &mut args);
        let records = format!(
            "FROM consents k WHERE k.tenant_id = c.tenant_id AND k.rcpt_hash = c.rcpt_hash \
             AND k.purpose = {purpose}"
        );
        clause(match c.status {
            None => format!("NOT EXISTS (SELECT 1 {records})"),
            Some(status) => format!(
                "EXISTS (SELECT 1 {records} AND k.status = {} AND NOT EXISTS (SELECT 1 \
                 FROM consents k2 WHERE k2.tenant_id = k.tenant_id AND k2.rcpt_hash = k.rcpt_hash \
                 AND k2.purpose = k.purpose AND k2.seq > k.seq))",
                next(status.as_str().into(), &mut args)
            ),
        });
    }
    let events = "FROM events e WHERE e.tenant_id = c.tenant_id AND e.rcpt_hash = c.rcpt_hash";
    if let Some(since) = f.engaged_since {
        let p = next(since.into(), &mut args);
        clause(format!(
            "EXISTS (SELECT 1 {events} AND e.type IN ('opened', 'clicked') AND e.at >= {p})"
        ));
    }
    if let Some(since) = f.clicked_since {
        let p = next(since.into(), &mut args);
        clause(format!(
            "EXISTS (SELECT 1 {events} AND e.type = 'clicked' AND e.at >= {p})"
        ));
    }
    if f.never_bounced {
        clause(format!(
            "NOT EXISTS (SELECT 1 {events} AND e.type = 'bounced')"
        ));
    }
    if page {
        if let Some(after) = &f.after {
            clause(format!(
                "c.rcpt_hash > {}",
                next(after.clone().into(), &mut args)
            ));
        }
        let limit = next(f.limit.into(), &mut args);
        sql.push_str(&format!(" ORDER BY c.rcpt_hash LIMIT {limit}"));
    }
    (sql, args)
}

/// `select` (with tenant `$1`) `AND column IN` the blind indexes `hashes` (`$2`..), and
/// its arguments.
fn among_sql(
    select: &str,
    column: &str,
    tenant_id: &str,
    hashes: Vec<Vec<u8>>,
) -> (String, Vec<Arg>) {
    let params: Vec<String> = (2..hashes.len() + 2).map(|i| format!("${i}")).collect();
    let mut args = args![tenant_id];
    args.extend(hashes.into_iter().map(Arg::from));
    (
        format!("{select} AND {column} IN ({})", params.join(", ")),
        args,
    )
}

/// A list membership by blind index and list name ([`AudienceStore::memberships_among`]).
struct Membership(Vec<u8>, String);

impl FromRow for Membership {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(Membership(r.get("rcpt_hash")?, r.get("name")?))
    }
}

/// Rows of one multi-row insert of an import batch (8 parameters a contact: 800).
const ROWS_PER_INSERT: usize = 100;

/// The contact upsert of `rows` rows, in [`CONTACT_COLS`] order (an import batch
/// never names a person twice).
fn upsert_contacts_sql(rows: usize) -> String {
    multi_row(
        &format!("INSERT INTO contacts ({CONTACT_COLS}) VALUES"),
        8,
        rows,
        "ON CONFLICT (tenant_id, rcpt_hash) DO UPDATE SET data_enc = excluded.data_enc, \
         updated_at = excluded.updated_at, attr_tags = excluded.attr_tags, \
         deleted_at = excluded.deleted_at",
    )
}

/// The list memberships of `rows` rows (tenant, list, blind index, time) of people
/// who are contacts (an import writes their contact first).
fn add_members_sql(rows: usize) -> String {
    multi_row(
        "INSERT INTO list_members (tenant_id, list_id, rcpt_hash, added_at) VALUES",
        4,
        rows,
        "ON CONFLICT (tenant_id, list_id, rcpt_hash) DO NOTHING",
    )
}

/// The consent records of `rows` rows.
fn add_consents_sql(rows: usize) -> String {
    multi_row(
        "INSERT INTO consents (tenant_id, rcpt_hash, purpose, status, at, record_enc) VALUES",
        6,
        rows,
        "",
    )
}

/// One multi-row step per [`ROWS_PER_INSERT`] rows of `rows`: the statement from
/// `sql` (given the row count), each row's arguments from `args`.
fn multi_steps<R>(
    rows: Vec<R>,
    sql: fn(usize) -> String,
    args: impl Fn(R) -> Vec<Arg>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Arg>> = rows.by_ref().take(ROWS_PER_INSERT).map(&args).collect();
        let text = sql(chunk.len());
        steps.push(Step::built(text, chunk.into_iter().flatten().collect()));
    }
    steps
}

/// The writes of an import batch: the import's progress (the guard: it must still be
/// `running`), then the people's contact rows, list memberships and consent records,
/// a hundred rows a statement.
fn import_steps(batch: ImportBatch) -> (Step, Vec<Step>) {
    let tenant = batch.tenant_id;
    let at = batch.progress.updated_at;
    let mut contacts = Vec::new();
    let mut members: Vec<(String, Vec<u8>)> = batch.extra_members;
    let mut consents = Vec::new();
    for person in batch.contacts {
        contacts.extend(person.contact);
        consents.extend(person.consent);
        if let Some(list) = &batch.list_id {
            members.push((list.clone(), person.rcpt_hash));
        }
    }
    // In index order: each statement then walks its B-trees forwards, page by page.
    contacts.sort_unstable_by(|a, b| a.rcpt_hash.cmp(&b.rcpt_hash));
    members.sort_unstable();
    consents.sort_unstable_by(|a, b| a.rcpt_hash.cmp(&b.rcpt_hash));
    let mut steps = multi_steps(contacts, upsert_contacts_sql, |c| {
        args![
            c.tenant_id,
            c.rcpt_hash,
            c.data_enc,
            c.restricted_at,
            c.created_at,
            c.updated_at,
            c.attr_tags,
            c.deleted_at,
        ]
    });
    steps.extend(multi_steps(members, add_members_sql, |(list, hash)| {
        args![&tenant, list, hash, at]
    }));
    steps.extend(multi_steps(consents, add_consents_sql, |k| {
        args![
            k.tenant_id,
            k.rcpt_hash,
            k.purpose,
            k.status.as_str(),
            k.at,
            k.record_enc
        ]
    }));
    let p = batch.progress;
    let guard = Step::new(
        &UPDATE_IMPORT,
        args![p.id, p.state, p.detail, p.updated_at, "running"],
    );
    (guard, steps)
}

store_area! {
    /// Contact lists and members, segments, the contact search, imports and canaries.
    AudienceStore {}
    shared {
        /// Creates a list; `Conflict("list")` if the tenant has one of that name.
        fn create_list(&self, l: ListRecord) -> StoreResult<()> {
            let args = args![l.id, l.tenant_id, l.name, l.description, l.created_at, l.updated_at];
            self.write("create_list", Some("list"), &INSERT_LIST, args).await.map(drop)
        }
        /// A tenant's lists with their member counts, by name.
        fn lists(&self, tenant_id: &str) -> StoreResult<Vec<ListSummary>> {
            self.rows("lists", &LISTS, args![tenant_id]).await
        }
        /// A tenant's list named by id or name, with its member count.
        fn find_list(&self, tenant_id: &str, key: &str) -> StoreResult<Option<ListSummary>> {
            self.row("find_list", &FIND_LIST, args![tenant_id, key]).await
        }
        /// Renames or re-describes a list; `false` if there is no such list,
        /// `Conflict("list")` if the name is taken.
        fn update_list(&self, l: ListRecord) -> StoreResult<bool> {
            let args = args![l.tenant_id, l.id, l.name, l.description, l.updated_at];
            Ok(self.write("update_list", Some("list"), &UPDATE_LIST, args).await? > 0)
        }
        /// Deletes a list and its memberships (the contacts stay); `false` if there
        /// was no such list.
        fn delete_list(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
            let steps = vec![
                Step::new(&DELETE_LIST_MEMBERS, args![tenant_id, id]),
                Step::new(&DELETE_LIST, args![tenant_id, id]),
            ];
            let counts = self.write_all("delete_list", None, steps).await?;
            Ok(counts.last().is_some_and(|&n| n > 0))
        }
        /// Adds contacts (by blind index) to a list at `at`; people who are not the
        /// tenant's contacts, or are members already, are left out. Returns how many
        /// joined.
        fn add_members(
            &self,
            tenant_id: &str,
            list_id: &str,
            hashes: Vec<Vec<u8>>,
            at: i64,
        ) -> StoreResult<u64> {
            let steps = hashes
                .into_iter()
                .map(|h| Step::new(&ADD_MEMBER, args![tenant_id, list_id, h, at]))
                .collect();
            Ok(self.write_all("add_members", None, steps).await?.iter().sum())
        }
        /// Removes people (by blind index) from a list; returns how many left.
        fn remove_members(
            &self,
            tenant_id: &str,
            list_id: &str,
            hashes: Vec<Vec<u8>>,
        ) -> StoreResult<u64> {
            let steps = hashes
                .into_iter()
                .map(|h| Step::new(&REMOVE_MEMBER, args![tenant_id, list_id, h]))
                .collect();
            Ok(self.write_all("remove_members", None, steps).await?.iter().sum())
        }
        /// Makes a contact's memberships exactly `list_ids` (joined at `at`).
        fn set_memberships(
            &self,
            tenant_id: &str,
            rcpt_hash: &[u8],
            list_ids: Vec<String>,
            at: i64,
        ) -> StoreResult<()> {
            let mut steps = vec![Step::new(&REMOVE_FROM_ALL_LISTS, args![tenant_id, rcpt_hash])];
            steps.extend(
                list_ids
                    .into_iter()
                    .map(|l| Step::new(&ADD_MEMBER, args![tenant_id, l, rcpt_hash, at])),
            );
            self.write_all("set_memberships", None, steps).await.map(drop)
        }
        /// The lists a person is on, by name.
        fn subject_lists(
            &self,
            tenant_id: &str,
            rcpt_hash: &[u8],
        ) -> StoreResult<Vec<ListSummary>> {
            self.rows("subject_lists", &SUBJECT_LISTS, args![tenant_id, rcpt_hash]).await
        }
        /// A page of the contacts `filter` names, by blind index.
        fn find_contacts(&self, filter: ContactFilter) -> StoreResult<Vec<ContactRecord>> {
            let what = CONTACT_COLS
                .split(", ")
                .map(|c| format!("c.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            let (sql, args) = contact_filter_sql(&filter, &what, true);
            self.rows_of("find_contacts", sql, args).await
        }
        /// How many contacts `filter` names (its cursor and limit ignored).
        fn count_contacts(&self, filter: ContactFilter) -> StoreResult<i64> {
            let (sql, args) = contact_filter_sql(&filter, "count(*) AS n", false);
            let rows: Vec<Count> = self.rows_of("count_contacts", sql, args).await?;
            Ok(rows.first().map_or(0, |c| c.0))
        }
        /// The tenant's contacts among `hashes` (deleted profiles included).
        fn contacts_among(
            &self,
            tenant_id: &str,
            hashes: Vec<Vec<u8>>,
        ) -> StoreResult<Vec<ContactRecord>> {
            if hashes.is_empty() {
                return Ok(Vec::new());
            }
            let select = format!("SELECT {CONTACT_COLS} FROM contacts WHERE tenant_id = $1");
            let (sql, args) = among_sql(&select, "rcpt_hash", tenant_id, hashes);
            self.rows_of("contacts_among", sql, args).await
        }
        /// The names of the lists each of `hashes` is on, as (blind index, list name),
        /// by name: a page of contacts' lists in one read.
        fn memberships_among(
            &self,
            tenant_id: &str,
            hashes: Vec<Vec<u8>>,
        ) -> StoreResult<Vec<(Vec<u8>, String)>> {
            if hashes.is_empty() {
                return Ok(Vec::new());
            }
            let select = "SELECT m.rcpt_hash AS rcpt_hash, l.name AS name FROM list_members m \
                 JOIN lists l ON l.tenant_id = m.tenant_id AND l.id = m.list_id \
                 WHERE m.tenant_id = $1";
            let (sql, args) = among_sql(select, "m.rcpt_hash", tenant_id, hashes);
            let sql = sql + " ORDER BY l.name";
            let rows: Vec<Membership> = self.rows_of("memberships_among", sql, args).await?;
            Ok(rows.into_iter().map(|Membership(h, n)| (h, n)).collect())
        }
        /// Writes an import batch (contacts, memberships, consent records) and the
        /// import's progress in one transaction, provided the import is still
        /// `running`: `false` (and nothing written) if it was cancelled meanwhile.
        fn import_contacts(&self, batch: ImportBatch) -> StoreResult<bool> {
            let (guard, steps) = import_steps(batch);
            self.write_guarded("import_contacts", guard, steps).await
        }
        /// Saves a segment; `Conflict("segment")` if the name is taken.
        fn create_segment(&self, s: SegmentRecord) -> StoreResult<()> {
            let args = args![s.id, s.tenant_id, s.name, s.filter_enc, s.created_at, s.updated_at];
            self.write("create_segment", Some("segment"), &INSERT_SEGMENT, args).await.map(drop)
        }
        /// A tenant's segments, by name.
        fn segments(&self, tenant_id: &str) -> StoreResult<Vec<SegmentRecord>> {
            self.rows("segments", &SEGMENTS, args![tenant_id]).await
        }
        /// A tenant's segment named by id or name.
        fn find_segment(&self, tenant_id: &str, key: &str) -> StoreResult<Option<SegmentRecord>> {
            self.row("find_segment", &FIND_SEGMENT, args![tenant_id, key]).await
        }
        /// Renames or re-filters a segment; `false` if there is no such segment.
        fn update_segment(&self, s: SegmentRecord) -> StoreResult<bool> {
            let args = args![s.tenant_id, s.id, s.name, s.filter_enc, s.updated_at];
            Ok(self.write("update_segment", Some("segment"), &UPDATE_SEGMENT, args).await? > 0)
        }
        /// Deletes a segment; `false` if there was none.
        fn delete_segment(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
            let args = args![tenant_id, id];
            Ok(self.write("delete_segment", None, &DELETE_SEGMENT, args).await? > 0)
        }
        /// Records a new import.
        fn create_import(&self, i: ImportRecord) -> StoreResult<()> {
            let args = args![i.id, i.tenant_id, i.state, i.detail, i.created_at, i.updated_at];
            self.write("create_import", None, &INSERT_IMPORT, args).await.map(drop)
        }
        /// A tenant's import.
        fn get_import(&self, tenant_id: &str, id: &str) -> StoreResult<Option<ImportRecord>> {
            self.row("get_import", &GET_IMPORT, args![tenant_id, id]).await
        }
        /// A tenant's imports, newest first, before id `before`, at most `limit`.
        fn list_imports(
            &self,
            tenant_id: &str,
            before: Option<String>,
            limit: usize,
        ) -> StoreResult<Vec<ImportRecord>> {
            let args = args![tenant_id, before.unwrap_or_default(), limit];
            self.rows("list_imports", &LIST_IMPORTS, args).await
        }
        /// Every tenant's imports in one state, oldest first (at start-up: those a
        /// stop interrupted).
        fn imports_in_state(&self, state: &str) -> StoreResult<Vec<ImportRecord>> {
            self.rows("imports_in_state", &IMPORTS_IN_STATE, args![state]).await
        }
        /// Moves an import to `next`'s state and detail if it is in one of `from`;
        /// `false` if it was not (someone else moved it first).
        fn update_import(&self, next: ImportRecord, from: &[&str]) -> StoreResult<bool> {
            let args = args![next.id, next.state, next.detail, next.updated_at, from.join(",")];
            Ok(self.write("update_import", None, &UPDATE_IMPORT, args).await? > 0)
        }
        /// Records a canary address; `Conflict("canary")` if it exists.
        fn add_canary(&self, c: CanaryRecord) -> StoreResult<()> {
            let args = args![c.address, c.tenant_id, c.origin, c.label, c.created_at, c.triggered_at];
            self.write("add_canary", Some("canary"), &INSERT_CANARY, args).await.map(drop)
        }
        /// A tenant's canaries of one origin (`None`: all), newest first.
        fn canaries(&self, tenant_id: &str, origin: Option<String>) -> StoreResult<Vec<CanaryRecord>> {
            let args = args![tenant_id, origin.unwrap_or_default()];
            self.rows("canaries", &CANARIES, args).await
        }
        /// The canary of an address (lower case), whoever's it is.
        fn find_canary(&self, address: &str) -> StoreResult<Option<CanaryRecord>> {
            self.row("find_canary", &FIND_CANARY, args![address]).await
        }
        /// Marks a canary triggered (the first time is kept).
        fn trigger_canary(&self, address: &str, at: i64) -> StoreResult<()> {
            self.write("trigger_canary", None, &TRIGGER_CANARY, args![address, at]).await.map(drop)
        }
        /// Records a tenant event (about no message, recipient or stream), which
        /// webhooks subscribed to its type receive.
        fn add_tenant_event(
            &self,
            tenant_id: &str,
            event: postwerk_core::model::EventType,
            at: i64,
            detail_enc: Vec<u8>,
        ) -> StoreResult<()> {
            let steps = vec![
                Step::new(&LOCK_EVENTS, args![]),
                Step::new(
                    &ADD_TENANT_EVENT,
                    args![tenant_id, event.as_str(), at, detail_enc, Vec::<u8>::new()],
                ),
            ];
            self.write_all("add_tenant_event", None, steps).await.map(drop)
        }
        /// Deletes a tenant's canary; `false` if there was none.
        fn delete_canary(&self, tenant_id: &str, address: &str) -> StoreResult<bool> {
            let args = args![tenant_id, address];
            Ok(self.write("delete_canary", None, &DELETE_CANARY, args).await? > 0)
        }
    }
}
