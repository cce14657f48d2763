//! The store's campaigns area: templates and their versions, and broadcasts. A change
//! to a template's parts adds a version and moves the template to it; versions are
//! never changed, so what was sent with one can be shown again. A broadcast's state
//! moves only from the states each change names, so two nodes (or a click and the
//! scheduler) cannot both move it; its expansion's cursor moves in the transaction
//! that queues the messages (see [`BROADCAST_PROGRESS`]). Written once for both
//! backends.

use crate::StoreResult;
use crate::model::*;
use crate::queue::EVENT_COLS;
use crate::row::Columns;
use crate::run::{Arg, FromRow, Step};
use postwerk_core::model::EventType;

impl FromRow for BroadcastRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(BroadcastRecord {
            id: r.get("id")?,
            tenant_id: r.get("tenant_id")?,
            name: r.get("name")?,
            state: r.get("state")?,
            spec_enc: r.get("spec_enc")?,
            send_at: r.get("send_at")?,
            cursor: r.get("cursor")?,
            counts: r.get("counts")?,
            runner: r.get("runner")?,
            runner_until: r.get("runner_until")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
            finished_at: r.get("finished_at")?,
        })
    }
}

impl FromRow for BroadcastTally {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(BroadcastTally {
            kind: r.get("kind")?,
            key: r.get("k")?,
            n: r.get("n")?,
            recipients: r.get("u")?,
        })
    }
}

/// The columns a [`BroadcastRecord`] is read from.
const BROADCAST_COLS: &str = "id, tenant_id, name, state, spec_enc, send_at, cursor, counts, \
     runner, runner_until, created_at, updated_at, finished_at";

/// A message id ([`BROADCAST_MESSAGES`]).
struct MessageId(String);

impl FromRow for MessageId {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(MessageId(r.get("id")?))
    }
}

