//! `/v1/broadcasts…`: a template sent to lists and segments, now or at `send_at`, with
//! an optional throttle and sending window; `send`, `pause`, `resume`, `cancel`, a
//! `test` send to a few addresses first, and the report (JSON or CSV). The expansion
//! itself is [`crate::expansion`]'s.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use postwerk_core::address::MailboxInput;
use postwerk_core::model::EventType;
use postwerk_privacy::audience::lists;
use postwerk_privacy::campaigns::broadcasts::{
    self, Broadcast, BroadcastError, Counts, Spec, Tracking, Window, state,
};
use postwerk_privacy::campaigns::templates;
use postwerk_services::context::now_ms;
use postwerk_store::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::{expansion, view};

impl From<BroadcastError> for ApiError {
    fn from(e: BroadcastError) -> Self {
        let message = e.to_string();
        match e {
            BroadcastError::NotFound => ApiError::not_found("broadcast"),
            BroadcastError::WrongState(..) => {
                ApiError::new(StatusCode::CONFLICT, "invalid_state", message)
            }
            BroadcastError::Service(e) => e.into(),
        }
    }
}

/// Most test addresses of one `POST …/test`.
pub const MAX_TEST_RECIPIENTS: usize = 5;

/// Furthest ahead a broadcast may be scheduled.
const MAX_AHEAD_MS: i64 = 365 * 86_400_000;

/// A broadcast as JSON.
fn broadcast_json(b: &Broadcast) -> Value {
    let s = &b.spec;
    json!({
        "id": b.id,
        "name": b.name,
        "state": b.state,
        "template": s.template,
        "version": s.version,
        "from": s.from,
        "reply_to": s.reply_to,
        "lists": s.lists,
        "segments": s.segments,
        "stream": s.stream,
        "send_at": b.send_at.and_then(view::time),
        "throttle": s.throttle,
        "window": s.window,
        "track": s.track,
        "variables": s.variables,
        "tags": s.tags,
        "counts": b.counts,
        "created_at": view::time(b.created_at),
        "updated_at": view::time(b.updated_at),
        "finished_at": b.finished_at.and_then(view::time),
    })
}

/// A field that may be given as `null` (to clear it): `Some(None)`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `POST /v1/broadcasts` body; `PATCH` takes any of the fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    from: Option<MailboxInput>,
    #[serde(default, deserialize_with = "present")]
    reply_to: Option<Option<String>>,
    #[serde(default)]
    lists: Option<Vec<String>>,
    #[serde(default)]
    segments: Option<Vec<String>>,
    #[serde(default)]
    stream: Option<String>,
    #[serde(default, deserialize_with = "present")]
    send_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "postwerk_core::json::whole")]
    throttle: Option<u32>,
    #[serde(default)]
    window: Option<Window>,
    #[serde(default)]
    track: Option<Tracking>,
    #[serde(default)]
    variables: Option<Map<String, Value>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// The domain of a mailbox field, or `422 invalid_address`.
fn mailbox_domain(m: &MailboxInput, field: &str) -> Result<String, ApiError> {
    let parsed = m
        .parse()
        .map_err(|e| ApiError::invalid("invalid_address", field, e.to_string()))?;
    Ok(parsed.address.domain().to_string())
}

