//! Listing events and the event cursor.

use super::*;

/// Tenant A: msg_1 (r1a, r1b) at 1000, msg_2 (r2a, r2b) at 2000, then outcomes;
/// tenant B: msg_3 (r3a) at 1500 with the same blind index as r1a.
pub(super) async fn seed_events(s: &AnyStore) {
    let mut m3 = message("ten_b", "msg_3", 1_500, &["r3a"]);
    m3.recipients[0].rcpt_hash = hash("r1a");
    s.accept(batch(vec![message(
        "ten_a",
        "msg_1",
        1_000,
        &["r1a", "r1b"],
    )]))
    .await
    .expect("accept");
    s.accept(batch(vec![m3])).await.expect("accept");
    let mut m2 = message("ten_a", "msg_2", 2_000, &["r2a", "r2b"]);
    m2.stream = "broadcast".into();
    s.accept(batch(vec![m2])).await.expect("accept");
    s.record_deliveries(vec![
        update(
            "ten_a",
            "msg_1",
            "r1a",
            RecipientStatus::Delivered,
            None,
            3_000,
        ),
        update(
            "ten_b",
            "msg_3",
            "r3a",
            RecipientStatus::Delivered,
            None,
            3_200,
        ),
    ])
    .await
    .expect("record");
    s.record_deliveries(vec![
        update(
            "ten_a",
            "msg_2",
            "r2a",
            RecipientStatus::Deferred,
            Some(9_000),
            3_500,
        ),
        update(
            "ten_a",
            "msg_1",
            "r1b",
            RecipientStatus::Bounced,
            None,
            4_000,
        ),
    ])
    .await
    .expect("record");
}

pub(super) fn timeline(events: &[EventRecord]) -> Vec<(String, EventType)> {
    events
        .iter()
        .map(|e| (e.recipient_id.clone(), e.event_type))
        .collect()
}

pub(super) fn tl(items: &[(&str, EventType)]) -> Vec<(String, EventType)> {
    items.iter().map(|(r, t)| (r.to_string(), *t)).collect()
}

pub async fn list_events_filters(s: AnyStore) {
    use EventType::*;
    seed_events(&s).await;

    let all = s.list_events(events("ten_a", 100)).await.expect("list");
    assert_eq!(
        timeline(&all),
        tl(&[
            ("r1a", Accepted),
            ("r1b", Accepted),
            ("r2a", Accepted),
            ("r2b", Accepted),
            ("r1a", Delivered),
            ("r2a", Deferred),
            ("r1b", Bounced),
        ])
    );
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(all.iter().all(|e| e.tenant_id == "ten_a"));
    let b = s.list_events(events("ten_b", 100)).await.expect("list");
    assert_eq!(timeline(&b), tl(&[("r3a", Accepted), ("r3a", Delivered)]));

    let by_message = s
        .list_events(EventFilter {
            message_id: Some("msg_1".into()),
            ..events("ten_a", 100)
        })
        .await
        .expect("list");
    assert_eq!(
        timeline(&by_message),
        tl(&[
            ("r1a", Accepted),
            ("r1b", Accepted),
            ("r1a", Delivered),
            ("r1b", Bounced)
        ])
    );
    let filtered = |f: EventFilter| {
        let s = s.clone();
        async move { timeline(&s.list_events(f).await.expect("list")) }
    };
    assert_eq!(
        filtered(EventFilter {
            stream: Some("broadcast".into()),
            ..events("ten_a", 100)
        })
        .await,
        tl(&[("r2a", Accepted), ("r2b", Accepted), ("r2a", Deferred)])
    );
    assert_eq!(
        filtered(EventFilter {
            tag_hash: Some(b"tag:msg_2".to_vec()),
            until: Some(2_001),
            ..events("ten_a", 100)
        })
        .await,
        tl(&[("r2a", Accepted), ("r2b", Accepted)]),
        "tag and time window"
    );
    assert_eq!(
        filtered(EventFilter {
            tag_hash: Some(b"tag:all".to_vec()),
            ..events("ten_a", 100)
        })
        .await
        .len(),
        all.len(),
        "a tag shared with tenant B's message matches only tenant A's"
    );
    assert!(
        filtered(EventFilter {
            tag_hash: Some(b"tag:msg_3".to_vec()),
            ..events("ten_a", 100)
        })
        .await
        .is_empty()
    );
    let other_tenant = s
        .list_events(EventFilter {
            message_id: Some("msg_3".into()),
            ..events("ten_a", 100)
        })
        .await
        .expect("list");
    assert!(other_tenant.is_empty(), "a message of another tenant");

    let by_rcpt = s
        .list_events(EventFilter {
            rcpt_hash: Some(hash("r1a")),
            ..events("ten_a", 100)
        })
        .await
        .expect("list");
    assert_eq!(
        timeline(&by_rcpt),
        tl(&[("r1a", Accepted), ("r1a", Delivered)]),
        "not tenant B's r3a"
    );

    let by_type = s
        .list_events(EventFilter {
            event_type: Some(Delivered),
            ..events("ten_a", 100)
        })
        .await
        .expect("list");
    assert_eq!(timeline(&by_type), tl(&[("r1a", Delivered)]));

    let since = s
        .list_events(EventFilter {
            since: Some(2_000),
            ..events("ten_a", 100)
        })
        .await
        .expect("list");
    assert_eq!(
        timeline(&since),
        tl(&[
            ("r2a", Accepted),
            ("r2b", Accepted),
            ("r1a", Delivered),
            ("r2a", Deferred),
            ("r1b", Bounced)
        ]),
        "since is inclusive"
    );

    let combined = s
        .list_events(EventFilter {
            message_id: Some("msg_2".into()),
            event_type: Some(Accepted),
            since: Some(1_999),
            ..events("ten_a", 100)
        })
        .await
        .expect("list");
    assert_eq!(
        timeline(&combined),
        tl(&[("r2a", Accepted), ("r2b", Accepted)])
    );

    let limited = s.list_events(events("ten_a", 3)).await.expect("list");
    assert_eq!(
        timeline(&limited),
        timeline(&all[..3]),
        "limit keeps the first events"
    );
    let zero = s.list_events(events("ten_a", 0)).await.expect("list");
    assert_eq!(zero.len(), 1, "a zero limit is treated as 1");
}

