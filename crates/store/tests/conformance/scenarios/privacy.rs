//! Contacts, consent, data keys, erasure and stopped mail.

use super::*;

pub(super) fn contact(tenant: &str, who: &str, data: &str, at: i64) -> ContactRecord {
    ContactRecord {
        tenant_id: tenant.into(),
        rcpt_hash: hash(who),
        data_enc: data.as_bytes().to_vec(),
        restricted_at: None,
        created_at: at,
        updated_at: at,
        attr_tags: String::new(),
        deleted_at: None,
    }
}

pub(super) fn consent(
    tenant: &str,
    who: &str,
    purpose: &str,
    status: ConsentStatus,
    at: i64,
) -> ConsentRecord {
    ConsentRecord {
        seq: 0,
        tenant_id: tenant.into(),
        rcpt_hash: hash(who),
        purpose: purpose.into(),
        status,
        at,
        record_enc: format!("evidence:{purpose}:{at}").into_bytes(),
    }
}

pub(super) fn subject_key(who: &str, key: &str) -> SubjectKey {
    SubjectKey {
        rcpt_hash: hash(who),
        key_wrapped: key.as_bytes().to_vec(),
        created_at: 1_000,
    }
}

/// A person's key is stored once (the first writer's wins, also within one
/// call), per tenant, and erasure destroys it.
pub async fn subject_keys(s: AnyStore) {
    let stored = |mut keys: Vec<SubjectKey>| {
        keys.sort_by(|a, b| a.rcpt_hash.cmp(&b.rcpt_hash));
        keys.into_iter()
            .map(|k| String::from_utf8(k.key_wrapped).expect("utf-8"))
            .collect::<Vec<_>>()
    };
    let first = s
        .ensure_subject_keys(
            "ten_a",
            vec![subject_key("p1", "k1"), subject_key("p1", "k1-again")],
        )
        .await
        .expect("ensure");
    assert_eq!(stored(first), ["k1"]);
    let both = s
        .ensure_subject_keys(
            "ten_a",
            vec![subject_key("p1", "late"), subject_key("p2", "k2")],
        )
        .await
        .expect("ensure");
    assert_eq!(stored(both), ["k1", "k2"], "an existing key is kept");
    let other = s
        .ensure_subject_keys("ten_b", vec![subject_key("p1", "b1")])
        .await
        .expect("ensure");
    assert_eq!(stored(other), ["b1"], "keys are per tenant");
    let read = s
        .subject_keys(
            "ten_a",
            vec![hash("p2"), hash("p1"), hash("p2"), hash("nobody")],
        )
        .await
        .expect("read");
    assert_eq!(stored(read), ["k1", "k2"]);
    assert_eq!(
        s.erase_subject("ten_a", &hash("p1"))
            .await
            .expect("erase")
            .keys,
        1
    );
    let left = s
        .subject_keys("ten_a", vec![hash("p1"), hash("p2")])
        .await
        .expect("read");
    assert_eq!(stored(left), ["k2"]);
    let again = s
        .ensure_subject_keys("ten_a", vec![subject_key("p1", "fresh")])
        .await
        .expect("ensure");
    assert_eq!(
        stored(again),
        ["fresh"],
        "after erasure a new key is a new one"
    );
    assert_eq!(
        stored(
            s.subject_keys("ten_b", vec![hash("p1")])
                .await
                .expect("read")
        ),
        ["b1"],
        "erasure in one tenant leaves the other's key"
    );
}

/// A contact key of a database older than version 9 became the person's key.
pub async fn contact_keys_moved(s: &AnyStore) {
    let keys = s
        .subject_keys("ten_a", vec![hash("legacy")])
        .await
        .expect("read");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].key_wrapped, b"legacy-key");
    assert_eq!(keys[0].created_at, 7);
    let c = s
        .get_contact("ten_a", &hash("legacy"))
        .await
        .expect("get")
        .expect("the contact stays");
    assert_eq!(c.data_enc, b"v");
}

