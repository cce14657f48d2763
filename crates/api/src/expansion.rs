//! The expansion of broadcasts: each `sending` broadcast's people are walked in
//! blind-index order a batch at a time ([`audience::next`]), each person's message is
//! rendered from the template version fixed at send with their attributes and their
//! own unsubscribe link, screened like every message (suppressions, erasure
//! tombstones, restriction, the consent gate, a paused stream), and the batch is
//! committed with the broadcast's cursor and counts in one transaction.
//!
//! So a person gets the broadcast once across a crash, a restart or a second node: a
//! batch is written whole or not at all, and only if the broadcast is still `sending`
//! from the cursor the batch started at (a node holding a stale cursor writes
//! nothing). A node holds a broadcast under a lease in the store, renewed as it goes;
//! the scheduler ([`schedule`]) starts broadcasts whose `send_at` came and takes over
//! those whose node stopped renewing.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use postwerk_core::address::{Address, MailboxInput};
use postwerk_core::id::new_id;
use postwerk_core::model::RecipientStatus;
use postwerk_mta::accept::{AcceptError, Pipeline, Screened, Submission};
use postwerk_mta::tracking::links::Linker;
use postwerk_privacy::audience::filter;
use postwerk_privacy::campaigns::audience::{self, Person};
use postwerk_privacy::campaigns::broadcasts::{self, Broadcast, Counts, state};
use postwerk_privacy::campaigns::render::{Compiled, Rendered};
use postwerk_privacy::campaigns::templates;
use postwerk_services::context::now_ms;
use postwerk_services::streams::Stream;
use postwerk_store::model::{BroadcastProgress, ContactFilter};
use postwerk_store::prelude::*;
use postwerk_store::vault::TenantKeys;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::compose::{self, Mailboxes, SendRequest, TrackInput};
use crate::error::ApiError;
use crate::messages::Outgoing;

/// People per batch (one transaction each).
const BATCH: usize = 500;
/// How long a node's hold on a broadcast lasts without renewal.
const LEASE_MS: i64 = 30_000;
/// How often the scheduler looks for broadcasts that need a node.
const TICK: Duration = Duration::from_secs(1);
/// The longest sleep between checks that the broadcast is still this node's and
/// still sending (while outside its window or held back by its throttle).
const NAP: Duration = Duration::from_secs(5);

/// The broadcasts this node is expanding.
static RUNNING: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);

/// Starts expanding a sending broadcast on this node, unless it already is.
pub fn spawn(state: AppState, tenant_id: String, id: String) {
    let fresh = RUNNING
        .lock()
        .map(|mut r| r.insert(id.clone()))
        .unwrap_or(false);
    if !fresh {
        return;
    }
    tokio::spawn(async move {
        if let Err(e) = run(&state, &tenant_id, &id).await {
            stopped(&state, &tenant_id, &id, &e).await;
        }
        if let Ok(mut r) = RUNNING.lock() {
            r.remove(&id);
        }
    });
}

/// Logs why an expansion stopped. One that cannot go on (its template version or a
/// segment was deleted) is paused for the tenant to look at; any other failure (the
/// store) is retried once the lease ends.
async fn stopped(state: &AppState, tenant_id: &str, id: &str, e: &ApiError) {
    if e.status != axum::http::StatusCode::NOT_FOUND {
        tracing::warn!(broadcast = %id, code = e.code, error = %e.message, "broadcast expansion stopped; it is taken up again once its lease ends");
        return;
    }
    tracing::warn!(broadcast = %id, error = %e.message, "broadcast paused: what it sends is gone");
    let store = &state.services.store;
    let from = [state::SENDING];
    if let Err(e) = store
        .move_broadcast(tenant_id, id, &from, state::PAUSED, now_ms(), None)
        .await
    {
        tracing::warn!(broadcast = %id, error = %e, "cannot pause the broadcast");
    }
}