/// Applies `req` to `spec` (and the name and send time), checking each field given:
/// the template exists, the From domain is registered, the lists, segments and
/// stream exist, and a caller limited to some lists names only those.
async fn apply(
    state: &AppState,
    caller: &Caller,
    req: BroadcastBody,
    b: &mut Broadcast,
) -> Result<(), ApiError> {
    let services = &state.services;
    let tenant = caller.tenant_id.as_str();
    if let Some(name) = req.name {
        if name.trim().is_empty() || name.chars().count() > broadcasts::MAX_NAME {
            return Err(ApiError::invalid(
                "invalid_name",
                "name",
                "a broadcast name is 1 to 200 characters",
            ));
        }
        b.name = name;
    }
    let spec = &mut b.spec;
    if let Some(key) = req.template {
        let t = templates::get(services, tenant, &key, None).await?;
        // A scheduled broadcast keeps the version it was given at send: the new
        // template's current one.
        spec.version = (b.state == state::SCHEDULED).then_some(t.version);
        spec.template = t.id;
    }
    if let Some(from) = req.from {
        let domain = mailbox_domain(&from, "from")?;
        crate::messages::check_domain(state, caller, &domain, "from").await?;
        spec.from = from;
    }
    if let Some(reply_to) = req.reply_to {
        spec.reply_to = match reply_to {
            Some(r) => {
                let r = MailboxInput::Text(r);
                mailbox_domain(&r, "reply_to")?;
                Some(r)
            }
            None => None,
        };
    }
    if let Some(keys) = req.lists {
        spec.lists = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let id = lists::find(services, tenant, key)
                .await
                .ok()
                .map(|l| l.list.id)
                .filter(|id| caller.lists.as_ref().is_none_or(|only| only.contains(id)))
                .ok_or_else(|| {
                    ApiError::invalid("unknown_list", format!("lists[{i}]"), "no such list")
                })?;
            spec.lists.push(id);
        }
    }
    if let Some(keys) = req.segments {
        spec.segments = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let segment = postwerk_privacy::audience::filter::segment(services, tenant, key)
                .await
                .map_err(|_| {
                    ApiError::invalid(
                        "unknown_segment",
                        format!("segments[{i}]"),
                        "no such segment",
                    )
                })?;
            spec.segments.push(segment.id);
        }
    }
    if let Some(stream) = req.stream {
        services
            .streams
            .find(&services.store, tenant, &stream)
            .await?
            .ok_or_else(crate::streams::unknown_stream)?;
        spec.stream = stream;
    }
    if let Some(throttle) = req.throttle {
        if throttle == 0 {
            return Err(ApiError::invalid(
                "invalid_throttle",
                "throttle",
                "throttle is messages per hour, at least 1",
            ));
        }
        spec.throttle = Some(throttle);
    }
    if let Some(window) = req.window {
        if !window.is_valid() {
            return Err(ApiError::invalid(
                "invalid_window",
                "window",
                "a window is {\"start\": \"HH:MM\", \"end\": \"HH:MM\"} in UTC, start and end differing",
            ));
        }
        spec.window = Some(window);
    }
    if let Some(track) = req.track {
        if track
            .clicks
            .as_deref()
            .is_some_and(|c| postwerk_mta::tracking::links::Clicks::parse(c).is_none())
        {
            return Err(ApiError::invalid(
                "invalid_track",
                "track.clicks",
                "use html, text, all or none",
            ));
        }
        spec.track = track;
    }
    if let Some(variables) = req.variables {
        spec.variables = variables;
    }
    if let Some(tags) = req.tags {
        spec.tags = tags;
    }
    if let Some(send_at) = req.send_at {
        b.send_at = match send_at {
            None => None,
            Some(text) => {
                let at = view::rfc3339(&text, "send_at")?;
                if at > now_ms() + MAX_AHEAD_MS {
                    return Err(ApiError::invalid(
                        "invalid_time",
                        "send_at",
                        "send_at is at most a year ahead",
                    ));
                }
                Some(at)
            }
        };
    }
    if b.spec.lists.is_empty() && b.spec.segments.is_empty() {
        return Err(ApiError::invalid(
            "no_audience",
            "lists",
            "name at least one list or segment",
        ));
    }
    Ok(())
}

/// `POST /v1/broadcasts` (scope `write`): a draft.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<BroadcastBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let missing = |field: &'static str| {
        ApiError::invalid("missing_field", field, format!("{field} is required"))
    };
    if req.name.is_none() {
        return Err(missing("name"));
    }
    if req.template.is_none() {
        return Err(missing("template"));
    }
    if req.from.is_none() {
        return Err(missing("from"));
    }
    let mut draft = Broadcast {
        id: String::new(),
        name: String::new(),
        state: state::DRAFT.into(),
        spec: Spec {
            template: String::new(),
            version: None,
            from: MailboxInput::Text(String::new()),
            reply_to: None,
            lists: Vec::new(),
            segments: Vec::new(),
            stream: "broadcast".into(),
            throttle: None,
            window: None,
            track: Tracking::default(),
            variables: Map::new(),
            tags: Vec::new(),
            only_lists: caller.lists.clone(),
        },
        send_at: None,
        counts: Counts::default(),
        cursor: Vec::new(),
        created_at: 0,
        updated_at: 0,
        finished_at: None,
    };
    apply(&state, &caller, req, &mut draft).await?;
    let services = &state.services;
    let b = broadcasts::create(
        services,
        &caller.tenant_id,
        &draft.name,
        draft.spec,
        draft.send_at,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(broadcast_json(&b))))
}

