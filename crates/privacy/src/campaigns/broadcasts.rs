//! Broadcasts: one template sent to the people on lists and segments, now or at a
//! set time, with optional throttle and sending window. A broadcast moves through
//! `draft` → (`scheduled` →) `sending` → `sent`, can be `paused` and resumed while
//! under way, and `cancelled` until it is sent. Every move names the states it may
//! come from, so a click and the scheduler (or two nodes) cannot both make it.
//!
//! What it sends and to whom (the spec: From and Reply-To are addresses) is sealed
//! under the tenant key; its counts are figures only.

use postwerk_core::address::MailboxInput;
use postwerk_core::id::new_id;
use postwerk_store::model::BroadcastRecord;
use postwerk_store::prelude::*;
use postwerk_store::vault::{SealContext, VaultError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use postwerk_services::context::{ServiceError, Services, now_ms};

/// A broadcast's states.
pub mod state {
    /// Being written; nothing is sent.
    pub const DRAFT: &str = "draft";
    /// Waiting for its `send_at`.
    pub const SCHEDULED: &str = "scheduled";
    /// Its recipients are being expanded and queued.
    pub const SENDING: &str = "sending";
    /// Stopped by the tenant mid-way; resumes where it stopped.
    pub const PAUSED: &str = "paused";
    /// Every recipient was expanded and screened; the messages are queued.
    pub const SENT: &str = "sent";
    /// Stopped for good.
    pub const CANCELLED: &str = "cancelled";
}

/// Longest broadcast name, in characters.
pub const MAX_NAME: usize = 200;

/// The hours of the day (UTC) a broadcast may be expanded in: from `start` up to
/// `end` (`"HH:MM"`); an `end` before `start` spans midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Opens, `"HH:MM"` UTC.
    pub start: String,
    /// Closes, `"HH:MM"` UTC.
    pub end: String,
}

impl Window {
    /// Minutes after midnight of `"HH:MM"`.
    fn minutes(text: &str) -> Option<u32> {
        let (h, m) = text.split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60 && text.len() == 5).then_some(h * 60 + m)
    }

    /// Whether both times are `"HH:MM"` and differ.
    pub fn is_valid(&self) -> bool {
        matches!(
            (Self::minutes(&self.start), Self::minutes(&self.end)),
            (Some(a), Some(b)) if a != b
        )
    }

    /// Milliseconds from `now` (Unix ms) until the window is open: 0 when it is.
    pub fn wait_ms(&self, now: i64) -> i64 {
        let (Some(start), Some(end)) = (Self::minutes(&self.start), Self::minutes(&self.end))
        else {
            return 0;
        };
        let day = 86_400_000i64;
        let minute = (now.rem_euclid(day) / 60_000) as u32;
        let open = match start < end {
            true => (start..end).contains(&minute),
            false => minute >= start || minute < end,
        };
        if open {
            return 0;
        }
        let into_day = now.rem_euclid(day);
        let until = i64::from(start) * 60_000 - into_day;
        if until > 0 { until } else { until + day }
    }
}

/// Open and click tracking of a broadcast's messages (the stream's settings when
/// not given).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tracking {
    /// Count opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opens: Option<bool>,
    /// Rewrite links in `html`, `text`, `all` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clicks: Option<String>,
}

/// What a broadcast sends and to whom.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    /// The template's id.
    pub template: String,
    /// The template's version, fixed when the broadcast is sent (until then its
    /// current one is used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// The From mailbox as given.
    pub from: MailboxInput,
    /// The Reply-To mailbox, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<MailboxInput>,
    /// Lists by id: their members receive it.
    #[serde(default)]
    pub lists: Vec<String>,
    /// Segments by id: the contacts they name receive it.
    #[serde(default)]
    pub segments: Vec<String>,
    /// The stream it is sent on.
    pub stream: String,
    /// Most messages queued per hour, if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<u32>,
    /// When in the day it may be sent, if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Tracking choices.
    #[serde(default)]
    pub track: Tracking,
    /// Variables every recipient's rendering gets (a contact's own attributes win).
    #[serde(default)]
    pub variables: Map<String, Value>,
    /// Tags of its messages.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The lists (ids) its author was limited to, if any: it reaches only people on
    /// at least one of them, whoever sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_lists: Option<Vec<String>>,
}