/// Every second: scheduled broadcasts whose time came start sending, and sending
/// ones that no node holds (a node that died) or that this node held before it
/// restarted are taken up. Runs until the task is dropped.
pub async fn schedule(state: AppState) {
    loop {
        if let Err(e) = tick(&state).await {
            tracing::warn!(error = %e, "broadcast scheduler: cannot read due broadcasts");
        }
        tokio::time::sleep(TICK).await;
    }
}

async fn tick(state: &AppState) -> Result<(), postwerk_store::StoreError> {
    let store = &state.services.store;
    let now = now_ms();
    for b in store.due_broadcasts(now, &state.services.node_id).await? {
        if b.state == state::SCHEDULED
            && !store
                .move_broadcast(
                    &b.tenant_id,
                    &b.id,
                    &[state::SCHEDULED],
                    state::SENDING,
                    now,
                    None,
                )
                .await?
        {
            continue;
        }
        spawn(state.clone(), b.tenant_id, b.id);
    }
    Ok(())
}

/// What every message of a broadcast is made from.
struct Prepared {
    tenant_id: String,
    broadcast: Broadcast,
    compiled: Compiled,
    sources: Vec<ContactFilter>,
}

impl Prepared {
    async fn new(state: &AppState, tenant_id: &str, b: Broadcast) -> Result<Prepared, ApiError> {
        let services = &state.services;
        let template =
            templates::get(services, tenant_id, &b.spec.template, b.spec.version).await?;
        let compiled = template.compiled()?;
        let only = b.spec.only_lists.clone();
        let mut sources = Vec::new();
        if !b.spec.lists.is_empty() {
            sources.push(ContactFilter {
                tenant_id: tenant_id.to_string(),
                any_list: Some(b.spec.lists.clone()),
                ..ContactFilter::default()
            });
        }
        for key in &b.spec.segments {
            let segment = filter::segment(services, tenant_id, key).await?;
            let mut f = segment.filter.resolve(services, tenant_id).await?;
            f.any_list = only.clone();
            sources.push(f);
        }
        Ok(Prepared {
            tenant_id: tenant_id.to_string(),
            broadcast: b,
            compiled,
            sources,
        })
    }

    /// Person `p`'s message, rendered with the broadcast's variables and the
    /// contact's attributes (see [`personal`]).
    fn compose(
        &self,
        state: &AppState,
        linker: &Linker<'_>,
        keys: &TenantKeys,
        streams: &[Arc<Stream>],
        p: &Person,
    ) -> Result<Submission, ApiError> {
        let b = &self.broadcast;
        let config = &state.services.config;
        let mut variables = b.spec.variables.clone();
        variables.extend(p.attributes.clone());
        let (rcpt, variables) = personal(state, keys, variables, &p.email);
        let rendered = self.compiled.render(&variables)?;
        let mut req = request(b, &p.email, rendered, rcpt);
        req.metadata.insert("broadcast_id".into(), json!(b.id));
        req.track = Some(TrackInput {
            opens: b.spec.track.opens,
            clicks: b.spec.track.clicks.clone(),
        });
        let mut submission =
            compose::compose(&req, &config.delivery.ehlo_name, Some(linker), streams)?.submission;
        submission.broadcast_id = Some(b.id.clone());
        Ok(submission)
    }
}

/// A new recipient id for a message to `email`, and `variables` with `email` and that
/// recipient's own `unsubscribe_url` and `preferences_url` (made before the message,
/// so the body's link is the List-Unsubscribe one).
fn personal(
    state: &AppState,
    keys: &TenantKeys,
    mut variables: Map<String, Value>,
    email: &str,
) -> (String, Value) {
    let rcpt = new_id("rcpt");
    let url = postwerk_mta::unsubscribe::url(&state.services.config, keys, &rcpt);
    variables.insert("email".into(), json!(email));
    variables.insert("unsubscribe_url".into(), json!(url));
    variables.insert("preferences_url".into(), json!(url));
    (rcpt, Value::Object(variables))
}

