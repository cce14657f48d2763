//! Acceptance, idempotency and reading messages back.

use super::*;

pub async fn accept_and_get_message(s: AnyStore) {
    // Mixed-case ids: recipients come back in byte order ("A" < "b") on every
    // backend, whatever the database locale.
    let mut m1 = message("ten_a", "msg_1", 1_000, &["rcpt_1_b", "rcpt_1_A"]);
    m1.mail_from_enc = Some(b"from:msg_1".to_vec());
    let m2 = message("ten_a", "msg_2", 1_001, &["rcpt_2_a", "rcpt_2_b"]);
    let mut m3 = message("ten_a", "msg_3", 1_002, &["rcpt_3_a", "rcpt_3_b"]);
    m3.stream = "broadcast".into();
    s.accept(batch(vec![m1.clone(), m2.clone(), m3.clone()]))
        .await
        .expect("accept batch");

    let mut last_seq = 0;
    for m in [&m1, &m2, &m3] {
        let got = s
            .get_message("ten_a", &m.id)
            .await
            .expect("get")
            .expect("message exists");
        assert_eq!(got.id, m.id);
        assert_eq!(got.tenant_id, "ten_a");
        assert_eq!(got.stream, m.stream);
        assert_eq!(got.created_at, m.created_at);
        assert_eq!(got.meta_enc, m.meta_enc);

        let mut expected: Vec<&NewRecipient> = m.recipients.iter().collect();
        expected.sort_by(|a, b| a.id.as_bytes().cmp(b.id.as_bytes()));
        assert_eq!(got.recipients.len(), 2);
        for (r, want) in got.recipients.iter().zip(expected) {
            assert_eq!(r.id, want.id, "recipients ordered by id");
            assert_eq!(r.rcpt_hash, want.rcpt_hash);
            assert_eq!(r.address_enc, want.address_enc);
            assert_eq!(r.domain, want.domain);
            assert_eq!(r.status, RecipientStatus::Queued);
            assert_eq!(r.attempts, 0);
            assert_eq!(r.next_attempt_at, Some(m.created_at), "due at once");
            assert_eq!(r.updated_at, m.created_at);
        }

        assert_eq!(got.events.len(), 2, "one accepted event per recipient");
        for (e, r) in got.events.iter().zip(&m.recipients) {
            assert_eq!(e.recipient_id, r.id, "events in recipient order");
            assert_eq!(e.event_type, EventType::Accepted);
            assert_eq!(e.message_id, m.id);
            assert_eq!(e.tenant_id, "ten_a");
            assert_eq!(e.rcpt_hash, r.rcpt_hash);
            assert_eq!(e.at, m.created_at);
            assert_eq!(e.detail_enc, None);
            assert!(e.seq > last_seq, "seq grows through the batch");
            last_seq = e.seq;
        }
    }
    assert_eq!(
        s.list_events(events("ten_a", 100))
            .await
            .expect("list")
            .len(),
        6
    );

    // Tenant isolation.
    assert!(
        s.get_message("ten_b", "msg_1")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        s.get_message("ten_a", "msg_missing")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        s.list_events(events("ten_b", 100))
            .await
            .expect("list")
            .is_empty()
    );

    // A batch with a lease is stored the same way.
    let leased = AcceptBatch {
        messages: vec![message("ten_a", "msg_4", 2_000, &["rcpt_4_a"])],
        idempotency: None,
        lease: Some(("node-1".into(), 9_000)),
        progress: None,
    };
    s.accept(leased).await.expect("accept with lease");
    let got = s
        .get_message("ten_a", "msg_4")
        .await
        .expect("get")
        .expect("message");
    assert_eq!(got.recipients[0].status, RecipientStatus::Queued);
    assert_eq!(got.events.len(), 1);
    assert_eq!(
        s.release_leases("node-1").await.expect("release"),
        1,
        "accept took the lease"
    );
}

