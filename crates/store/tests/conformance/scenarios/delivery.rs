//! The delivery queue: claims, leases, outcomes, reports and queue operations.

use super::*;

pub async fn claim_due_and_leases(s: AnyStore) {
    let m1 = message("ten_a", "msg_1", 1_000, &["r1a", "r1b"]);
    let m2 = message("ten_a", "msg_2", 5_000, &["r2a", "r2b"]);
    let m4 = message("ten_b", "msg_4", 4_000, &["r4a", "r4b"]);
    s.accept(batch(vec![m1.clone(), m2, m4]))
        .await
        .expect("accept");
    let leased = AcceptBatch {
        messages: vec![message("ten_a", "msg_3", 1_000, &["r3a", "r3b"])],
        idempotency: None,
        lease: Some(("node-x".into(), 10_000)),
        progress: None,
    };
    s.accept(leased).await.expect("accept leased");

    // Due and free: only msg_1 (msg_2/msg_4 not due yet, msg_3 leased).
    let got = s
        .claim_due("node-a", 2_000, 3_000, 10)
        .await
        .expect("claim");
    assert_eq!(ids(&got), strings(&["r1a", "r1b"]));
    for d in &got {
        assert_eq!(d.message_id, "msg_1");
        assert_eq!(d.tenant_id, "ten_a");
        assert_eq!(d.rcpt_hash, hash(&d.id));
        assert_eq!(d.address_enc, format!("addr:{}", d.id).into_bytes());
        assert_eq!(d.domain, "example.net");
        assert_eq!(d.attempts, 0);
        assert_eq!(d.expires_at, m1.expires_at);
    }
    assert!(
        s.claim_due("node-b", 2_000, 3_000, 10)
            .await
            .expect("claim")
            .is_empty(),
        "leased"
    );
    assert!(
        s.claim_due("node-b", 3_000, 4_500, 10)
            .await
            .expect("claim")
            .is_empty(),
        "a lease ending exactly now still holds"
    );

    // Renewal keeps msg_1 with node-a; msg_2 and msg_4 have come due.
    s.renew_leases("node-a", 6_000).await.expect("renew");
    let got = s
        .claim_due("node-b", 5_000, 7_000, 10)
        .await
        .expect("claim");
    assert_eq!(ids(&got), strings(&["r2a", "r2b", "r4a", "r4b"]));

    // The lease expires: claimable again, `limit` at a time.
    let one = s.claim_due("node-c", 6_001, 9_000, 1).await.expect("claim");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].message_id, "msg_1");
    let rest = s
        .claim_due("node-c", 6_001, 9_000, 10)
        .await
        .expect("claim");
    assert_eq!(rest.len(), 1);
    assert_eq!(
        ids(&[one[0].clone(), rest[0].clone()]),
        strings(&["r1a", "r1b"])
    );

    // Oldest due first: msg_4 (4000) before msg_2 (5000).
    let got = s.claim_due("node-d", 7_001, 9_000, 2).await.expect("claim");
    assert_eq!(ids(&got), strings(&["r4a", "r4b"]));

    // Releasing a node's leases makes its rows claimable at once.
    assert_eq!(s.release_leases("node-x").await.expect("release"), 2);
    assert_eq!(s.release_leases("node-x").await.expect("release"), 0);
    let got = s
        .claim_due("node-e", 7_001, 9_000, 10)
        .await
        .expect("claim");
    assert_eq!(ids(&got), strings(&["r2a", "r2b", "r3a", "r3b"]));
    assert_eq!(s.release_leases("node-c").await.expect("release"), 2);
    let got = s
        .claim_due("node-f", 7_001, 9_000, 10)
        .await
        .expect("claim");
    assert_eq!(ids(&got), strings(&["r1a", "r1b"]));
    assert!(
        s.claim_due("node-g", 7_001, 9_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(
        s.claim_due("node-g", 7_001, 9_000, 0)
            .await
            .expect("claim")
            .is_empty()
    );
}

pub async fn concurrent_claims_are_disjoint(s: AnyStore) {
    const MESSAGES: usize = 100;
    let messages: Vec<NewMessage> = (0..MESSAGES)
        .map(|i| {
            let (a, b) = (format!("r{i}a"), format!("r{i}b"));
            message(
                "ten_a",
                &format!("msg_{i}"),
                1_000 + i as i64 % 7,
                &[a.as_str(), b.as_str()],
            )
        })
        .collect();
    s.accept(batch(messages)).await.expect("accept");

    // Two claimers at once get disjoint sets.
    let (a, b) = tokio::join!(
        tokio::spawn({
            let s = s.clone();
            async move { s.claim_due("node-a", 2_000, 60_000, 30).await }
        }),
        tokio::spawn({
            let s = s.clone();
            async move { s.claim_due("node-b", 2_000, 60_000, 30).await }
        }),
    );
    let a = a.expect("join").expect("claim a");
    let b = b.expect("join").expect("claim b");
    assert_eq!(a.len(), 30);
    assert_eq!(b.len(), 30);
    let a_ids: HashSet<String> = a.iter().map(|d| d.id.clone()).collect();
    assert!(
        b.iter().all(|d| !a_ids.contains(&d.id)),
        "a recipient was claimed twice"
    );

    // Four claimers drain the rest in small bites: every recipient exactly once.
    let claimers: Vec<_> = (0..4)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move {
                let node = format!("node-{n}");
                let mut mine = Vec::new();
                loop {
                    let got = s.claim_due(&node, 2_000, 60_000, 7).await.expect("claim");
                    assert!(got.len() <= 7, "limit exceeded");
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.into_iter().map(|d| d.id));
                }
            })
        })
        .collect();
    let mut all: Vec<String> = a_ids
        .into_iter()
        .chain(b.into_iter().map(|d| d.id))
        .collect();
    for c in claimers {
        all.extend(c.await.expect("join"));
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "a recipient was claimed twice");
    assert_eq!(all.len(), MESSAGES * 2, "every due recipient was claimed");
    assert!(
        s.claim_due("node-z", 2_000, 60_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
}

pub async fn queue_actions(s: AnyStore) {
    let mut other = message("ten_a", "msg_2", 1_500, &["r3"]);
    other.recipients[0].domain = "example.org".into();
    s.accept(batch(vec![
        message("ten_a", "msg_1", 1_000, &["r1", "r2"]),
        other,
        message("ten_b", "msg_3", 1_500, &["r4"]),
    ]))
    .await
    .expect("accept");
    let leased = s.claim_due("n1", 1_000, 60_000, 1).await.expect("claim");
    let idle = if ids(&leased) == ["r1"] { "r2" } else { "r1" };
    let sel = |tenant: Option<&str>, domain: Option<&str>| QueueSelector {
        tenant_id: tenant.map(str::to_string),
        domain: domain.map(str::to_string),
        ..QueueSelector::default()
    };
    // The leased one is being delivered: left alone.
    assert_eq!(
        s.queue_action(
            sel(Some("ten_a"), Some("example.net")),
            QueueAction::Suspend,
            2_000
        )
        .await
        .expect("suspend"),
        1
    );
    let depth = s.queue_depth(None).await.expect("depth");
    assert_eq!(
        depth
            .iter()
            .map(|d| (
                d.tenant_id.as_str(),
                d.domain.as_str(),
                d.status,
                d.recipients,
                d.oldest_created_at
            ))
            .collect::<Vec<_>>(),
        [
            ("ten_a", "example.net", RecipientStatus::Queued, 1, 1_000),
            ("ten_a", "example.net", RecipientStatus::Suspended, 1, 1_000),
            ("ten_a", "example.org", RecipientStatus::Queued, 1, 1_500),
            ("ten_b", "example.net", RecipientStatus::Queued, 1, 1_500),
        ]
    );
    assert_eq!(
        s.queue_depth(Some("ten_b")).await.expect("depth b").len(),
        1
    );
    assert_eq!(
        ids(&s.claim_due("n1", 2_000, 60_000, 10).await.expect("claim")),
        ["r3", "r4"]
    );
    s.release_leases("n1").await.expect("release");
    // A deferred recipient retried now.
    s.record_deliveries(vec![update(
        "ten_a",
        "msg_2",
        "r3",
        RecipientStatus::Deferred,
        Some(90_000),
        3_000,
    )])
    .await
    .expect("defer");
    assert_eq!(
        s.queue_action(sel(Some("ten_a"), None), QueueAction::Retry, 4_000)
            .await
            .expect("retry"),
        1
    );
    assert!(
        ids(&s.claim_due("n1", 4_000, 60_000, 10).await.expect("claim"))
            .contains(&"r3".to_string())
    );
    s.release_leases("n1").await.expect("release");
    assert_eq!(
        s.queue_action(sel(None, Some("example.net")), QueueAction::Resume, 5_000)
            .await
            .expect("resume"),
        1
    );
    let m = s
        .get_message("ten_a", "msg_1")
        .await
        .expect("get")
        .expect("msg_1");
    assert!(
        m.recipients
            .iter()
            .all(|r| r.status == RecipientStatus::Queued)
    );
    let mut by_message = sel(Some("ten_a"), None);
    by_message.message_id = Some("msg_1".into());
    assert_eq!(
        s.queue_action(by_message, QueueAction::Bounce, 6_000)
            .await
            .expect("bounce"),
        2
    );
    let m = s
        .get_message("ten_a", "msg_1")
        .await
        .expect("get")
        .expect("msg_1");
    assert!(
        m.recipients
            .iter()
            .all(|r| r.status == RecipientStatus::Bounced)
    );
    let kinds: Vec<_> = m
        .events
        .iter()
        .filter(|e| e.recipient_id == idle)
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        kinds,
        [
            EventType::Accepted,
            EventType::Suspended,
            EventType::Resumed,
            EventType::Bounced
        ]
    );
    assert!(
        ids(&s.claim_due("n1", 7_000, 60_000, 10).await.expect("claim"))
            .iter()
            .all(|id| id != "r1" && id != "r2")
    );
    // A node gives back a lease it will not use; another's lease is not its to drop.
    let held = s.claim_due("n2", 70_000, 90_000, 10).await.expect("claim");
    assert!(!held.is_empty());
    let held_ids = ids(&held);
    assert_eq!(
        s.release_recipients("n1", held_ids.clone())
            .await
            .expect("not n1's"),
        0
    );
    assert_eq!(
        s.release_recipients("n2", held_ids.clone())
            .await
            .expect("release"),
        held_ids.len() as u64
    );
    assert_eq!(
        ids(&s.claim_due("n3", 70_000, 90_000, 10).await.expect("claim")),
        held_ids
    );
    let b = s
        .get_message("ten_b", "msg_3")
        .await
        .expect("get")
        .expect("msg_3");
    assert_eq!(
        b.recipients[0].status,
        RecipientStatus::Queued,
        "other tenant untouched"
    );
}