/// `GET /v1/broadcasts` (scope `read`): newest first.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<view::IdPage>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit()?;
    let found = broadcasts::list(&state.services, &caller.tenant_id, q.cursor, limit).await?;
    Ok(Json(json!({
        "broadcasts": found.iter().map(broadcast_json).collect::<Vec<_>>(),
        "next_cursor": view::IdPage::next(found.iter().map(|b| b.id.as_str()), limit),
    })))
}

/// `GET /v1/broadcasts/{id}` (scope `read`).
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let b = broadcasts::get(&state.services, &caller.tenant_id, &id).await?;
    Ok(Json(broadcast_json(&b)))
}

/// `PATCH /v1/broadcasts/{id}` (scope `write`): a draft or scheduled broadcast changes.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<BroadcastBody>,
) -> Result<Json<Value>, ApiError> {
    let services = &state.services;
    let mut b = broadcasts::get(services, &caller.tenant_id, &id).await?;
    if b.state != state::DRAFT && b.state != state::SCHEDULED {
        return Err(BroadcastError::WrongState(b.state, "changed").into());
    }
    apply(&state, &caller, req, &mut b).await?;
    broadcasts::update(services, &caller.tenant_id, &b).await?;
    Ok(Json(broadcast_json(
        &broadcasts::get(services, &caller.tenant_id, &id).await?,
    )))
}

/// `DELETE /v1/broadcasts/{id}` (scope `write`): a draft, sent or cancelled one.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    broadcasts::delete(&state.services, &caller.tenant_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/broadcasts/{id}/send` (scope `send`): a draft goes out now, or is
/// scheduled for its `send_at`; its template's current version is kept for it.
pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let services = &state.services;
    let tenant = caller.tenant_id.as_str();
    let b = broadcasts::get(services, tenant, &id).await?;
    if b.state != state::DRAFT {
        return Err(BroadcastError::WrongState(b.state, "sent").into());
    }
    let template = templates::get(services, tenant, &b.spec.template, None).await?;
    let domain = mailbox_domain(&b.spec.from, "from")?;
    crate::messages::check_domain(&state, &caller, &domain, "from").await?;
    let b = broadcasts::send(services, tenant, b, template.version).await?;
    if b.state == state::SENDING {
        expansion::spawn(state.clone(), caller.tenant_id.clone(), b.id.clone());
    }
    Ok(Json(broadcast_json(&b)))
}

/// `POST /v1/broadcasts/{id}/pause` (scope `send`): a scheduled or sending broadcast
/// stops where it is (messages already queued go on).
pub async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let from = [state::SCHEDULED, state::SENDING];
    let b = broadcasts::transition(
        &state.services,
        &caller.tenant_id,
        &id,
        &from,
        state::PAUSED,
        "paused",
    )
    .await?;
    Ok(Json(broadcast_json(&b)))
}

/// `POST /v1/broadcasts/{id}/resume` (scope `send`): a paused broadcast goes on where
/// it stopped (or waits again for a `send_at` still ahead).
pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let services = &state.services;
    let b = broadcasts::get(services, &caller.tenant_id, &id).await?;
    let to = match b.send_at {
        Some(at) if at > now_ms() && b.cursor.is_empty() => state::SCHEDULED,
        _ => state::SENDING,
    };
    let b = broadcasts::transition(
        services,
        &caller.tenant_id,
        &id,
        &[state::PAUSED],
        to,
        "resumed",
    )
    .await?;
    if b.state == state::SENDING {
        expansion::spawn(state.clone(), caller.tenant_id.clone(), b.id.clone());
    }
    Ok(Json(broadcast_json(&b)))
}