/// Contacts upsert (keeping their key and creation time), are per tenant, can be
/// restricted; consent records are append-only history.
pub async fn contacts_and_consents(s: AnyStore) {
    assert!(
        s.upsert_contact(contact("ten_a", "p1", "v1", 1_000))
            .await
            .expect("insert")
    );
    assert!(
        !s.upsert_contact(contact("ten_a", "p1", "v2", 2_000))
            .await
            .expect("update")
    );
    let c = s
        .get_contact("ten_a", &hash("p1"))
        .await
        .expect("get")
        .expect("contact");
    assert_eq!(
        (c.data_enc, c.created_at, c.updated_at, c.restricted_at),
        (b"v2".to_vec(), 1_000, 2_000, None)
    );
    assert!(
        s.get_contact("ten_b", &hash("p1"))
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        s.restrict_contact("ten_a", &hash("p1"), Some(3_000))
            .await
            .expect("restrict")
    );
    assert!(
        !s.restrict_contact("ten_b", &hash("p1"), Some(3_000))
            .await
            .expect("other tenant")
    );
    let c = s
        .get_contact("ten_a", &hash("p1"))
        .await
        .expect("get")
        .expect("contact");
    assert_eq!(c.restricted_at, Some(3_000));
    s.restrict_contact("ten_a", &hash("p1"), None)
        .await
        .expect("lift");

    let a = s
        .add_consent(consent(
            "ten_a",
            "p1",
            "newsletter",
            ConsentStatus::Active,
            1_100,
        ))
        .await
        .expect("add");
    let b = s
        .add_consent(consent(
            "ten_a",
            "p1",
            "newsletter",
            ConsentStatus::Withdrawn,
            1_200,
        ))
        .await
        .expect("add");
    s.add_consent(consent(
        "ten_a",
        "p2",
        "newsletter",
        ConsentStatus::Active,
        1_300,
    ))
    .await
    .expect("add");
    assert!(b > a);
    let history = s.list_consents("ten_a", &hash("p1")).await.expect("list");
    let got: Vec<_> = history
        .iter()
        .map(|c| {
            (
                c.seq,
                c.purpose.as_str(),
                c.status,
                c.at,
                c.record_enc.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                a,
                "newsletter",
                ConsentStatus::Active,
                1_100,
                b"evidence:newsletter:1100".to_vec()
            ),
            (
                b,
                "newsletter",
                ConsentStatus::Withdrawn,
                1_200,
                b"evidence:newsletter:1200".to_vec()
            ),
        ]
    );
    assert!(
        s.list_consents("ten_b", &hash("p1"))
            .await
            .expect("list")
            .is_empty()
    );
}