/// The expansion's figures so far: every person it passed is counted once, in
/// `recipients` and in exactly one of the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// People on its lists and segments at expansion, screened-out people included.
    pub recipients: u64,
    /// Messages queued for delivery.
    pub sent: u64,
    /// On the suppression list (erased people's tombstones included).
    pub suppressed: u64,
    /// Without active consent for the stream's purpose.
    pub no_consent: u64,
    /// Processing restricted.
    pub restricted: u64,
    /// Held because the stream was paused.
    pub rejected: u64,
    /// Whose message could not be made (a template that failed for their data, an
    /// address no longer valid).
    #[serde(default)]
    pub failed: u64,
    /// The tenant's registered canary addresses it was also sent to (not people: not in
    /// `recipients`).
    #[serde(default)]
    pub canaries: u64,
}

/// A broadcast, opened.
#[derive(Debug, Clone)]
pub struct Broadcast {
    /// `bc_…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// See [`state`].
    pub state: String,
    /// What it sends and to whom.
    pub spec: Spec,
    /// When it is to be sent, if scheduled.
    pub send_at: Option<i64>,
    /// The expansion's figures.
    pub counts: Counts,
    /// Where the expansion stands (the last person's blind index; empty: at the start).
    pub cursor: Vec<u8>,
    /// Created.
    pub created_at: i64,
    /// Changed last.
    pub updated_at: i64,
    /// Sent or cancelled.
    pub finished_at: Option<i64>,
}

/// Why a broadcast operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    /// No such broadcast.
    #[error("no such broadcast")]
    NotFound,
    /// It is not in a state the operation applies to (`from` → the asked state).
    #[error("a {0} broadcast cannot be {1}")]
    WrongState(String, &'static str),
    /// The store or the vault failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<postwerk_store::StoreError> for BroadcastError {
    fn from(e: postwerk_store::StoreError) -> Self {
        BroadcastError::Service(e.into())
    }
}

async fn seal(
    services: &Services,
    tenant_id: &str,
    id: &str,
    spec: &Spec,
) -> Result<Vec<u8>, ServiceError> {
    let keys = services.tenant_keys(tenant_id).await?;
    let json = serde_json::to_vec(spec).expect("a spec serialises");
    Ok(keys.seal(SealContext::Broadcast(id), &json))
}

/// A stored broadcast, opened.
pub async fn opened(services: &Services, r: BroadcastRecord) -> Result<Broadcast, ServiceError> {
    let keys = services.tenant_keys(&r.tenant_id).await?;
    let json = keys.open(SealContext::Broadcast(&r.id), &r.spec_enc)?;
    let spec = serde_json::from_slice(&json).map_err(|_| VaultError::Authentication)?;
    Ok(Broadcast {
        counts: serde_json::from_str(&r.counts).unwrap_or_default(),
        id: r.id,
        name: r.name,
        state: r.state,
        spec,
        send_at: r.send_at,
        cursor: r.cursor,
        created_at: r.created_at,
        updated_at: r.updated_at,
        finished_at: r.finished_at,
    })
}

/// Saves a new draft (the caller checked the spec).
pub async fn create(
    services: &Services,
    tenant_id: &str,
    name: &str,
    spec: Spec,
    send_at: Option<i64>,
) -> Result<Broadcast, BroadcastError> {
    let now = now_ms();
    let id = new_id("bc");
    let record = BroadcastRecord {
        spec_enc: seal(services, tenant_id, &id, &spec).await?,
        id,
        tenant_id: tenant_id.to_string(),
        name: name.to_string(),
        state: state::DRAFT.to_string(),
        send_at,
        cursor: Vec::new(),
        counts: serde_json::to_string(&Counts::default()).expect("counts serialise"),
        runner: None,
        runner_until: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
    };
    services.store.create_broadcast(record.clone()).await?;
    Ok(opened(services, record).await?)
}

/// The tenant's broadcast.
pub async fn get(
    services: &Services,
    tenant_id: &str,
    id: &str,
) -> Result<Broadcast, BroadcastError> {
    let record = services.store.find_broadcast(tenant_id, id).await?;
    Ok(opened(services, record.ok_or(BroadcastError::NotFound)?).await?)
}