/// The send request of broadcast `b`'s message `rendered` to `email` as recipient
/// `rcpt`, on the broadcast's stream with its tags.
fn request(b: &Broadcast, email: &str, rendered: Rendered, rcpt: String) -> SendRequest {
    SendRequest {
        from: b.spec.from.clone(),
        to: Mailboxes::One(MailboxInput::Text(email.to_string())),
        cc: Mailboxes::default(),
        bcc: Mailboxes::default(),
        reply_to: b.spec.reply_to.clone(),
        subject: Some(rendered.subject),
        text: Some(rendered.text),
        html: rendered.html,
        headers: Default::default(),
        attachments: Vec::new(),
        stream: Some(b.spec.stream.clone()),
        tags: b.spec.tags.clone(),
        metadata: Map::new(),
        track: None,
        template: None,
        version: None,
        variables: None,
        recipient_ids: vec![rcpt],
        send_at: None,
    }
}

/// Counts a screened-out person.
fn count_held(counts: &mut Counts, status: RecipientStatus) {
    match status {
        RecipientStatus::Suppressed => counts.suppressed += 1,
        RecipientStatus::NoConsent => counts.no_consent += 1,
        RecipientStatus::Restricted => counts.restricted += 1,
        _ => counts.rejected += 1,
    }
}

/// A batch made and screened, waiting to be committed with its progress.
struct Batch<'a> {
    screened: Screened<'a>,
    progress: BroadcastProgress,
    counts: Counts,
}

impl Prepared {
    /// The next batch of at most `limit` people after `cursor`: each one's message
    /// made and screened, `counts` carried forward.
    async fn batch<'a>(
        &self,
        state: &AppState,
        pipeline: &Pipeline<'a>,
        cursor: &[u8],
        mut counts: Counts,
        limit: usize,
    ) -> Result<Batch<'a>, ApiError> {
        let services = &state.services;
        let b = &self.broadcast;
        let tenant_id = self.tenant_id.as_str();
        let step = audience::next(services, &self.sources, cursor, limit).await?;
        pipeline
            .check_tenant()
            .await
            .map_err(|e| ApiError::unavailable(&e))?;
        let keys = services.tenant_keys(tenant_id).await?;
        let linker = Linker::new(&services.config, services.keys.master());
        let streams = services.streams.list(tenant_id);
        let mut submissions = Vec::with_capacity(step.people.len());
        for person in &step.people {
            counts.recipients += 1;
            match self.compose(state, &linker, &keys, &streams, person) {
                Ok(s) => submissions.push(s),
                Err(e) => {
                    tracing::warn!(broadcast = %b.id, code = e.code, error = %e.message, "a broadcast message could not be made");
                    counts.failed += 1;
                }
            }
        }
        let mut screened = pipeline.screen(submissions).await?;
        for status in screened.drop_held() {
            count_held(&mut counts, status);
        }
        counts.sent += screened.submissions().len() as u64;
        let progress = BroadcastProgress {
            tenant_id: tenant_id.to_string(),
            id: b.id.clone(),
            from_cursor: cursor.to_vec(),
            to_cursor: step.cursor,
            counts: serde_json::to_string(&counts).expect("counts serialise"),
            done: step.done,
            at: now_ms(),
        };
        Ok(Batch {
            screened,
            progress,
            counts,
        })
    }
}

/// Commits a batch: `false` if the broadcast moved on meanwhile (paused, cancelled,
/// or taken by another node), and nothing of the batch was written.
async fn commit(batch: Batch<'_>) -> Result<bool, ApiError> {
    match batch.screened.commit_broadcast(batch.progress).await {
        Ok(()) => Ok(true),
        Err(AcceptError::BroadcastMoved) => Ok(false),
        Err(e) => Err(ApiError::unavailable(&e)),
    }
}