/// Queue operations touch only the selected, idle recipients and record events.
/// A person's waiting mail (queued, deferred, suspended; leased or not) of one
/// stream or all is stopped with a final status and its event; other people,
/// tenants and final recipients are untouched; a late outcome of an attempt in
/// flight cannot make a stopped recipient waiting again.
pub async fn stop_subject_mail(s: AnyStore) {
    // The person p1 has: msg_1 (transactional, with p2), msg_2 (broadcast, to be
    // deferred), msg_3 (broadcast, to be suspended), msg_5 (delivered); msg_4 is
    // another tenant's mail to the same hash.
    let to_p1 = |tenant: &str, id: &str, rcpt: &str, stream: &str| {
        let mut m = message(tenant, id, 1_000, &[rcpt]);
        m.stream = stream.into();
        m.recipients[0].rcpt_hash = hash("p1");
        m
    };
    s.accept(batch(vec![
        message("ten_a", "msg_1", 1_000, &["p1", "p2"]),
        to_p1("ten_a", "msg_2", "p1b", "broadcast"),
        to_p1("ten_a", "msg_3", "p1c", "broadcast"),
        to_p1("ten_b", "msg_4", "p1d", "broadcast"),
        to_p1("ten_a", "msg_5", "p1e", "broadcast"),
    ]))
    .await
    .expect("accept");
    let deferred = update(
        "ten_a",
        "msg_2",
        "p1b",
        RecipientStatus::Deferred,
        Some(90_000),
        1_100,
    );
    let delivered = update(
        "ten_a",
        "msg_5",
        "p1e",
        RecipientStatus::Delivered,
        None,
        1_100,
    );
    s.record_deliveries(vec![deferred, delivered])
        .await
        .expect("outcomes");
    let msg_3 = QueueSelector {
        message_id: Some("msg_3".into()),
        ..QueueSelector::default()
    };
    s.queue_action(msg_3, QueueAction::Suspend, 1_200)
        .await
        .expect("suspend");
    assert_eq!(
        ids(&s.claim_due("n1", 1_300, 60_000, 10).await.expect("claim")),
        ["p1", "p1d", "p2"]
    );
    let stop = |stream: Option<&str>, status, at| MailStop {
        tenant_id: "ten_a".into(),
        rcpt_hash: hash("p1"),
        stream: stream.map(str::to_string),
        status,
        at,
    };
    let suppressed = RecipientStatus::Suppressed;
    assert_eq!(
        s.stop_subject_mail(stop(Some("broadcast"), suppressed, 2_000))
            .await
            .expect("stop broadcast"),
        2,
        "the deferred and the suspended broadcast; not the transactional one"
    );
    let restricted = RecipientStatus::Restricted;
    assert_eq!(
        s.stop_subject_mail(stop(None, restricted, 3_000))
            .await
            .expect("stop all"),
        1,
        "the leased transactional one"
    );
    assert_eq!(
        s.stop_subject_mail(stop(None, restricted, 3_500))
            .await
            .expect("again"),
        0
    );
    let state = |id: &'static str| {
        let s = &s;
        async move {
            let m = s.get_message("ten_a", id).await.expect("get").expect(id);
            let states: Vec<_> = recipient_states(&m)
                .into_iter()
                .map(|(r, st, _, next, at)| (r.to_string(), st, next, at))
                .collect();
            let last = |r: &str| {
                m.events
                    .iter()
                    .filter(|e| e.recipient_id == r)
                    .map(|e| (e.event_type, e.at, e.rcpt_hash.clone()))
                    .next_back()
            };
            (states, last("p1"), last(m.recipients[0].id.as_str()))
        }
    };
    let (states, p1_event, _) = state("msg_1").await;
    assert_eq!(
        states,
        [
            ("p1".to_string(), restricted, None, 3_000),
            (
                "p2".to_string(),
                RecipientStatus::Queued,
                Some(1_000),
                1_000
            ),
        ]
    );
    assert_eq!(p1_event, Some((EventType::Restricted, 3_000, hash("p1"))));
    for (id, rcpt) in [("msg_2", "p1b"), ("msg_3", "p1c")] {
        let (states, _, event) = state(id).await;
        assert_eq!(states, [(rcpt.to_string(), suppressed, None, 2_000)]);
        assert_eq!(event, Some((EventType::Suppressed, 2_000, hash("p1"))));
    }
    let (states, _, _) = state("msg_5").await;
    assert_eq!(states[0].1, RecipientStatus::Delivered, "final mail stays");
    let other = s
        .get_message("ten_b", "msg_4")
        .await
        .expect("get")
        .expect("msg_4");
    assert_eq!(
        other.recipients[0].status,
        RecipientStatus::Queued,
        "other tenant"
    );
    // Nothing stopped is due again; p2 and ten_b's p1d are, once their lease ran out.
    assert_eq!(
        ids(&s
            .claim_due("n2", 100_000, 200_000, 10)
            .await
            .expect("claim")),
        ["p1d", "p2"]
    );
    // The attempt that was in flight for p1 ends: a deferral does not make it
    // waiting again, nor does a bounce change it; a delivery did happen and is
    // recorded as such.
    s.record_deliveries(vec![update(
        "ten_a",
        "msg_1",
        "p1",
        RecipientStatus::Deferred,
        Some(150_000),
        4_000,
    )])
    .await
    .expect("late deferral");
    let (states, p1_event, _) = state("msg_1").await;
    assert_eq!(states[0], ("p1".to_string(), restricted, None, 3_000));
    assert_eq!(
        p1_event.map(|e| e.0),
        Some(EventType::Deferred),
        "the attempt is on record"
    );
    assert!(
        ids(&s
            .claim_due("n2", 160_000, 300_000, 10)
            .await
            .expect("claim"))
        .iter()
        .all(|id| id != "p1")
    );
    s.record_deliveries(vec![update(
        "ten_a",
        "msg_2",
        "p1b",
        RecipientStatus::Bounced,
        None,
        4_500,
    )])
    .await
    .expect("late bounce");
    let (states, _, event) = state("msg_2").await;
    assert_eq!(states[0].1, suppressed);
    assert_eq!(event.map(|e| e.0), Some(EventType::Bounced));
    s.record_deliveries(vec![update(
        "ten_a",
        "msg_3",
        "p1c",
        RecipientStatus::Delivered,
        None,
        5_000,
    )])
    .await
    .expect("late delivery");
    let (states, _, _) = state("msg_3").await;
    assert_eq!(states[0].1, RecipientStatus::Delivered);
    // An erased row (no hash) is never matched; only stopping statuses are taken.
    let mut nobody = stop(None, suppressed, 6_000);
    nobody.rcpt_hash = Vec::new();
    assert_eq!(s.stop_subject_mail(nobody).await.expect("empty hash"), 0);
    assert!(
        s.stop_subject_mail(stop(None, RecipientStatus::Delivered, 6_000))
            .await
            .is_err()
    );
}