pub async fn list_events_pagination(s: AnyStore) {
    seed_events(&s).await;
    let all = s.list_events(events("ten_a", 100)).await.expect("list");
    assert_eq!(all.len(), 7);

    for (filter, expected) in [
        (events("ten_a", 2), all.clone()),
        (
            EventFilter {
                event_type: Some(EventType::Accepted),
                ..events("ten_a", 3)
            },
            all.iter()
                .filter(|e| e.event_type == EventType::Accepted)
                .cloned()
                .collect(),
        ),
    ] {
        let mut cursor = None;
        let mut seen: Vec<i64> = Vec::new();
        let mut pages = 0;
        loop {
            let page = s
                .list_events(EventFilter {
                    after_seq: cursor,
                    ..filter.clone()
                })
                .await
                .expect("page");
            assert!(page.len() <= filter.limit, "page larger than the limit");
            let Some(last) = page.last() else { break };
            cursor = Some(last.seq);
            seen.extend(page.iter().map(|e| e.seq));
            pages += 1;
            assert!(pages < 20, "pagination does not end");
        }
        let want: Vec<i64> = expected.iter().map(|e| e.seq).collect();
        assert_eq!(seen, want, "every event once, in order");
        assert_eq!(pages, want.len().div_ceil(filter.limit));
    }

    let last = all.last().expect("events").seq;
    let after_last = s
        .list_events(EventFilter {
            after_seq: Some(last),
            ..events("ten_a", 10)
        })
        .await
        .expect("list");
    assert!(after_last.is_empty());
    let middle = s
        .list_events(EventFilter {
            after_seq: Some(all[2].seq),
            ..events("ten_a", 10)
        })
        .await
        .expect("list");
    assert_eq!(
        middle.iter().map(|e| e.seq).collect::<Vec<_>>(),
        all[3..].iter().map(|e| e.seq).collect::<Vec<_>>()
    );
}

/// A reader paging with `after_seq` while several writers commit concurrently
/// sees every event: a smaller `seq` is never committed after a larger one.
pub async fn event_cursor_under_concurrent_writes(s: AnyStore) {
    const WRITERS: usize = 4;
    const BATCHES: usize = 30;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 0..BATCHES {
                    let id = format!("msg_{w}_{i}");
                    let rcpts = [
                        format!("r_{w}_{i}_a"),
                        format!("r_{w}_{i}_b"),
                        format!("r_{w}_{i}_c"),
                    ];
                    let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
                    let messages = vec![message("ten_a", &id, 1_000, &rcpts)];
                    s.accept(batch(messages)).await.expect("accept");
                    let updates = rcpts
                        .iter()
                        .map(|r| update("ten_a", &id, r, RecipientStatus::Delivered, None, 2_000))
                        .collect();
                    s.record_deliveries(updates).await.expect("record");
                }
            })
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (s, done) = (s.clone(), done.clone());
        tokio::spawn(async move {
            let mut cursor = None;
            let mut seen = Vec::new();
            loop {
                // Read the flag first: if the writers had finished before this
                // page was read, an empty page means everything was seen.
                let finished = done.load(Ordering::SeqCst);
                let page = s
                    .list_events(EventFilter {
                        after_seq: cursor,
                        ..events("ten_a", 50)
                    })
                    .await
                    .expect("page");
                match page.last() {
                    Some(last) => cursor = Some(last.seq),
                    None if finished => return seen,
                    None => tokio::task::yield_now().await,
                }
                seen.extend(page.iter().map(|e| e.seq));
            }
        })
    };
    for w in writers {
        w.await.expect("writer");
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.expect("reader");
    let all: Vec<i64> = s
        .list_events(events("ten_a", 10_000))
        .await
        .expect("list")
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(all.len(), WRITERS * BATCHES * 6);
    let missed = all.iter().filter(|q| !seen.contains(q)).count();
    assert_eq!(
        missed, 0,
        "the cursor skipped {missed} events committed out of seq order"
    );
    assert_eq!(seen, all);
}
