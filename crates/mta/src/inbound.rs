//! What the inbound MX does with a message: decide which recipients it takes (VERP
//! return paths with a valid tag, configured feedback addresses; nobody else — no
//! relay), and turn a received report into events on the recipients it concerns.
//!
//! A DSN or auto-reply sent to a VERP address concerns that recipient. An ARF report
//! sent to a feedback address concerns the recipients whose VERP return paths it
//! quotes (the returned message's Return-Path, Original-Mail-From). Each gets the
//! finding that names its address (else the report's first), recorded as a
//! `bounced`, `deferred`, `complained` or `autoreply` event with the details sealed;
//! a bounce after delivery makes the recipient `bounced`; a hard bounce suppresses
//! the address in every stream, a complaint in the message's stream.
//!
//! Mail to a canary address (`[canaries] domain`) from anywhere but this Postwerk
//! means the list it was handed out in leaked: an incident and `canary_triggered`.
//!
//! Privacy: logs name recipients by id only.

use postwerk_core::address::Address;
use postwerk_core::model::{BounceReason, EventType, RecipientStatus, SuppressionReason};
use postwerk_reports::{self as report, Finding, Kind, Source, verp};
use postwerk_services::subjects::SubjectKeys;
use postwerk_store::model::{RecipientRef, ReportUpdate, StatDims};
use postwerk_store::prelude::*;
use postwerk_store::vault::SealContext;
use serde::Serialize;

use crate::unsubscribe;
use postwerk_core::id::constant_time_eq;
use postwerk_core::rawmsg;
use postwerk_privacy::audience::canaries::{self, Arrival};
use postwerk_privacy::suppressions;
use postwerk_services::context::{ServiceError, Services, now_ms};
use std::net::IpAddr;

/// A recipient a report concerns, with its tenant's keys.
struct Target {
    recipient: RecipientRef,
    keys: SubjectKeys,
}

/// What is sealed into a report's event.
#[derive(Serialize)]
struct ReportDetail<'a> {
    /// The remote server's diagnostic, or an auto-reply's subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_mta: Option<&'a str>,
    reason: BounceReason,
    hardbounce: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    feedback_type: Option<&'a str>,
    source: Source,
}

/// Whether the inbound MX takes mail for `rcpt`: a configured feedback address, a
/// VERP return path of a known recipient with a valid tag, a genuine mailto
/// unsubscribe address (`u+<token>`), or a canary address.
pub async fn accepts(services: &Services, rcpt: &Address) -> Result<bool, ServiceError> {
    if is_feedback_address(services, rcpt) {
        return Ok(true);
    }
    if is_canary_domain(services, rcpt) {
        let canary = services.store.find_canary(&rcpt.normalized()).await?;
        return Ok(canary.is_some());
    }
    if let Some(token) = unsubscribe::mailto_token(rcpt.local()) {
        return Ok(unsubscribe::recipient_of(services, token, true)
            .await?
            .is_some());
    }
    match verp::parse_local(rcpt.local()) {
        Some((id, tag)) => Ok(verified(services, &id, &tag).await?.is_some()),
        None => Ok(false),
    }
}

/// Whether `rcpt` is at `[canaries] domain`.
fn is_canary_domain(services: &Services, rcpt: &Address) -> bool {
    services
        .config
        .canaries
        .domain
        .as_deref()
        .is_some_and(|d| d.eq_ignore_ascii_case(rcpt.domain()))
}

/// Raises the alarm of each canary among `rcpts` that received `raw` from `peer`,
/// unless the message is one this Postwerk sent (its Message-ID names a message of the
/// canary's tenant: broadcasts include the tenant's canaries). Returns how many.
async fn canaries_reached(
    services: &Services,
    peer: IpAddr,
    rcpts: &[Address],
    raw: &[u8],
) -> Result<usize, ServiceError> {
    let headers = &raw[..rawmsg::find_header_end(raw).unwrap_or(raw.len())];
    let own_id = rawmsg::header_value(headers, "Message-ID").and_then(|v| {
        let v = v.trim().trim_start_matches('<');
        v.split('@').next().map(str::to_string)
    });
    let from_domain = rawmsg::single_from(headers)
        .ok()
        .map(|m| m.address.domain().to_string());
    let mut reached = 0;
    for rcpt in rcpts.iter().filter(|r| is_canary_domain(services, r)) {
        let address = rcpt.normalized();
        let Some(canary) = services.store.find_canary(&address).await? else {
            continue;
        };
        if let Some(id) = &own_id
            && services
                .store
                .get_message(&canary.tenant_id, id)
                .await?
                .is_some()
        {
            continue;
        }
        let arrival = Arrival {
            address,
            client_ip: peer.to_string(),
            from_domain: from_domain.clone(),
        };
        canaries::triggered(services, &arrival).await?;
        tracing::warn!(client = %peer, "mail from elsewhere reached a canary address: a list leaked");
        reached += 1;
    }
    Ok(reached)
}

fn is_feedback_address(services: &Services, rcpt: &Address) -> bool {
    let rcpt = rcpt.normalized();
    services
        .config
        .smtp
        .inbound
        .feedback_addresses
        .iter()
        .filter_map(|a| Address::parse(a).ok())
        .any(|a| a.normalized() == rcpt)
}