impl FromRow for TemplateRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(TemplateRecord {
            id: r.get("id")?,
            tenant_id: r.get("tenant_id")?,
            name: r.get("name")?,
            version: r.get("version")?,
            current: r.get("current")?,
            content_enc: r.get("content_enc")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// A template with one version's parts: `v.version` is the version read.
const TEMPLATE_SELECT: &str = "SELECT t.id, t.tenant_id, t.name, v.version, t.version AS current, \
     v.content_enc, t.created_at, t.updated_at \
     FROM templates t JOIN template_versions v ON v.template_id = t.id AND v.tenant_id = t.tenant_id";

sql! {
    /// A new template (`$1` id, `$2` tenant, `$3` name, `$4` time) at version 1.
    INSERT_TEMPLATE = "INSERT INTO templates (id, tenant_id, name, version, created_at, updated_at) \
         VALUES ($1, $2, $3, 1, $4, $4)";
    /// Version `$3` of tenant `$1`'s template `$2`: parts `$4`, made at `$5`.
    INSERT_TEMPLATE_VERSION = "INSERT INTO template_versions \
         (tenant_id, template_id, version, content_enc, created_at) VALUES ($1, $2, $3, $4, $5)";
    /// Tenant `$1`'s templates at their current versions, by name.
    TEMPLATES = "{TEMPLATE_SELECT} AND v.version = t.version WHERE t.tenant_id = $1 ORDER BY t.name";
    /// Tenant `$1`'s template whose id or name is `$2`, at version `$3` (0: the current one).
    FIND_TEMPLATE = "{TEMPLATE_SELECT} AND v.version = CASE WHEN $3 = 0 THEN t.version ELSE $3 END \
         WHERE t.tenant_id = $1 AND (t.id = $2 OR t.name = $2)";
    /// Version `$3 + 1` of tenant `$1`'s template `$2`, parts `$4`, made at `$5`, if the
    /// template is at version `$3` (nothing if another change came first).
    INSERT_NEXT_VERSION = "INSERT INTO template_versions \
         (tenant_id, template_id, version, content_enc, created_at) \
         SELECT $1, $2, $3 + 1, $4, $5 WHERE EXISTS (SELECT 1 FROM templates \
         WHERE tenant_id = $1 AND id = $2 AND version = $3)";
    /// Tenant `$1`'s template `$2` moves from version `$3` to the next, at `$4`.
    BUMP_TEMPLATE = "UPDATE templates SET version = version + 1, updated_at = $4 \
         WHERE tenant_id = $1 AND id = $2 AND version = $3";
    /// Tenant `$1`'s template `$2` takes name `$3` at `$4`.
    RENAME_TEMPLATE = "UPDATE templates SET name = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2";
    /// Tenant `$1`'s template `$2`'s versions go.
    DELETE_TEMPLATE_VERSIONS = "DELETE FROM template_versions WHERE tenant_id = $1 AND template_id = $2";
    /// Tenant `$1`'s template `$2` goes.
    DELETE_TEMPLATE = "DELETE FROM templates WHERE tenant_id = $1 AND id = $2";
    /// A new broadcast (`$1`..`$13` in [`BROADCAST_COLS`] order).
    INSERT_BROADCAST = "INSERT INTO broadcasts ({BROADCAST_COLS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
    /// Tenant `$1`'s broadcasts, newest first, before id `$2` (`''`: from the newest),
    /// at most `$3`.
    BROADCASTS = "SELECT {BROADCAST_COLS} FROM broadcasts WHERE tenant_id = $1 \
         AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3";
    /// Tenant `$1`'s broadcast `$2`.
    FIND_BROADCAST = "SELECT {BROADCAST_COLS} FROM broadcasts WHERE tenant_id = $1 AND id = $2";
    /// Tenant `$1`'s broadcast `$2` takes name `$3`, spec `$4`, send time `$5` and change
    /// time `$6`, if it is still a draft or scheduled (`$7`: the state it was read in).
    UPDATE_BROADCAST = "UPDATE broadcasts SET name = $3, spec_enc = $4, send_at = $5, updated_at = $6 \
         WHERE tenant_id = $1 AND id = $2 AND state = $7 AND state IN ('draft', 'scheduled')";
    /// Tenant `$1`'s broadcast `$2` moves to state `$3` at `$4` (with spec `$6` and send
    /// time `$7` when given: the template version frozen at send) if its state is one of
    /// `$5` (comma-separated); a final state ends it and its runner's lease.
    MOVE_BROADCAST = "UPDATE broadcasts SET state = $3, updated_at = $4, \
         spec_enc = coalesce($6, spec_enc), send_at = CASE WHEN $8 = 1 THEN $7 ELSE send_at END, \
         finished_at = CASE WHEN $3 IN ('sent', 'cancelled') THEN $4 ELSE finished_at END, \
         runner = CASE WHEN $3 = 'sending' THEN runner ELSE NULL END, \
         runner_until = CASE WHEN $3 = 'sending' THEN runner_until ELSE NULL END \
         WHERE tenant_id = $1 AND id = $2 AND ',' || $5 || ',' LIKE '%,' || state || ',%'";
    /// Every tenant's broadcasts that need a node at `$1`: scheduled ones whose time has
    /// come (or was taken away), sending ones no node holds (their runner's lease ended: a dead node), and
    /// sending ones node `$2` holds (it restarted).
    DUE_BROADCASTS = "SELECT {BROADCAST_COLS} FROM broadcasts \
         WHERE (state = 'scheduled' AND (send_at IS NULL OR send_at <= $1)) \
         OR (state = 'sending' AND (runner_until IS NULL OR runner_until < $1 OR runner = $2)) \
         ORDER BY id";
    /// Node `$3` takes (or keeps) the expansion of tenant `$1`'s broadcast `$2` until
    /// `$4`, unless another node holds it at `$5`.
    CLAIM_BROADCAST = "UPDATE broadcasts SET runner = $3, runner_until = $4 \
         WHERE tenant_id = $1 AND id = $2 AND state = 'sending' \
         AND (runner IS NULL OR runner = $3 OR runner_until IS NULL OR runner_until < $5)";
    /// The statuses of tenant `$1`'s broadcast `$2`'s recipients.
    BROADCAST_STATUSES = "SELECT 'status' AS kind, r.status AS k, count(*) AS n, count(*) AS u \
         FROM messages m JOIN recipients r ON r.message_id = m.id AND r.tenant_id = m.tenant_id \
         WHERE m.tenant_id = $1 AND m.broadcast_id = $2 GROUP BY r.status";
    /// The events of tenant `$1`'s broadcast `$2`'s messages, by type, with how many
    /// recipients had each.
    BROADCAST_EVENTS = "SELECT 'event' AS kind, e.type AS k, count(*) AS n, \
         count(DISTINCT e.recipient_id) AS u \
         FROM messages m JOIN events e ON e.message_id = m.id AND e.tenant_id = m.tenant_id \
         WHERE m.tenant_id = $1 AND m.broadcast_id = $2 GROUP BY e.type";
    /// A page of tenant `$1`'s broadcast `$2`'s message ids after `$3`, at most `$4`.
    BROADCAST_MESSAGES = "SELECT id FROM messages WHERE tenant_id = $1 AND broadcast_id = $2 \
         AND id > $3 ORDER BY id LIMIT $4";
    /// Tenant `$1`'s broadcast `$2` goes (its messages stay, as any message does).
    DELETE_BROADCAST = "DELETE FROM broadcasts WHERE tenant_id = $1 AND id = $2 \
         AND state IN ('draft', 'cancelled', 'sent')";
    /// A broadcast's expansion moves from cursor `$7` to `$3` with counts `$4` at `$5`
    /// (and ends, `sent`, when `$6` is 1), if tenant `$1`'s broadcast `$2` is still
    /// `sending` from `$7`: run in the transaction that queues the batch's messages, so
    /// they and the cursor are written together or not at all.
    BROADCAST_PROGRESS = "UPDATE broadcasts SET cursor = $3, counts = $4, updated_at = $5, \
         state = CASE WHEN $6 = 1 THEN 'sent' ELSE state END, \
         finished_at = CASE WHEN $6 = 1 THEN $5 ELSE finished_at END, \
         runner = CASE WHEN $6 = 1 THEN NULL ELSE runner END, \
         runner_until = CASE WHEN $6 = 1 THEN NULL ELSE runner_until END \
         WHERE tenant_id = $1 AND id = $2 AND state = 'sending' AND cursor = $7";
}

store_area! {
    /// Campaign templates and their versions.
    CampaignStore {}
    shared {
        /// Saves a new template at version 1; `Conflict("template")` if the tenant has
        /// one of that name.
        fn create_template(&self, t: TemplateRecord) -> StoreResult<()> {
            let steps = vec![
                Step::new(&INSERT_TEMPLATE, args![t.id.clone(), t.tenant_id.clone(), t.name, t.created_at]),
                Step::new(
                    &INSERT_TEMPLATE_VERSION,
                    args![t.tenant_id, t.id, 1i64, t.content_enc, t.created_at],
                ),
            ];
            self.write_all("create_template", Some("template"), steps).await.map(drop)
        }
        /// A tenant's templates at their current versions, by name.
        fn templates(&self, tenant_id: &str) -> StoreResult<Vec<TemplateRecord>> {
            self.rows("templates", &TEMPLATES, args![tenant_id]).await
        }
        /// A tenant's template named by id or name, at `version` (`None`: its current
        /// one); `None` if there is no such template or version.
        fn find_template(
            &self,
            tenant_id: &str,
            key: &str,
            version: Option<i64>,
        ) -> StoreResult<Option<TemplateRecord>> {
            let args = args![tenant_id, key, version.unwrap_or(0)];
            self.row("find_template", &FIND_TEMPLATE, args).await
        }
        /// Gives a template new parts as version `from + 1`; `false` if the template is
        /// not at version `from` any more (or is gone).
        fn add_template_version(
            &self,
            tenant_id: &str,
            id: &str,
            from: i64,
            content_enc: Vec<u8>,
            at: i64,
        ) -> StoreResult<bool> {
            let steps = vec![
                Step::new(&INSERT_NEXT_VERSION, args![tenant_id, id, from, content_enc, at]),
                Step::new(&BUMP_TEMPLATE, args![tenant_id, id, from, at]),
            ];
            let counts = self.write_all("add_template_version", Some("template_version"), steps).await?;
            Ok(counts.first().copied().unwrap_or(0) > 0)
        }
        /// Renames a template; `false` if there is no such template, `Conflict("template")`
        /// if the name is taken.
        fn rename_template(&self, tenant_id: &str, id: &str, name: &str, at: i64) -> StoreResult<bool> {
            let args = args![tenant_id, id, name, at];
            Ok(self.write("rename_template", Some("template"), &RENAME_TEMPLATE, args).await? > 0)
        }
        /// Deletes a template and its versions; `false` if there was none.
        fn delete_template(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
            let steps = vec![
                Step::new(&DELETE_TEMPLATE_VERSIONS, args![tenant_id, id]),
                Step::new(&DELETE_TEMPLATE, args![tenant_id, id]),
            ];
            let counts = self.write_all("delete_template", None, steps).await?;
            Ok(counts.last().copied().unwrap_or(0) > 0)
        }
        /// Saves a new broadcast.
        fn create_broadcast(&self, b: BroadcastRecord) -> StoreResult<()> {
            let args = args![
                b.id, b.tenant_id, b.name, b.state, b.spec_enc, b.send_at, b.cursor, b.counts,
                b.runner, b.runner_until, b.created_at, b.updated_at, b.finished_at
            ];
            self.write("create_broadcast", None, &INSERT_BROADCAST, args).await.map(drop)
        }
        /// A tenant's broadcasts, newest first, before id `before`, at most `limit`.
        fn broadcasts(
            &self,
            tenant_id: &str,
            before: Option<String>,
            limit: usize,
        ) -> StoreResult<Vec<BroadcastRecord>> {
            let args = args![tenant_id, before.unwrap_or_default(), limit];
            self.rows("broadcasts", &BROADCASTS, args).await
        }
        /// A tenant's broadcast.
        fn find_broadcast(&self, tenant_id: &str, id: &str) -> StoreResult<Option<BroadcastRecord>> {
            self.row("find_broadcast", &FIND_BROADCAST, args![tenant_id, id]).await
        }
        /// Changes a draft or scheduled broadcast's name, spec and send time, if it is
        /// still in `b.state`; `false` if it is not.
        fn update_broadcast(&self, b: BroadcastRecord) -> StoreResult<bool> {
            let args = args![b.tenant_id, b.id, b.name, b.spec_enc, b.send_at, b.updated_at, b.state];
            Ok(self.write("update_broadcast", None, &UPDATE_BROADCAST, args).await? > 0)
        }
        /// Moves a broadcast to state `to` at `at` if it is in one of `from`, with the
        /// spec and send time of `freeze` when given (what `send` fixes: the template
        /// version); `false` if it was not in one of `from`.
        fn move_broadcast(
            &self,
            tenant_id: &str,
            id: &str,
            from: &[&str],
            to: &str,
            at: i64,
            freeze: Option<(Vec<u8>, Option<i64>)>,
        ) -> StoreResult<bool> {
            let (set, spec_enc, send_at) = match freeze {
                Some((spec, send_at)) => (1i64, Some(spec), send_at),
                None => (0, None, None),
            };
            let args = args![tenant_id, id, to, at, from.join(","), spec_enc, send_at, set];
            Ok(self.write("move_broadcast", None, &MOVE_BROADCAST, args).await? > 0)
        }
        /// Every tenant's broadcasts that need a node at `now`: scheduled ones whose
        /// time came, sending ones that no node holds, and sending ones `node` holds
        /// (which it takes up again after a restart).
        fn due_broadcasts(&self, now: i64, node: &str) -> StoreResult<Vec<BroadcastRecord>> {
            self.rows("due_broadcasts", &DUE_BROADCASTS, args![now, node]).await
        }
        /// Node `node` takes or keeps a sending broadcast's expansion until `until`;
        /// `false` if another node holds it or it is not sending.
        fn claim_broadcast(
            &self,
            tenant_id: &str,
            id: &str,
            node: &str,
            until: i64,
            now: i64,
        ) -> StoreResult<bool> {
            let args = args![tenant_id, id, node, until, now];
            Ok(self.write("claim_broadcast", None, &CLAIM_BROADCAST, args).await? > 0)
        }
        /// A broadcast's recipients by status, and its messages' events by type.
        fn broadcast_tallies(&self, tenant_id: &str, id: &str) -> StoreResult<Vec<BroadcastTally>> {
            let mut rows: Vec<BroadcastTally> =
                self.rows("broadcast_statuses", &BROADCAST_STATUSES, args![tenant_id, id]).await?;
            rows.extend(
                self.rows::<BroadcastTally>("broadcast_events", &BROADCAST_EVENTS, args![tenant_id, id])
                    .await?,
            );
            Ok(rows)
        }
        /// A page of a broadcast's message ids after `after` (`""`: from the first), at
        /// most `limit`, by id.
        fn broadcast_messages(
            &self,
            tenant_id: &str,
            id: &str,
            after: &str,
            limit: usize,
        ) -> StoreResult<Vec<String>> {
            let args = args![tenant_id, id, after, limit];
            let rows: Vec<MessageId> = self.rows("broadcast_messages", &BROADCAST_MESSAGES, args).await?;
            Ok(rows.into_iter().map(|m| m.0).collect())
        }
        /// The events of types `types` of tenant `tenant_id`'s messages `message_ids`.
        fn events_of_messages(
            &self,
            tenant_id: &str,
            message_ids: Vec<String>,
            types: &[EventType],
        ) -> StoreResult<Vec<EventRecord>> {
            if message_ids.is_empty() || types.is_empty() {
                return Ok(Vec::new());
            }
            let mut args: Vec<Arg> = args![tenant_id];
            let list = |values: Vec<String>, args: &mut Vec<Arg>| {
                let first = args.len() + 1;
                let params: Vec<String> = (first..first + values.len()).map(|i| format!("${i}")).collect();
                args.extend(values.into_iter().map(Arg::from));
                params.join(", ")
            };
            let ids = list(message_ids, &mut args);
            let kinds = list(types.iter().map(|t| t.as_str().to_string()).collect(), &mut args);
            let sql = format!(
                "SELECT {EVENT_COLS} FROM events WHERE tenant_id = $1 AND message_id IN ({ids}) \
                 AND type IN ({kinds}) ORDER BY seq"
            );
            self.rows_of("events_of_messages", sql, args).await
        }
        /// Deletes a broadcast that is not under way (draft, sent or cancelled); `false`
        /// if there is none such.
        fn delete_broadcast(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
            let args = args![tenant_id, id];
            Ok(self.write("delete_broadcast", None, &DELETE_BROADCAST, args).await? > 0)
        }
    }
}