/// An erasure tombstone is removed only when the caller says so; other entries of
/// the same address as before.
pub async fn erasure_tombstones_stay(s: AnyStore) {
    use SuppressionReason::{Erasure, Manual};
    let h = hash("gone");
    s.add_suppression(suppression("ten_a", &h, None, Erasure, 1_000))
        .await
        .expect("tombstone");
    s.add_suppression(suppression("ten_a", &h, Some("broadcast"), Manual, 2_000))
        .await
        .expect("manual");
    assert_eq!(
        s.remove_suppression("ten_a", &h, None, false)
            .await
            .expect("refused"),
        0
    );
    let listed = |s: &AnyStore| {
        let s = s.clone();
        let h = h.clone();
        async move {
            let entries = s.list_suppressions("ten_a", Some(h), None, 10).await;
            let entries = entries.expect("list");
            entries.into_iter().map(|e| e.reason).collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(&s).await, [Erasure, Manual]);
    assert_eq!(
        s.remove_suppression("ten_a", &h, Some("broadcast"), false)
            .await
            .expect("manual entry"),
        1
    );
    assert_eq!(
        s.remove_suppression("ten_a", &h, None, true)
            .await
            .expect("lifted"),
        1
    );
    assert!(listed(&s).await.is_empty());
}

pub async fn erase_subject(s: AnyStore) {
    s.accept(batch(vec![
        message("ten_a", "msg_1", 1_000, &["p1", "p2"]),
        message("ten_a", "msg_2", 1_000, &["p3"]),
    ]))
    .await
    .expect("accept");
    s.upsert_contact(contact("ten_a", "p1", "v", 1_000))
        .await
        .expect("contact");
    s.upsert_contact(contact("ten_a", "p3", "v", 1_000))
        .await
        .expect("contact");
    s.create_list(ListRecord {
        id: "lst_1".into(),
        tenant_id: "ten_a".into(),
        name: "news".into(),
        description: None,
        created_at: 1_000,
        updated_at: 1_000,
    })
    .await
    .expect("list");
    let joined = s
        .add_members("ten_a", "lst_1", vec![hash("p1"), hash("p3")], 1_000)
        .await
        .expect("members");
    assert_eq!(joined, 2);
    s.add_consent(consent("ten_a", "p1", "news", ConsentStatus::Active, 1_000))
        .await
        .expect("consent");
    s.add_suppression(SuppressionRecord {
        seq: 0,
        tenant_id: "ten_a".into(),
        rcpt_hash: hash("p1"),
        stream: None,
        reason: SuppressionReason::Manual,
        created_at: 1_000,
        address_enc: Some(b"sealed".to_vec()),
        source: Some("api".into()),
    })
    .await
    .expect("suppress");
    let request = s
        .add_request(DsarRecord {
            seq: 0,
            tenant_id: "ten_a".into(),
            kind: DsarKind::Access,
            rcpt_hash: hash("p1"),
            received_at: 1_000,
            due_at: 2_000,
            status: DsarStatus::Completed,
            closed_at: Some(1_000),
            detail_enc: b"sealed".to_vec(),
        })
        .await
        .expect("request");

    s.ensure_subject_keys(
        "ten_a",
        vec![subject_key("p1", "k1"), subject_key("p3", "k3")],
    )
    .await
    .expect("keys");
    let e = s.erase_subject("ten_a", &hash("p1")).await.expect("erase");
    assert_eq!(
        e,
        Erasure {
            keys: 1,
            contacts: 1,
            list_memberships: 1,
            consents: 1,
            recipients: 1,
            messages: 1,
            events: 1,
            suppressions: 1,
            requests: 1,
            webhook_deliveries: 0,
        }
    );
    let left = s
        .find_list("ten_a", "news")
        .await
        .expect("list")
        .expect("kept");
    assert_eq!(left.members, 1, "the other person stays on the list");
    let kept = s
        .list_requests("ten_a", None, None, 10)
        .await
        .expect("register");
    assert_eq!(
        (
            kept[0].seq,
            kept[0].kind,
            kept[0].rcpt_hash.is_empty(),
            kept[0].detail_enc.is_empty()
        ),
        (request, DsarKind::Access, true, true),
        "the request stays as evidence, without the person"
    );
    assert!(
        s.get_contact("ten_a", &hash("p1"))
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        s.list_consents("ten_a", &hash("p1"))
            .await
            .expect("list")
            .is_empty()
    );
    let mut f = events("ten_a", 100);
    f.rcpt_hash = Some(hash("p1"));
    assert!(s.list_events(f).await.expect("events").is_empty());
    let m = s
        .get_message("ten_a", "msg_1")
        .await
        .expect("get")
        .expect("message");
    assert!(m.meta_enc.is_empty());
    let p1 = &m.recipients[0];
    assert_eq!(
        (
            p1.id.as_str(),
            p1.status,
            p1.address_enc.is_empty(),
            p1.rcpt_hash.is_empty()
        ),
        ("p1", RecipientStatus::Suppressed, true, true)
    );
    let p2 = &m.recipients[1];
    assert_eq!(
        (p2.status, p2.rcpt_hash.clone()),
        (RecipientStatus::Queued, hash("p2"))
    );
    assert!(
        s.load_content("msg_1")
            .await
            .expect("load")
            .expect("row")
            .content_enc
            .is_none()
    );
    assert!(
        s.load_content("msg_2")
            .await
            .expect("load")
            .expect("row")
            .content_enc
            .is_some()
    );
    let supp = s
        .find_suppressions("ten_a", vec![hash("p1")])
        .await
        .expect("find");
    assert_eq!((supp.len(), supp[0].address_enc.clone()), (1, None));
    // Only p2 is still due (p1's row is final and unleased).
    let due: Vec<_> = s
        .claim_due("node", 1_000, 2_000, 10)
        .await
        .expect("claim")
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(due.iter().filter(|d| d.starts_with("p1")).count(), 0);
    assert!(
        s.get_contact("ten_a", &hash("p3"))
            .await
            .expect("get")
            .is_some()
    );
    // Erasing again finds nothing.
    assert_eq!(
        s.erase_subject("ten_a", &hash("p1")).await.expect("again"),
        Erasure {
            suppressions: 0,
            ..Erasure::default()
        }
    );
}

/// The screen names restricted contacts and those whose newest consent record
/// for the purpose is active; recipients held as `no_consent` or `restricted` are
/// stored final with their own event, never due.
pub async fn consent_screen_and_held_recipients(s: AnyStore) {
    for (who, status, at) in [
        ("p1", ConsentStatus::Active, 1),
        ("p2", ConsentStatus::Active, 2),
        ("p2", ConsentStatus::Withdrawn, 3),
        ("p3", ConsentStatus::Withdrawn, 4),
        ("p3", ConsentStatus::Active, 5),
        ("p4", ConsentStatus::Pending, 6),
    ] {
        s.add_consent(consent("ten_a", who, "marketing", status, at))
            .await
            .expect("consent");
    }
    s.add_consent(consent("ten_a", "p5", "other", ConsentStatus::Active, 7))
        .await
        .expect("consent");
    s.add_consent(consent(
        "ten_b",
        "p2",
        "marketing",
        ConsentStatus::Active,
        8,
    ))
    .await
    .expect("consent");
    s.upsert_contact(contact("ten_a", "p6", "v", 1))
        .await
        .expect("contact");
    s.restrict_contact("ten_a", &hash("p6"), Some(9))
        .await
        .expect("restrict");
    let all: Vec<Vec<u8>> = ["p1", "p2", "p3", "p4", "p5", "p6", "p1"]
        .iter()
        .map(|p| hash(p))
        .collect();
    let mut screen = s
        .screen_subjects("ten_a", all.clone(), Some("marketing".into()))
        .await
        .expect("screen");
    screen.consented.sort();
    assert_eq!(screen.consented, [hash("p1"), hash("p3")]);
    assert_eq!(screen.restricted, [hash("p6")]);
    let plain = s.screen_subjects("ten_a", all, None).await.expect("screen");
    assert_eq!((plain.consented.len(), plain.restricted.len()), (0, 1));
    assert_eq!(
        s.screen_subjects("ten_a", vec![], None)
            .await
            .expect("empty"),
        ConsentScreen::default()
    );

    let mut m = message("ten_a", "msg_1", 1_000, &["q", "n", "r"]);
    m.recipients[1].status = RecipientStatus::NoConsent;
    m.recipients[2].status = RecipientStatus::Restricted;
    s.accept(AcceptBatch {
        messages: vec![m],
        idempotency: None,
        lease: Some(("node".into(), 9_000)),
        progress: None,
    })
    .await
    .expect("accept");
    let got = s
        .get_message("ten_a", "msg_1")
        .await
        .expect("get")
        .expect("message");
    assert_eq!(
        recipient_states(&got),
        [
            ("n", RecipientStatus::NoConsent, 0, None, 1_000),
            ("q", RecipientStatus::Queued, 0, Some(1_000), 1_000),
            ("r", RecipientStatus::Restricted, 0, None, 1_000),
        ]
    );
    let kinds: Vec<_> = got
        .events
        .iter()
        .map(|e| (e.recipient_id.as_str(), e.event_type))
        .collect();
    assert_eq!(
        kinds,
        [
            ("q", EventType::Accepted),
            ("n", EventType::NoConsent),
            ("r", EventType::Restricted)
        ]
    );
    let mut bad = message("ten_a", "msg_2", 1_000, &["x"]);
    bad.recipients[0].status = RecipientStatus::Delivered;
    assert!(s.accept(batch(vec![bad])).await.is_err());
}