/// The recipient named by a VERP token, if it exists and the tag is its own.
async fn verified(
    services: &Services,
    id: &str,
    tag: &str,
) -> Result<Option<Target>, ServiceError> {
    let Some(recipient) = services.store.find_recipient(id).await? else {
        return Ok(None);
    };
    let keys = services
        .subject_keys(&recipient.tenant_id, [recipient.rcpt_hash.as_slice()])
        .await?;
    let expected = keys.tenant().verp_tag(id);
    if !constant_time_eq(expected.as_bytes(), tag.as_bytes()) {
        return Ok(None);
    }
    Ok(Some(Target { recipient, keys }))
}

/// Applies a message received for `rcpts` (already accepted by [`accepts`]): any
/// message to a mailto unsubscribe address unsubscribes (RFC 2369; its content does not
/// matter); reports become events. Returns how many recipients got an event; 0 when
/// the message is not a report or names no known recipient (it is then dropped, as MXs
/// of bounce domains do).
pub async fn receive(
    services: &Services,
    peer: IpAddr,
    rcpts: &[Address],
    raw: &[u8],
) -> Result<usize, ServiceError> {
    let canaries = canaries_reached(services, peer, rcpts, raw).await?;
    if canaries > 0 {
        return Ok(canaries);
    }
    let mut unsubscribed = 0;
    for token in rcpts
        .iter()
        .filter_map(|r| unsubscribe::mailto_token(r.local()))
    {
        if unsubscribe::unsubscribe(services, token, "mailto")
            .await?
            .is_some()
        {
            unsubscribed += 1;
        }
    }
    if unsubscribed > 0 {
        return Ok(unsubscribed);
    }
    let findings = report::parse(raw);
    if findings.is_empty() {
        tracing::info!("inbound message is not a bounce, complaint or auto-reply; dropped");
        return Ok(0);
    }
    let mut tokens = Vec::new();
    for rcpt in rcpts {
        if let Some(token) = verp::parse_local(rcpt.local()) {
            tokens.push(token);
        } else if is_feedback_address(services, rcpt) {
            tokens.extend(report::verp_tokens(raw));
        }
    }
    tokens.sort();
    tokens.dedup();
    let mut applied = 0;
    for (id, tag) in tokens {
        let Some(target) = verified(services, &id, &tag).await? else {
            tracing::info!(recipient_id = %id, "report names an unknown recipient or a forged tag; ignored");
            continue;
        };
        apply(services, &target, &findings).await?;
        applied += 1;
    }
    Ok(applied)
}

/// Records the finding about `target` (the one naming its address, else the first).
async fn apply(
    services: &Services,
    target: &Target,
    findings: &[Finding],
) -> Result<(), ServiceError> {
    let r = &target.recipient;
    let address = crate::view::address(&r.id, &r.rcpt_hash, &r.address_enc, &target.keys)
        .and_then(|a| Address::parse(&a).ok());
    let names = |f: &&Finding| {
        let Some(address) = &address else {
            return false;
        };
        [&f.recipient, &f.final_recipient]
            .into_iter()
            .flatten()
            .filter_map(|a| Address::parse(a).ok())
            .any(|a| a.normalized() == address.normalized())
    };
    let finding = findings.iter().find(names).unwrap_or(&findings[0]);
    let event = match finding.kind {
        Kind::Bounced => EventType::Bounced,
        Kind::Deferred => EventType::Deferred,
        Kind::Complained => EventType::Complained,
        Kind::Autoreply => EventType::Autoreply,
    };
    let detail = ReportDetail {
        reply: finding.reply.as_deref(),
        status: finding.status.as_deref(),
        remote_mta: finding.remote_mta.as_deref(),
        reason: finding.reason,
        hardbounce: finding.hardbounce,
        feedback_type: finding.feedback_type.as_deref(),
        source: finding.source,
    };
    let json = serde_json::to_vec(&detail).expect("detail serialises");
    services
        .store
        .record_reports(vec![ReportUpdate {
            status_if_delivered: (event == EventType::Bounced).then_some(RecipientStatus::Bounced),
            dims: StatDims {
                stream: r.stream.clone(),
                reason: finding.reason.as_str().to_string(),
                ..StatDims::default()
            },
            ..ReportUpdate::about(
                r,
                event,
                now_ms(),
                target
                    .keys
                    .seal(Some(&r.rcpt_hash), SealContext::Event(&r.id), &json),
            )
        }])
        .await?;
    tracing::info!(recipient_id = %r.id, message_id = %r.message_id, event = event.as_str(), "report recorded");
    if matches!(event, EventType::Bounced | EventType::Complained) {
        services.breaker.mark(&r.tenant_id, &r.stream);
    }
    let suppression = match finding.kind {
        Kind::Bounced if finding.hardbounce => Some((SuppressionReason::HardBounce, None)),
        Kind::Complained => Some((SuppressionReason::Complaint, Some(r.stream.as_str()))),
        _ => None,
    };
    if let (Some((reason, stream)), Some(address)) = (suppression, &address) {
        let entry =
            suppressions::record(&target.keys, &r.tenant_id, address, reason, stream, &r.id);
        suppressions::add(services, entry).await?;
    }
    Ok(())
}