/// `POST /v1/broadcasts/{id}/cancel` (scope `send`): stopped for good (messages
/// already queued go on).
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let from = [
        state::DRAFT,
        state::SCHEDULED,
        state::SENDING,
        state::PAUSED,
    ];
    let b = broadcasts::transition(
        &state.services,
        &caller.tenant_id,
        &id,
        &from,
        state::CANCELLED,
        "cancelled",
    )
    .await?;
    Ok(Json(broadcast_json(&b)))
}

/// `POST /v1/broadcasts/{id}/test` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    to: Vec<String>,
    #[serde(default)]
    variables: Option<Map<String, Value>>,
}

/// `POST /v1/broadcasts/{id}/test` (scope `send`): the broadcast as it stands, to a few
/// addresses (the team's), each rendered with the broadcast's variables and the
/// request's, subject marked `[Test]`, on the `transactional` stream (no consent gate:
/// these are not the audience); suppressions still apply.
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TestBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if req.to.is_empty() || req.to.len() > MAX_TEST_RECIPIENTS {
        return Err(ApiError::invalid(
            "invalid_field",
            "to",
            format!("send a test to 1 to {MAX_TEST_RECIPIENTS} addresses"),
        ));
    }
    let services = &state.services;
    let b = broadcasts::get(services, &caller.tenant_id, &id).await?;
    let mut results = Vec::new();
    for (i, to) in req.to.iter().enumerate() {
        let address = postwerk_core::address::Address::parse(to)
            .map_err(|e| ApiError::invalid("invalid_address", format!("to[{i}]"), e.to_string()))?;
        let mut variables = b.spec.variables.clone();
        variables.extend(req.variables.clone().unwrap_or_default());
        let sent = expansion::send_test(&state, &caller, &b, &address, variables).await?;
        results.push(sent);
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "messages": results }))))
}

/// `GET /v1/broadcasts/{id}/report` query: `format=csv` for CSV.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    #[serde(default)]
    format: Option<String>,
}

/// `GET /v1/broadcasts/{id}/report` (scope `read`): the expansion's counts with what
/// happened to the messages since (delivered, deferred, bounced, complaints, opens,
/// clicks, unsubscribes), as JSON or (`?format=csv`) as CSV rows `metric,value`.
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    let services = &state.services;
    let b = broadcasts::get(services, &caller.tenant_id, &id).await?;
    let tallies = services
        .store
        .broadcast_tallies(&caller.tenant_id, &b.id)
        .await?;
    let mut counts = report_counts(&b.counts, &tallies);
    let engagement = Engagement::read(&state, &caller.tenant_id, &b.id).await?;
    counts.insert("opens".into(), json!(engagement.people_opened.len()));
    counts.insert("machine_opens".into(), json!(engagement.machine_only()));
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(json!({
            "id": b.id,
            "name": b.name,
            "state": b.state,
            "template": b.spec.template,
            "version": b.spec.version,
            "counts": counts,
            "bounce_reasons": engagement.bounce_reasons,
            "links": engagement.links(),
            "finished_at": b.finished_at.and_then(view::time),
        }))
        .into_response()),
        Some("csv") => {
            use postwerk_core::csv::write_record;
            let mut csv = String::new();
            write_record(&mut csv, ["metric", "value"]);
            for (k, v) in &counts {
                write_record(&mut csv, [k.as_str(), &v.to_string()]);
            }
            for (reason, n) in &engagement.bounce_reasons {
                write_record(
                    &mut csv,
                    [format!("bounced:{reason}").as_str(), &n.to_string()],
                );
            }
            for link in engagement.links() {
                let url = link["url"].as_str().unwrap_or_default();
                write_record(
                    &mut csv,
                    [
                        format!("clicks:{url}").as_str(),
                        &link["clicks"].to_string(),
                    ],
                );
            }
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{}-report.csv\"", b.id),
                    ),
                ],
                csv,
            )
                .into_response())
        }
        Some(_) => Err(ApiError::invalid(
            "invalid_format",
            "format",
            "use json or csv",
        )),
    }
}

/// Most links a report lists (those clicked by the most people).
const MAX_LINKS: usize = 50;