pub async fn accept_conflicts_are_atomic(s: AnyStore) {
    s.accept(batch(vec![message("ten_a", "msg_1", 1_000, &["rcpt_1"])]))
        .await
        .expect("accept");

    let dup_message = batch(vec![
        message("ten_a", "msg_2", 1_000, &["rcpt_2"]),
        message("ten_a", "msg_1", 1_000, &["rcpt_1x"]),
    ]);
    assert!(is_conflict(s.accept(dup_message).await, "message"));
    let dup_rcpt = batch(vec![message(
        "ten_a",
        "msg_3",
        1_000,
        &["rcpt_3", "rcpt_1"],
    )]);
    assert!(is_conflict(s.accept(dup_rcpt).await, "recipient"));
    let dup_in_batch = batch(vec![
        message("ten_a", "msg_4", 1_000, &["rcpt_4"]),
        message("ten_a", "msg_4", 1_000, &["rcpt_5"]),
    ]);
    assert!(is_conflict(s.accept(dup_in_batch).await, "message"));

    for id in ["msg_2", "msg_3", "msg_4"] {
        assert!(
            s.get_message("ten_a", id).await.expect("get").is_none(),
            "{id} rolled back"
        );
    }
    let all = s.list_events(events("ten_a", 100)).await.expect("list");
    assert_eq!(all.len(), 1, "no events of failed batches");
    assert_eq!(
        s.claim_due("n", 5_000, 6_000, 100)
            .await
            .expect("claim")
            .len(),
        1,
        "only rcpt_1 exists"
    );
}

pub(super) fn idem(tenant: &str, created_at: i64, response: &str) -> IdempotencyRecord {
    IdempotencyRecord {
        tenant_id: tenant.into(),
        key_hash: vec![0xab; 32],
        created_at,
        response_enc: response.as_bytes().to_vec(),
    }
}

pub async fn idempotency(s: AnyStore) {
    let t = 10_000_000;
    let first = AcceptBatch {
        messages: vec![message("ten_a", "msg_1", t, &["rcpt_1"])],
        idempotency: Some(idem("ten_a", t, "resp-1")),
        lease: None,
        progress: None,
    };
    s.accept(first).await.expect("first accept");
    let got = s
        .get_idempotency("ten_a", &[0xab; 32], t - IDEMPOTENCY_TTL_MS)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.tenant_id, "ten_a");
    assert_eq!(got.key_hash, vec![0xab; 32]);
    assert_eq!(got.created_at, t);
    assert_eq!(got.response_enc, b"resp-1");
    assert!(
        s.get_idempotency("ten_a", &[0xab; 32], t + 1)
            .await
            .expect("get")
            .is_none(),
        "since"
    );
    assert!(
        s.get_idempotency("ten_a", &[0xcd; 32], 0)
            .await
            .expect("get")
            .is_none(),
        "other key"
    );
    assert!(
        s.get_idempotency("ten_b", &[0xab; 32], 0)
            .await
            .expect("get")
            .is_none(),
        "other tenant"
    );

    // Same key again: refused, and nothing of the batch is stored.
    let again = AcceptBatch {
        messages: vec![message("ten_a", "msg_2", t + 1, &["rcpt_2"])],
        idempotency: Some(idem("ten_a", t + 1, "resp-2")),
        lease: None,
        progress: None,
    };
    assert!(is_conflict(s.accept(again).await, "idempotency key"));
    assert!(
        s.get_message("ten_a", "msg_2")
            .await
            .expect("get")
            .is_none()
    );
    // Exactly TTL old is still remembered.
    let at_ttl = AcceptBatch {
        messages: vec![message(
            "ten_a",
            "msg_3",
            t + IDEMPOTENCY_TTL_MS,
            &["rcpt_3"],
        )],
        idempotency: Some(idem("ten_a", t + IDEMPOTENCY_TTL_MS, "resp-3")),
        lease: None,
        progress: None,
    };
    assert!(is_conflict(s.accept(at_ttl).await, "idempotency key"));
    let got = s
        .get_idempotency("ten_a", &[0xab; 32], 0)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.response_enc, b"resp-1", "unchanged by refused accepts");

    // Older than the TTL: overwritten.
    let later = t + IDEMPOTENCY_TTL_MS + 1;
    let fresh = AcceptBatch {
        messages: vec![message("ten_a", "msg_4", later, &["rcpt_4"])],
        idempotency: Some(idem("ten_a", later, "resp-4")),
        lease: None,
        progress: None,
    };
    s.accept(fresh).await.expect("expired key is reusable");
    let got = s
        .get_idempotency("ten_a", &[0xab; 32], 0)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.created_at, later);
    assert_eq!(got.response_enc, b"resp-4");
    assert!(
        s.get_message("ten_a", "msg_4")
            .await
            .expect("get")
            .is_some()
    );

    // Keys are per tenant; a batch may carry only the record.
    let other = AcceptBatch {
        messages: Vec::new(),
        idempotency: Some(idem("ten_b", t, "resp-b")),
        lease: None,
        progress: None,
    };
    s.accept(other).await.expect("same key, other tenant");
    let got = s
        .get_idempotency("ten_b", &[0xab; 32], 0)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.response_enc, b"resp-b");
}