/// Reports (DSN, ARF, auto-reply) find a recipient by id alone and append an
/// event; a bounce turns `delivered` into `bounced` but touches no other status,
/// attempt count or lease.
pub async fn reports_after_delivery(s: AnyStore) {
    s.accept(batch(vec![message("ten_a", "msg_1", 1_000, &["r1", "r2"])]))
        .await
        .expect("accept");
    assert!(s.find_recipient("nope").await.expect("find").is_none());
    let found = s.find_recipient("r1").await.expect("find").expect("r1");
    assert_eq!(
        (
            found.message_id.as_str(),
            found.tenant_id.as_str(),
            found.stream.as_str(),
            found.status
        ),
        ("msg_1", "ten_a", "transactional", RecipientStatus::Queued)
    );
    assert_eq!(
        (found.rcpt_hash, found.address_enc),
        (hash("r1"), b"addr:r1".to_vec())
    );
    s.claim_due("node-a", 1_000, 2_000, 10)
        .await
        .expect("claim");
    s.record_deliveries(vec![update(
        "ten_a",
        "msg_1",
        "r1",
        RecipientStatus::Delivered,
        None,
        1_100,
    )])
    .await
    .expect("record");
    let report = |rcpt: &str, event, status, at| ReportUpdate {
        recipient_id: rcpt.into(),
        message_id: "msg_1".into(),
        tenant_id: "ten_a".into(),
        rcpt_hash: hash(rcpt),
        event,
        status_if_delivered: status,
        at,
        detail_enc: format!("report:{rcpt}:{at}").into_bytes(),
        dims: StatDims::default(),
    };
    // An auto-reply leaves the status; a bounce of a delivered recipient changes
    // it; a bounce of a queued (leased) recipient does not.
    s.record_reports(vec![report("r1", EventType::Autoreply, None, 1_200)])
        .await
        .expect("autoreply");
    s.record_reports(vec![report(
        "r1",
        EventType::Bounced,
        Some(RecipientStatus::Bounced),
        1_300,
    )])
    .await
    .expect("bounce");
    s.record_reports(vec![report(
        "r2",
        EventType::Bounced,
        Some(RecipientStatus::Bounced),
        1_400,
    )])
    .await
    .expect("bounce of queued");
    let m = s
        .get_message("ten_a", "msg_1")
        .await
        .expect("get")
        .expect("message");
    assert_eq!(
        recipient_states(&m),
        [
            ("r1", RecipientStatus::Bounced, 1, None, 1_300),
            ("r2", RecipientStatus::Queued, 0, Some(1_000), 1_000),
        ]
    );
    let kinds: Vec<_> = m
        .events
        .iter()
        .map(|e| (e.recipient_id.as_str(), e.event_type, e.detail_enc.clone()))
        .collect();
    assert_eq!(
        kinds[kinds.len() - 3..],
        [
            ("r1", EventType::Autoreply, Some(b"report:r1:1200".to_vec())),
            ("r1", EventType::Bounced, Some(b"report:r1:1300".to_vec())),
            ("r2", EventType::Bounced, Some(b"report:r2:1400".to_vec())),
        ]
    );
    // The lease taken by the claim is still there: r2 is not due again.
    assert!(
        s.claim_due("node-b", 1_500, 3_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
}

pub async fn record_deliveries(s: AnyStore) {
    s.accept(batch(vec![message(
        "ten_a",
        "msg_1",
        1_000,
        &["r1", "r2", "r3", "r4"],
    )]))
    .await
    .expect("accept");
    assert_eq!(
        s.claim_due("node-a", 1_000, 2_000, 10)
            .await
            .expect("claim")
            .len(),
        4
    );

    s.record_deliveries(vec![
        update(
            "ten_a",
            "msg_1",
            "r1",
            RecipientStatus::Delivered,
            None,
            1_100,
        ),
        update(
            "ten_a",
            "msg_1",
            "r2",
            RecipientStatus::Deferred,
            Some(5_000),
            1_200,
        ),
        update(
            "ten_a",
            "msg_1",
            "r3",
            RecipientStatus::Bounced,
            None,
            1_300,
        ),
    ])
    .await
    .expect("record");

    let m = s
        .get_message("ten_a", "msg_1")
        .await
        .expect("get")
        .expect("message");
    let state = recipient_states(&m);
    assert_eq!(
        state,
        [
            ("r1", RecipientStatus::Delivered, 1, None, 1_100),
            ("r2", RecipientStatus::Deferred, 1, Some(5_000), 1_200),
            ("r3", RecipientStatus::Bounced, 1, None, 1_300),
            ("r4", RecipientStatus::Queued, 0, Some(1_000), 1_000),
        ]
    );
    let timeline: Vec<(&str, EventType, i64)> = m
        .events
        .iter()
        .map(|e| (e.recipient_id.as_str(), e.event_type, e.at))
        .collect();
    assert_eq!(
        timeline,
        [
            ("r1", EventType::Accepted, 1_000),
            ("r2", EventType::Accepted, 1_000),
            ("r3", EventType::Accepted, 1_000),
            ("r4", EventType::Accepted, 1_000),
            ("r1", EventType::Delivered, 1_100),
            ("r2", EventType::Deferred, 1_200),
            ("r3", EventType::Bounced, 1_300),
        ]
    );
    assert!(
        m.events.windows(2).all(|w| w[0].seq < w[1].seq),
        "events in seq order"
    );
    let delivered = &m.events[4];
    assert_eq!(
        delivered.detail_enc.as_deref(),
        Some(b"detail:r1:1100".as_slice())
    );
    assert_eq!(delivered.rcpt_hash, hash("r1"));
    assert_eq!(delivered.message_id, "msg_1");
    assert_eq!(delivered.tenant_id, "ten_a");

    // The leases of recorded recipients are cleared; r4's is still held.
    assert_eq!(s.release_leases("node-a").await.expect("release"), 1);
    let got = s
        .claim_due("node-b", 4_999, 9_000, 10)
        .await
        .expect("claim");
    assert_eq!(
        ids(&got),
        strings(&["r4"]),
        "the deferred r2 is not due before 5000"
    );
    let got = s
        .claim_due("node-c", 5_000, 9_000, 10)
        .await
        .expect("claim");
    assert_eq!(ids(&got), strings(&["r2"]));
    assert_eq!(got[0].attempts, 1);

    // Two outcomes for one recipient in one batch apply in order.
    s.record_deliveries(vec![
        update(
            "ten_a",
            "msg_1",
            "r2",
            RecipientStatus::Deferred,
            Some(6_000),
            5_100,
        ),
        update(
            "ten_a",
            "msg_1",
            "r2",
            RecipientStatus::Delivered,
            None,
            5_200,
        ),
    ])
    .await
    .expect("record");
    let m = s
        .get_message("ten_a", "msg_1")
        .await
        .expect("get")
        .expect("message");
    let r2 = m.recipients.iter().find(|r| r.id == "r2").expect("r2");
    assert_eq!(
        (r2.status, r2.attempts, r2.next_attempt_at, r2.updated_at),
        (RecipientStatus::Delivered, 3, None, 5_200)
    );
    let tail: Vec<(&str, EventType, i64)> = m.events[7..]
        .iter()
        .map(|e| (e.recipient_id.as_str(), e.event_type, e.at))
        .collect();
    assert_eq!(
        tail,
        [
            ("r2", EventType::Deferred, 5_100),
            ("r2", EventType::Delivered, 5_200)
        ]
    );
    assert_eq!(
        s.release_leases("node-c").await.expect("release"),
        0,
        "lease cleared"
    );
    let got = s
        .claim_due("node-d", 100_000, 200_000, 10)
        .await
        .expect("claim");
    assert_eq!(
        ids(&got),
        strings(&["r4"]),
        "final recipients are never claimed again"
    );

    s.record_deliveries(Vec::new())
        .await
        .expect("an empty batch is a no-op");
}

/// A node renewing its leases while recording outcomes for the same recipients
/// (in another order) never fails: both touch many rows in one transaction.
pub async fn renewals_race_deliveries(s: AnyStore) {
    const MESSAGES: usize = 100;
    let names: Vec<[String; 2]> = (0..MESSAGES)
        .map(|i| [format!("r{i:03}a"), format!("r{i:03}b")])
        .collect();
    let messages = names
        .iter()
        .enumerate()
        .map(|(i, [a, b])| message("ten_a", &format!("msg_{i:03}"), 1_000, &[a, b]))
        .collect();
    s.accept(batch(messages)).await.expect("accept");
    let mut due = s
        .claim_due("node-a", 1_000, 50_000, 1_000)
        .await
        .expect("claim");
    assert_eq!(due.len(), MESSAGES * 2);
    due.sort_by(|x, y| y.id.cmp(&x.id));

    let renewer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                s.renew_leases("node-a", 60_000 + i).await.expect("renew");
            }
        })
    };
    let recorders: Vec<_> = due
        .chunks(20)
        .map(|chunk| {
            let s = s.clone();
            let updates: Vec<DeliveryUpdate> = chunk
                .iter()
                .map(|d| {
                    update(
                        "ten_a",
                        &d.message_id,
                        &d.id,
                        RecipientStatus::Delivered,
                        None,
                        2_000,
                    )
                })
                .collect();
            tokio::spawn(async move { s.record_deliveries(updates).await.expect("record") })
        })
        .collect();
    renewer.await.expect("renewer");
    for r in recorders {
        r.await.expect("recorder");
    }
    assert_eq!(s.release_leases("node-a").await.expect("release"), 0);
    let delivered = s
        .list_events(EventFilter {
            event_type: Some(EventType::Delivered),
            ..events("ten_a", 1_000)
        })
        .await
        .expect("list");
    assert_eq!(delivered.len(), MESSAGES * 2);
}