/// Expands broadcast `id` while this node holds it and it is sending. The next batch
/// is made while the last one commits (the store's writer works on one core, the
/// rendering on the other); a batch is committed only after the one before it.
async fn run(state: &AppState, tenant_id: &str, id: &str) -> Result<(), ApiError> {
    let services = &state.services;
    let store = &services.store;
    let node = services.node_id.as_str();
    let claim = || async {
        let now = now_ms();
        store
            .claim_broadcast(tenant_id, id, node, now + LEASE_MS, now)
            .await
    };
    if !claim().await? {
        return Ok(());
    }
    let b = broadcasts::get(services, tenant_id, id).await?;
    if b.state != state::SENDING {
        return Ok(());
    }
    tracing::info!(broadcast = %id, "expanding a broadcast");
    let (mut cursor, mut counts) = (b.cursor.clone(), b.counts);
    let spec = b.spec.clone();
    let prepared = Prepared::new(state, tenant_id, b).await?;
    let pipeline = Pipeline::new(services, &state.engine, tenant_id);
    let mut claimed = Instant::now();
    // With a throttle: batches of a minute's share, spaced to keep the hourly rate.
    let (limit, spacing) = match spec.throttle {
        Some(per_hour) => {
            let n = (per_hour as usize / 60).clamp(1, BATCH);
            (
                n,
                Duration::from_millis(3_600_000 * n as u64 / u64::from(per_hour)),
            )
        }
        None => (BATCH, Duration::ZERO),
    };
    let mut next_at = Instant::now();
    let mut pending: Option<Batch> = None;
    loop {
        if claimed.elapsed() > Duration::from_millis(LEASE_MS as u64 / 3) {
            if !claim().await? {
                return Ok(());
            }
            claimed = Instant::now();
        }
        let closed = spec.window.as_ref().map_or(0, |w| w.wait_ms(now_ms()));
        let wait = Duration::from_millis(closed as u64)
            .max(next_at.saturating_duration_since(Instant::now()));
        let last = pending.as_ref().is_some_and(|p| p.progress.done);
        if !wait.is_zero() || last {
            if let Some(batch) = pending.take()
                && !commit(batch).await?
            {
                return Ok(());
            }
            if last {
                tracing::info!(broadcast = %id, recipients = counts.recipients, sent = counts.sent, "broadcast expanded");
                return Ok(());
            }
            tokio::time::sleep(wait.min(NAP)).await;
            if !claim().await? {
                return Ok(());
            }
            claimed = Instant::now();
            continue;
        }
        next_at = Instant::now() + spacing;
        let next = prepared.batch(state, &pipeline, &cursor, counts, limit);
        let next = match pending.take() {
            None => next.await?,
            Some(batch) => {
                let (committed, next) = tokio::join!(commit(batch), next);
                if !committed? {
                    return Ok(());
                }
                next?
            }
        };
        cursor.clone_from(&next.progress.to_cursor);
        counts = next.counts;
        pending = Some(next);
    }
}

/// Sends broadcast `b` as it stands to `to` as a test (see
/// [`crate::broadcasts::test`]); returns `{"id", "email", "status"}`.
pub(crate) async fn send_test(
    state: &AppState,
    caller: &Caller,
    b: &Broadcast,
    to: &Address,
    variables: Map<String, Value>,
) -> Result<Value, ApiError> {
    let services = &state.services;
    let template = templates::get(
        services,
        &caller.tenant_id,
        &b.spec.template,
        b.spec.version,
    )
    .await?;
    let keys = services.tenant_keys(&caller.tenant_id).await?;
    let (rcpt, variables) = personal(state, &keys, variables, &to.to_string());
    let rendered = template.compiled()?.render(&variables)?;
    let mut req = request(b, &to.to_string(), rendered, rcpt);
    req.subject = req.subject.map(|s| format!("[Test] {s}"));
    req.stream = Some("transactional".into());
    req.tags = vec!["broadcast-test".into()];
    let outgoing = Outgoing::compose(state, caller, &req, "from").await?;
    let id = outgoing.id.clone();
    let status = match outgoing.send(state, caller).await? {
        Some(held) => held.as_str(),
        None => "queued",
    };
    Ok(json!({"id": id, "email": to.to_string(), "status": status}))
}