pub async fn load_content(s: AnyStore) {
    let mut m1 = message("ten_a", "msg_1", 1_000, &["rcpt_1"]);
    m1.mail_from_enc = Some(b"from:msg_1".to_vec());
    m1.from_domain = "mail.example.com".into();
    let mut m2 = message("ten_b", "msg_2", 1_000, &["rcpt_2"]);
    m2.stream = "broadcast".into();
    s.accept(batch(vec![m1, m2])).await.expect("accept");

    let c = s
        .load_content("msg_1")
        .await
        .expect("load")
        .expect("content");
    assert_eq!(c.tenant_id, "ten_a");
    assert_eq!(c.stream, "transactional");
    assert_eq!(c.from_domain, "mail.example.com");
    assert_eq!(c.content_enc.as_deref(), Some(b"content:msg_1".as_slice()));
    assert_eq!(c.mail_from_enc.as_deref(), Some(b"from:msg_1".as_slice()));
    let c = s
        .load_content("msg_2")
        .await
        .expect("load")
        .expect("content");
    assert_eq!(c.tenant_id, "ten_b");
    assert_eq!(c.stream, "broadcast");
    assert_eq!(c.content_enc.as_deref(), Some(b"content:msg_2".as_slice()));
    assert_eq!(c.mail_from_enc, None);
    assert!(s.load_content("msg_missing").await.expect("load").is_none());
}

pub async fn list_messages_filters(s: AnyStore) {
    seed_events(&s).await;
    let ids = |f: MessageFilter| {
        let s = s.clone();
        async move {
            s.list_messages(f)
                .await
                .expect("list")
                .iter()
                .map(|m| m.id.clone())
                .collect::<Vec<_>>()
        }
    };
    let all = |limit| MessageFilter {
        tenant_id: "ten_a".into(),
        limit,
        ..MessageFilter::default()
    };
    assert_eq!(
        ids(all(10)).await,
        vec!["msg_2", "msg_1"],
        "newest first, own tenant"
    );
    assert_eq!(ids(all(1)).await, vec!["msg_2"]);
    let page = MessageFilter {
        before_id: Some("msg_2".into()),
        ..all(10)
    };
    assert_eq!(ids(page).await, vec!["msg_1"], "the cursor");
    let m = s.list_messages(all(10)).await.expect("list");
    assert_eq!(m[1].recipients.len(), 2);
    assert!(!m[1].events.is_empty());
    for (filter, want) in [
        (
            MessageFilter {
                stream: Some("broadcast".into()),
                ..all(10)
            },
            vec!["msg_2"],
        ),
        (
            MessageFilter {
                tag_hash: Some(b"tag:msg_1".to_vec()),
                ..all(10)
            },
            vec!["msg_1"],
        ),
        (
            MessageFilter {
                rcpt_hash: Some(hash("r2b")),
                ..all(10)
            },
            vec!["msg_2"],
        ),
        (
            MessageFilter {
                rcpt_hash: Some(hash("r3a")),
                ..all(10)
            },
            vec![],
        ),
        (
            MessageFilter {
                since: Some(1_500),
                ..all(10)
            },
            vec!["msg_2"],
        ),
        (
            MessageFilter {
                until: Some(1_500),
                ..all(10)
            },
            vec!["msg_1"],
        ),
    ] {
        assert_eq!(ids(filter.clone()).await, want, "{filter:?}");
    }
}