/// Recipients of a stream ahead of bulk are claimed before a bulk backlog that was due
/// earlier; a scheduled message is claimed only from its time.
pub async fn urgent_recipients_are_claimed_first(s: AnyStore) {
    let first = message("ten_a", "msg_bulk1", 1_000, &["b1"]);
    let bulk = message("ten_a", "msg_bulk2", 2_000, &["b2", "b3"]);
    let mut urgent = message("ten_a", "msg_urgent", 5_000, &["u1"]);
    urgent.priority = 0;
    let mut later = message("ten_a", "msg_later", 5_000, &["l1"]);
    later.priority = 0;
    later.send_at = Some(9_000);
    s.accept(batch(vec![first, bulk, urgent, later]))
        .await
        .expect("accept");
    let got = s
        .claim_due("node-a", 6_000, 60_000, 2)
        .await
        .expect("claim");
    assert_eq!(
        ids(&got),
        strings(&["u1", "b1"]),
        "the urgent one first, then bulk in due order"
    );
    let got = s
        .claim_due("node-a", 6_000, 60_000, 10)
        .await
        .expect("claim");
    assert_eq!(
        ids(&got),
        strings(&["b2", "b3"]),
        "the scheduled one is not due yet"
    );
    let got = s
        .claim_due("node-a", 9_000, 60_000, 10)
        .await
        .expect("claim");
    assert_eq!(ids(&got), strings(&["l1"]));
}
