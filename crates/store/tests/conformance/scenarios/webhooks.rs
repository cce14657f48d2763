//! The webhook outbox.

use super::*;

/// Erasure removes the person's contact, consents and events, wipes their
/// recipient rows (unsent ones become suppressed), purges their messages'
/// content, strips sealed addresses from suppressions — and nothing of anyone
/// else.
pub async fn webhook_outbox(s: AnyStore) {
    let hook = |id: &str, tenant: &str, events: &[&str], streams: &[&str]| WebhookRecord {
        id: id.into(),
        tenant_id: tenant.into(),
        url: format!("https://hooks.example/{id}"),
        events: events.iter().map(|e| e.to_string()).collect(),
        streams: streams.iter().map(|e| e.to_string()).collect(),
        secret_enc: b"sealed".to_vec(),
        previous_secret_enc: None,
        previous_until: None,
        created_at: 500,
        disabled_at: None,
        failing_since: None,
    };
    s.insert_webhook(hook("wh_1", "ten_a", &["delivered", "bounced"], &[]))
        .await
        .expect("hook 1");
    s.insert_webhook(hook("wh_2", "ten_a", &[], &["broadcast"]))
        .await
        .expect("hook 2");
    s.insert_webhook(hook("wh_3", "ten_b", &[], &[]))
        .await
        .expect("hook 3");
    assert!(matches!(
        s.insert_webhook(hook("wh_1", "ten_a", &[], &[])).await,
        Err(StoreError::Conflict(_))
    ));
    let listed = s.list_webhooks(Some("ten_a")).await.expect("list");
    assert_eq!(
        listed,
        vec![
            hook("wh_1", "ten_a", &["delivered", "bounced"], &[]),
            hook("wh_2", "ten_a", &[], &["broadcast"])
        ]
    );
    assert_eq!(s.list_webhooks(None).await.expect("all").len(), 3);

    // `accepted` events match no endpoint: wh_1 filters by type, wh_2 by stream.
    s.accept(batch(vec![message("ten_a", "msg_1", 1_000, &["r1", "r2"])]))
        .await
        .expect("accept");
    assert!(
        s.claim_webhook_deliveries("n", 10_000, 20_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    s.record_deliveries(vec![
        update(
            "ten_a",
            "msg_1",
            "r1",
            RecipientStatus::Delivered,
            None,
            2_000,
        ),
        update(
            "ten_a",
            "msg_1",
            "r2",
            RecipientStatus::Bounced,
            None,
            2_100,
        ),
    ])
    .await
    .expect("outcomes");

    // One message's events go out in order: the second waits for the first.
    let first = s
        .claim_webhook_deliveries("n", 10_000, 20_000, 10)
        .await
        .expect("claim");
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(
        (
            first[0].webhook_id.as_str(),
            first[0].message_id.as_str(),
            first[0].attempts
        ),
        ("wh_1", "msg_1", 0)
    );
    let failed = |d: &WebhookDelivery, at: i64, state, next: Option<i64>, code| WebhookOutcome {
        attempt: WebhookAttemptRecord {
            seq: 0,
            delivery_seq: d.seq,
            webhook_id: d.webhook_id.clone(),
            tenant_id: d.tenant_id.clone(),
            event_seq: d.event_seq,
            at,
            status_code: Some(code),
            error: None,
            duration_ms: 5,
            state,
        },
        next_attempt_at: next,
        record: true,
        disable_failing_before: 0,
    };
    let disabled = s
        .finish_webhook_delivery(failed(
            &first[0],
            10_000,
            WebhookDeliveryState::Pending,
            Some(30_000),
            500,
        ))
        .await
        .expect("finish");
    assert!(!disabled);
    assert_eq!(
        s.list_webhooks(Some("ten_a")).await.expect("list")[0].failing_since,
        Some(10_000)
    );
    assert!(
        s.claim_webhook_deliveries("n", 20_000, 25_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let again = s
        .claim_webhook_deliveries("n", 30_000, 40_000, 10)
        .await
        .expect("claim");
    assert_eq!(
        again
            .iter()
            .map(|d| (d.seq, d.attempts))
            .collect::<Vec<_>>(),
        vec![(first[0].seq, 1)]
    );
    s.finish_webhook_delivery(failed(
        &again[0],
        30_000,
        WebhookDeliveryState::Delivered,
        None,
        204,
    ))
    .await
    .expect("finish");
    assert_eq!(
        s.list_webhooks(Some("ten_a")).await.expect("list")[0].failing_since,
        None
    );
    let second = s
        .claim_webhook_deliveries("n", 30_000, 40_000, 10)
        .await
        .expect("claim");
    assert_eq!(second.len(), 1);
    assert!(second[0].event_seq > first[0].event_seq);

    // Failing past the limit disables the endpoint, and its deliveries wait.
    let mut d = failed(
        &second[0],
        31_000,
        WebhookDeliveryState::Pending,
        Some(32_000),
        503,
    );
    d.disable_failing_before = 31_000;
    assert!(
        !s.finish_webhook_delivery(d.clone()).await.expect("finish"),
        "first failure starts the run"
    );
    let second = s
        .claim_webhook_deliveries("n", 32_000, 40_000, 10)
        .await
        .expect("claim");
    let mut d = failed(
        &second[0],
        40_000,
        WebhookDeliveryState::Pending,
        Some(41_000),
        503,
    );
    d.disable_failing_before = 35_000;
    assert!(
        s.finish_webhook_delivery(d).await.expect("finish"),
        "failing since 31 000 < 35 000"
    );
    assert_eq!(
        s.list_webhooks(Some("ten_a")).await.expect("list")[0].disabled_at,
        Some(40_000)
    );
    assert!(
        s.claim_webhook_deliveries("n", 50_000, 60_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );

    // Events keep queueing for a disabled endpoint, to be posted once it resumes.
    s.accept(batch(vec![message("ten_a", "msg_2", 1_000, &["r3"])]))
        .await
        .expect("accept");
    s.record_deliveries(vec![update(
        "ten_a",
        "msg_2",
        "r3",
        RecipientStatus::Delivered,
        None,
        45_000,
    )])
    .await
    .expect("outcome");
    assert!(
        s.claim_webhook_deliveries("n", 50_000, 60_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );

    let attempts = s
        .list_webhook_attempts("ten_a", "wh_1", None, 10)
        .await
        .expect("attempts");
    assert_eq!(
        attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(),
        vec![Some(503), Some(503), Some(204), Some(500)]
    );
    assert_eq!(
        s.list_webhook_attempts("ten_a", "wh_1", Some(attempts[1].seq), 10)
            .await
            .expect("page")
            .len(),
        2
    );
    assert!(
        s.list_webhook_attempts("ten_b", "wh_1", None, 10)
            .await
            .expect("other tenant")
            .is_empty()
    );

    // Re-enabling resumes; replay queues the range again; erasure removes a
    // person's deliveries and attempts; another tenant cannot touch the endpoint.
    let mut w = s.list_webhooks(Some("ten_a")).await.expect("list")[0].clone();
    w.disabled_at = None;
    w.failing_since = None;
    let mut foreign = w.clone();
    foreign.tenant_id = "ten_b".into();
    assert!(!s.update_webhook(foreign).await.expect("foreign update"));
    assert!(s.update_webhook(w).await.expect("enable"));
    assert_eq!(
        s.replay_webhook("ten_a", "wh_1", 0, 2_050, 55_000)
            .await
            .expect("replay"),
        1
    );
    assert_eq!(
        s.replay_webhook("ten_b", "wh_1", 0, 9_000, 55_000)
            .await
            .expect("foreign replay"),
        0
    );
    let e = s.erase_subject("ten_a", &hash("r2")).await.expect("erase");
    assert_eq!(e.webhook_deliveries, 1);
    let left = s
        .claim_webhook_deliveries("n", 60_000, 70_000, 10)
        .await
        .expect("claim");
    assert_eq!(
        left.len(),
        2,
        "the replayed r1 delivery and the one that waited"
    );
    assert!(
        !s.delete_webhook("ten_b", "wh_1")
            .await
            .expect("foreign delete")
    );
    let purged = s.purge(cutoffs(0, 0, 2_050, 100)).await.expect("purge");
    assert_eq!(
        purged.webhook_deliveries, 1,
        "only r1's first delivery is that old"
    );
    assert!(s.delete_webhook("ten_a", "wh_1").await.expect("delete"));
    assert!(
        s.list_webhook_attempts("ten_a", "wh_1", None, 10)
            .await
            .expect("attempts")
            .is_empty()
    );
    assert!(
        s.claim_webhook_deliveries("n", 90_000, 99_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert_eq!(s.list_webhooks(None).await.expect("all").len(), 2);
}
