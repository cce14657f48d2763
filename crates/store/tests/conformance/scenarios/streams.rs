//! Stream pauses and the circuit breaker's figures.

use super::*;

pub(super) fn in_stream(mut m: NewMessage, stream: &str) -> NewMessage {
    m.stream = stream.into();
    m
}

pub(super) fn stream_pause(stream: &str, reason: Option<&str>, at: i64) -> StreamPause {
    StreamPause {
        tenant_id: "ten_a".into(),
        stream: stream.into(),
        reason: reason.map(str::to_string),
        initial_settings: "{}".into(),
        at,
        detail_enc: Some(b"sealed".to_vec()),
    }
}

/// Streams are stored per tenant; pausing holds the stream's waiting mail (leased
/// or not) and resuming queues it again, each with a stream event that webhooks
/// filtered by stream receive.
pub async fn streams_pause_and_resume(s: AnyStore) {
    let rec = |tenant: &str, name: &str, settings: &str| StreamRecord {
        tenant_id: tenant.into(),
        name: name.into(),
        settings: settings.into(),
        paused_at: None,
        pause_reason: None,
        resumed_at: None,
        created_at: 100,
        updated_at: 100,
    };
    s.insert_stream(rec("ten_a", "newsletters", "{}"))
        .await
        .expect("insert");
    assert!(matches!(
        s.insert_stream(rec("ten_a", "newsletters", "{}")).await,
        Err(StoreError::Conflict("stream"))
    ));
    s.insert_stream(rec("ten_b", "newsletters", "{}"))
        .await
        .expect("same name, other tenant");
    s.put_stream_settings("ten_a", "newsletters", r#"{"priority":3}"#.into(), 200)
        .await
        .expect("update");
    s.put_stream_settings("ten_a", "broadcast", r#"{"priority":7}"#.into(), 200)
        .await
        .expect("a built-in stream gets a row");
    let listed = s.list_streams(Some("ten_a")).await.expect("list");
    assert_eq!(
        listed
            .iter()
            .map(|r| (
                r.name.as_str(),
                r.settings.as_str(),
                r.created_at,
                r.updated_at
            ))
            .collect::<Vec<_>>(),
        [
            ("broadcast", r#"{"priority":7}"#, 200, 200),
            ("newsletters", r#"{"priority":3}"#, 100, 200)
        ]
    );
    assert_eq!(s.list_streams(None).await.expect("all").len(), 3);

    let hook = WebhookRecord {
        id: "wh_1".into(),
        tenant_id: "ten_a".into(),
        url: "https://hooks.example/1".into(),
        events: vec!["stream_paused".into(), "stream_resumed".into()],
        streams: vec!["broadcast".into()],
        secret_enc: b"sealed".to_vec(),
        previous_secret_enc: None,
        previous_until: None,
        created_at: 500,
        disabled_at: None,
        failing_since: None,
    };
    s.insert_webhook(hook).await.expect("hook");
    s.accept(batch(vec![
        in_stream(message("ten_a", "msg_1", 1_000, &["r1", "r2"]), "broadcast"),
        message("ten_a", "msg_2", 1_500, &["r3"]),
    ]))
    .await
    .expect("accept");
    // One of them is leased (in some node's memory) when the stream pauses: it is
    // held as well.
    let claimed = s.claim_due("n1", 1_000, 60_000, 1).await.expect("claim");
    assert_eq!(claimed.len(), 1);

    assert!(
        s.pause_stream(stream_pause("broadcast", Some("complaints"), 2_000))
            .await
            .expect("pause")
    );
    assert!(
        !s.pause_stream(stream_pause("broadcast", Some("again"), 2_100))
            .await
            .expect("already paused")
    );
    let row = s.list_streams(Some("ten_a")).await.expect("list").remove(0);
    assert_eq!(
        (row.paused_at, row.pause_reason.as_deref()),
        (Some(2_000), Some("complaints"))
    );
    assert_eq!(
        ids(&s.claim_due("n1", 3_000, 60_000, 10).await.expect("claim")),
        ["r3"]
    );
    let depth = s.queue_depth(Some("ten_a")).await.expect("depth");
    assert_eq!(
        depth
            .iter()
            .map(|d| (d.stream.as_str(), d.status, d.recipients))
            .collect::<Vec<_>>(),
        [
            ("broadcast", RecipientStatus::Suspended, 2),
            ("transactional", RecipientStatus::Queued, 1)
        ]
    );
    let m = s
        .get_message("ten_a", "msg_1")
        .await
        .expect("get")
        .expect("msg_1");
    assert!(
        m.recipients
            .iter()
            .all(|r| r.status == RecipientStatus::Suspended)
    );

    assert!(
        s.pause_stream(stream_pause("broadcast", None, 4_000))
            .await
            .expect("resume")
    );
    let row = s.list_streams(Some("ten_a")).await.expect("list").remove(0);
    assert_eq!(
        (row.paused_at, row.resumed_at, row.updated_at),
        (None, Some(4_000), 4_000)
    );
    assert!(
        !s.pause_stream(stream_pause("broadcast", None, 4_100))
            .await
            .expect("not paused")
    );
    assert_eq!(
        ids(&s.claim_due("n1", 4_000, 60_000, 10).await.expect("claim")),
        ["r1", "r2"]
    );

    let mut f = events("ten_a", 100);
    f.stream = Some("broadcast".into());
    let evs = s.list_events(f).await.expect("events");
    let stream_events: Vec<_> = evs
        .iter()
        .filter(|e| e.stream.is_some())
        .map(|e| {
            (
                e.event_type,
                e.stream.as_deref(),
                e.message_id.as_str(),
                e.at,
            )
        })
        .collect();
    assert_eq!(
        stream_events,
        [
            (EventType::StreamPaused, Some("broadcast"), "", 2_000),
            (EventType::StreamResumed, Some("broadcast"), "", 4_000)
        ]
    );
    assert_eq!(
        evs.iter()
            .filter(|e| e.event_type == EventType::Resumed)
            .count(),
        2,
        "each held recipient's timeline shows the resumption"
    );
    let posted = s
        .claim_webhook_deliveries("n", 10_000, 20_000, 10)
        .await
        .expect("claim hooks");
    // The stream-filtered hook gets the stream's events, in order: the resumption
    // follows once the pause is posted.
    let paused_seq = evs
        .iter()
        .find(|e| e.event_type == EventType::StreamPaused)
        .map(|e| e.seq);
    assert_eq!(
        posted.iter().map(|d| d.event_seq).collect::<Vec<_>>(),
        paused_seq.into_iter().collect::<Vec<_>>()
    );
    // A paused custom stream of another tenant is its own.
    assert!(
        s.pause_stream(StreamPause {
            tenant_id: "ten_b".into(),
            ..stream_pause("newsletters", Some("x"), 5_000)
        })
        .await
        .expect("pause b")
    );
    assert!(
        s.list_streams(Some("ten_a"))
            .await
            .expect("list")
            .iter()
            .all(|r| r.paused_at.is_none())
    );
}

/// The circuit breaker's window: the latest finished recipients of one stream.
pub async fn stream_outcomes(s: AnyStore) {
    let rcpts: Vec<String> = (0..6).map(|i| format!("r{i}")).collect();
    let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    s.accept(batch(vec![
        in_stream(message("ten_a", "msg_1", 1_000, &refs), "broadcast"),
        message("ten_a", "msg_2", 1_000, &["t1"]),
    ]))
    .await
    .expect("accept");
    let outcome = |i: usize| match i {
        0 | 1 => RecipientStatus::Bounced,
        5 => RecipientStatus::Deferred,
        _ => RecipientStatus::Delivered,
    };
    s.record_deliveries(
        (0..6)
            .map(|i| {
                update(
                    "ten_a",
                    "msg_1",
                    &rcpts[i],
                    outcome(i),
                    (i == 5).then_some(9_000),
                    2_000 + i as i64,
                )
            })
            .chain([update(
                "ten_a",
                "msg_2",
                "t1",
                RecipientStatus::Bounced,
                None,
                2_000,
            )])
            .collect(),
    )
    .await
    .expect("record");
    s.record_reports(vec![ReportUpdate {
        recipient_id: "r4".into(),
        message_id: "msg_1".into(),
        tenant_id: "ten_a".into(),
        rcpt_hash: hash("r4"),
        event: EventType::Complained,
        status_if_delivered: None,
        at: 3_000,
        detail_enc: b"sealed".to_vec(),
        dims: StatDims::default(),
    }])
    .await
    .expect("complaint");
    assert_eq!(
        s.stream_outcomes("ten_a", "broadcast", 0, 500)
            .await
            .expect("outcomes"),
        StreamOutcomes {
            finished: 5,
            bounced: 2,
            complained: 1
        }
    );
    // The window holds the most recent: r2 (delivered), r3, r4 (complained).
    assert_eq!(
        s.stream_outcomes("ten_a", "broadcast", 0, 3)
            .await
            .expect("window"),
        StreamOutcomes {
            finished: 3,
            bounced: 0,
            complained: 1
        }
    );
    assert_eq!(
        s.stream_outcomes("ten_a", "transactional", 0, 500)
            .await
            .expect("other stream"),
        StreamOutcomes {
            finished: 1,
            bounced: 1,
            complained: 0
        }
    );
    assert_eq!(
        s.stream_outcomes("ten_b", "broadcast", 0, 500)
            .await
            .expect("other tenant"),
        StreamOutcomes::default()
    );
    // Only outcomes after a resumption count.
    assert_eq!(
        s.stream_outcomes("ten_a", "broadcast", 2_002, 500)
            .await
            .expect("since"),
        StreamOutcomes {
            finished: 2,
            bounced: 0,
            complained: 1
        }
    );
}