/// What a report reads from its events' sealed details: who opened (a person, or only
/// machines: privacy proxies and scanners fetch every pixel), who clicked each link,
/// and why messages bounced.
#[derive(Default)]
struct Engagement {
    /// Recipients with an open that was not a machine's.
    people_opened: HashSet<String>,
    /// Recipients with a machine's open.
    machine_opened: HashSet<String>,
    /// Per link (without its query and fragment, which may name the person): the
    /// recipients who clicked it.
    clicked: HashMap<String, HashSet<String>>,
    /// Bounces per reason.
    bounce_reasons: BTreeMap<String, u64>,
}

impl Engagement {
    /// Reads broadcast `id`'s open, click and bounce events, a page of its messages
    /// at a time.
    async fn read(state: &AppState, tenant_id: &str, id: &str) -> Result<Engagement, ApiError> {
        const PAGE: usize = 1000;
        let services = &state.services;
        let kinds = [EventType::Opened, EventType::Clicked, EventType::Bounced];
        let mut e = Engagement::default();
        let mut after = String::new();
        loop {
            let ids = services
                .store
                .broadcast_messages(tenant_id, id, &after, PAGE)
                .await?;
            let Some(last) = ids.last().cloned() else {
                return Ok(e);
            };
            let events = services
                .store
                .events_of_messages(tenant_id, ids, &kinds)
                .await?;
            let hashes = events.iter().map(|ev| ev.rcpt_hash.as_slice());
            let keys = services.subject_keys(tenant_id, hashes).await?;
            for ev in &events {
                let detail = view::event(ev, &keys);
                let who = ev.recipient_id.clone();
                match ev.event_type {
                    EventType::Opened if detail["machine"] == true => {
                        e.machine_opened.insert(who);
                    }
                    EventType::Opened => {
                        e.people_opened.insert(who);
                    }
                    EventType::Clicked => {
                        let url = detail["url"].as_str().unwrap_or_default();
                        let link = url.split(['?', '#']).next().unwrap_or_default();
                        e.clicked.entry(link.to_string()).or_default().insert(who);
                    }
                    _ => {
                        let reason = detail["reason"].as_str().unwrap_or("undefined");
                        *e.bounce_reasons.entry(reason.to_string()).or_default() += 1;
                    }
                }
            }
            if last == after {
                return Ok(e);
            }
            after = last;
        }
    }

    /// Recipients whose every open was a machine's.
    fn machine_only(&self) -> usize {
        self.machine_opened.difference(&self.people_opened).count()
    }

    /// The most clicked links with the number of people who clicked each, most first.
    fn links(&self) -> Vec<Value> {
        let mut links: Vec<(&String, usize)> =
            self.clicked.iter().map(|(u, who)| (u, who.len())).collect();
        links.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        links
            .into_iter()
            .take(MAX_LINKS)
            .map(|(url, clicks)| json!({"url": url, "clicks": clicks}))
            .collect()
    }
}

/// The report's figures: the expansion's counts, then per recipient status and
/// event type (`opens` and `clicks` count recipients; `*_total` every hit).
fn report_counts(
    c: &Counts,
    tallies: &[postwerk_store::model::BroadcastTally],
) -> Map<String, Value> {
    let status = |k: &str| -> i64 {
        tallies
            .iter()
            .filter(|t| t.kind == "status" && t.key == k)
            .map(|t| t.n)
            .sum()
    };
    let event = |k: &str| tallies.iter().find(|t| t.kind == "event" && t.key == k);
    let unique = |k: &str| event(k).map_or(0, |t| t.recipients);
    let total = |k: &str| event(k).map_or(0, |t| t.n);
    let mut m = Map::new();
    let mut put = |k: &str, v: i64| {
        m.insert(k.into(), json!(v));
    };
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    put("recipients", n(c.recipients));
    put("sent", n(c.sent));
    put("suppressed", n(c.suppressed));
    put("no_consent", n(c.no_consent));
    put("restricted", n(c.restricted));
    put("rejected", n(c.rejected));
    put("failed", n(c.failed));
    put("canaries", n(c.canaries));
    put("queued", status("queued"));
    put("delivered", status("delivered"));
    put("deferred", unique("deferred"));
    put("bounced", status("bounced"));
    put("expired", status("expired"));
    put("complaints", unique("complained"));
    put("unsubscribes", unique("unsubscribed"));
    put("opens_total", total("opened"));
    put("clicks", unique("clicked"));
    put("clicks_total", total("clicked"));
    m
}