/// The largest batches the API produces (500 messages) round-trip intact.
pub async fn large_batches(s: AnyStore) {
    const MESSAGES: usize = 500;
    let names: Vec<[String; 2]> = (0..MESSAGES)
        .map(|i| [format!("r{i:03}a"), format!("r{i:03}b")])
        .collect();
    let messages: Vec<NewMessage> = names
        .iter()
        .enumerate()
        .map(|(i, [a, b])| {
            let mut m = message("ten_a", &format!("msg_{i:03}"), 1_000 + i as i64, &[a, b]);
            m.mail_from_enc = (i % 2 == 0).then(|| format!("from:{i}").into_bytes());
            m.content_enc = vec![i as u8; 4_096];
            m
        })
        .collect();
    s.accept(batch(messages))
        .await
        .expect("accept 500 messages");

    let all = s.list_events(events("ten_a", 5_000)).await.expect("list");
    assert_eq!(all.len(), MESSAGES * 2);
    let expected: Vec<&str> = names
        .iter()
        .flat_map(|[a, b]| [a.as_str(), b.as_str()])
        .collect();
    let got: Vec<&str> = all.iter().map(|e| e.recipient_id.as_str()).collect();
    assert_eq!(got, expected, "accepted events in batch order");
    let c = s
        .load_content("msg_257")
        .await
        .expect("load")
        .expect("content");
    assert_eq!(c.content_enc, Some(vec![1; 4_096]));
    assert_eq!(c.mail_from_enc, None);
    let c = s
        .load_content("msg_256")
        .await
        .expect("load")
        .expect("content");
    assert_eq!(c.mail_from_enc.as_deref(), Some(b"from:256".as_slice()));

    let due = s
        .claim_due("node-a", 10_000, 20_000, 5_000)
        .await
        .expect("claim");
    assert_eq!(due.len(), MESSAGES * 2);
    let updates: Vec<DeliveryUpdate> = due
        .iter()
        .map(|d| {
            let (status, next) = if d.id.ends_with('a') {
                (RecipientStatus::Delivered, None)
            } else {
                (RecipientStatus::Deferred, Some(30_000))
            };
            update("ten_a", &d.message_id, &d.id, status, next, 11_000)
        })
        .collect();
    s.record_deliveries(updates)
        .await
        .expect("record 1000 outcomes");
    assert_eq!(s.release_leases("node-a").await.expect("release"), 0);
    let m = s
        .get_message("ten_a", "msg_499")
        .await
        .expect("get")
        .expect("message");
    let state: Vec<(RecipientStatus, i64)> = m
        .recipients
        .iter()
        .map(|r| (r.status, r.attempts))
        .collect();
    assert_eq!(
        state,
        [
            (RecipientStatus::Delivered, 1),
            (RecipientStatus::Deferred, 1)
        ]
    );
    assert_eq!(m.events.len(), 4);
    let later = s
        .claim_due("node-b", 30_000, 40_000, 5_000)
        .await
        .expect("claim");
    assert_eq!(later.len(), MESSAGES, "only the deferred half comes back");
    assert!(later.iter().all(|d| d.id.ends_with('b') && d.attempts == 1));
}