/// The tenant's broadcasts, newest first, before id `before`, at most `limit`.
pub async fn list(
    services: &Services,
    tenant_id: &str,
    before: Option<String>,
    limit: usize,
) -> Result<Vec<Broadcast>, BroadcastError> {
    let mut out = Vec::new();
    for r in services.store.broadcasts(tenant_id, before, limit).await? {
        out.push(opened(services, r).await?);
    }
    Ok(out)
}

/// Saves a changed name, spec or send time of a draft or scheduled broadcast `b`.
pub async fn update(
    services: &Services,
    tenant_id: &str,
    b: &Broadcast,
) -> Result<(), BroadcastError> {
    let record = BroadcastRecord {
        id: b.id.clone(),
        tenant_id: tenant_id.to_string(),
        name: b.name.clone(),
        state: b.state.clone(),
        spec_enc: seal(services, tenant_id, &b.id, &b.spec).await?,
        send_at: b.send_at,
        cursor: Vec::new(),
        counts: String::new(),
        runner: None,
        runner_until: None,
        created_at: b.created_at,
        updated_at: now_ms(),
        finished_at: None,
    };
    match services.store.update_broadcast(record).await? {
        true => Ok(()),
        false => Err(changed(services, tenant_id, &b.id, "changed").await),
    }
}

/// The error of a move that did not happen: the broadcast is gone, or in a state the
/// move does not apply to.
async fn changed(
    services: &Services,
    tenant_id: &str,
    id: &str,
    to: &'static str,
) -> BroadcastError {
    match get(services, tenant_id, id).await {
        Ok(b) => BroadcastError::WrongState(b.state, to),
        Err(e) => e,
    }
}

/// Sends a draft: `scheduled` if its `send_at` is in the future, else `sending` at
/// once; the template version is fixed now (`version`: the template's current one).
pub async fn send(
    services: &Services,
    tenant_id: &str,
    mut b: Broadcast,
    version: i64,
) -> Result<Broadcast, BroadcastError> {
    let now = now_ms();
    let to = match b.send_at {
        Some(at) if at > now => state::SCHEDULED,
        _ => state::SENDING,
    };
    b.spec.version = Some(version);
    let spec = seal(services, tenant_id, &b.id, &b.spec).await?;
    let from = [state::DRAFT];
    let moved = services
        .store
        .move_broadcast(tenant_id, &b.id, &from, to, now, Some((spec, b.send_at)))
        .await?;
    if !moved {
        return Err(changed(services, tenant_id, &b.id, "sent").await);
    }
    get(services, tenant_id, &b.id).await
}

/// Moves a broadcast from one of `from` to `to` (`verb` names the move in the error).
pub async fn transition(
    services: &Services,
    tenant_id: &str,
    id: &str,
    from: &[&str],
    to: &str,
    verb: &'static str,
) -> Result<Broadcast, BroadcastError> {
    if !services
        .store
        .move_broadcast(tenant_id, id, from, to, now_ms(), None)
        .await?
    {
        return Err(changed(services, tenant_id, id, verb).await);
    }
    get(services, tenant_id, id).await
}

/// Deletes a draft, sent or cancelled broadcast (its messages stay, as any does).
pub async fn delete(services: &Services, tenant_id: &str, id: &str) -> Result<(), BroadcastError> {
    match services.store.delete_broadcast(tenant_id, id).await? {
        true => Ok(()),
        false => Err(changed(services, tenant_id, id, "deleted").await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: &str, end: &str) -> Window {
        Window {
            start: start.into(),
            end: end.into(),
        }
    }

    const HOUR: i64 = 3_600_000;

    #[test]
    fn windows_open_and_wait() {
        let w = window("09:00", "17:00");
        assert!(w.is_valid());
        assert_eq!(w.wait_ms(10 * HOUR), 0);
        assert_eq!(w.wait_ms(8 * HOUR), HOUR);
        assert_eq!(w.wait_ms(18 * HOUR), 15 * HOUR);
        let night = window("22:00", "02:00");
        assert_eq!(night.wait_ms(23 * HOUR), 0);
        assert_eq!(night.wait_ms(HOUR), 0);
        assert_eq!(night.wait_ms(3 * HOUR), 19 * HOUR);
        for bad in [
            window("9:00", "17:00"),
            window("09:00", "09:00"),
            window("24:00", "01:00"),
        ] {
            assert!(!bad.is_valid(), "{bad:?}");
        }
    }
}