/// Suppressed recipients are stored final with a `suppressed` event, and are
/// never due or leased; queued ones of the same message behave as always.
pub async fn accept_suppressed_recipients(s: AnyStore) {
    let m1 = message_suppressing("ten_a", "msg_1", 1_000, &["r1q", "r1s"], &["r1s"]);
    s.accept(batch(vec![m1.clone()])).await.expect("accept");
    // With a lease: only the queued recipient is leased. A message may be
    // entirely suppressed.
    let leased = AcceptBatch {
        messages: vec![
            message_suppressing("ten_a", "msg_2", 1_000, &["r2q", "r2s"], &["r2s"]),
            message_suppressing("ten_a", "msg_3", 1_000, &["r3s"], &["r3s"]),
        ],
        idempotency: None,
        lease: Some(("node-x".into(), 500_000)),
        progress: None,
    };
    s.accept(leased).await.expect("accept leased");

    let got = s
        .get_message("ten_a", "msg_1")
        .await
        .expect("get")
        .expect("message");
    let state = recipient_states(&got);
    assert_eq!(
        state,
        [
            ("r1q", RecipientStatus::Queued, 0, Some(1_000), 1_000),
            ("r1s", RecipientStatus::Suppressed, 0, None, 1_000),
        ]
    );
    for (r, want) in got.recipients.iter().zip(&m1.recipients) {
        assert_eq!(r.rcpt_hash, want.rcpt_hash);
        assert_eq!(r.address_enc, want.address_enc);
        assert_eq!(r.domain, want.domain);
    }
    assert_eq!(
        timeline(&got.events),
        tl(&[("r1q", EventType::Accepted), ("r1s", EventType::Suppressed)]),
        "one event per recipient, in recipient order"
    );
    for e in &got.events {
        assert_eq!(e.message_id, "msg_1");
        assert_eq!(e.tenant_id, "ten_a");
        assert_eq!(e.rcpt_hash, hash(&e.recipient_id));
        assert_eq!(e.at, 1_000);
        assert_eq!(e.detail_enc, None);
    }
    let m3 = s
        .get_message("ten_a", "msg_3")
        .await
        .expect("get")
        .expect("message");
    assert_eq!(m3.recipients.len(), 1);
    assert_eq!(m3.recipients[0].status, RecipientStatus::Suppressed);
    assert_eq!(m3.recipients[0].next_attempt_at, None);
    assert_eq!(timeline(&m3.events), tl(&[("r3s", EventType::Suppressed)]));

    let suppressed = s
        .list_events(EventFilter {
            event_type: Some(EventType::Suppressed),
            ..events("ten_a", 100)
        })
        .await
        .expect("list");
    assert_eq!(
        timeline(&suppressed),
        tl(&[
            ("r1s", EventType::Suppressed),
            ("r2s", EventType::Suppressed),
            ("r3s", EventType::Suppressed),
        ])
    );

    // Only r1q is due and free (r2q is leased by node-x).
    let got = s
        .claim_due("node-a", 100_000, 200_000, 100)
        .await
        .expect("claim");
    assert_eq!(ids(&got), strings(&["r1q"]));
    assert_eq!(
        s.release_leases("node-x").await.expect("release"),
        1,
        "only the queued recipient of the leased batch was leased"
    );
    let got = s
        .claim_due("node-b", 100_000, 200_000, 100)
        .await
        .expect("claim");
    assert_eq!(ids(&got), strings(&["r2q"]));
    // Every lease expired: still nothing suppressed is ever due.
    let got = s
        .claim_due("node-c", 1_000_000, 2_000_000, 100)
        .await
        .expect("claim");
    assert_eq!(ids(&got), strings(&["r1q", "r2q"]));

    // Any other status refuses the whole batch.
    let mut bad = message("ten_a", "msg_4", 1_000, &["r4a", "r4b"]);
    bad.recipients[1].status = RecipientStatus::Delivered;
    assert!(
        matches!(
            s.accept(batch(vec![message("ten_a", "msg_5", 1_000, &["r5"]), bad]))
                .await,
            Err(StoreError::Unavailable(_))
        ),
        "a new recipient must be queued or suppressed"
    );
    for id in ["msg_4", "msg_5"] {
        assert!(
            s.get_message("ten_a", id).await.expect("get").is_none(),
            "{id} rolled back"
        );
    }
    assert_eq!(
        s.list_events(events("ten_a", 100))
            .await
            .expect("list")
            .len(),
        5
    );
}
