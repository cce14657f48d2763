//! Deliverability statistics.

use super::*;

/// Statistics are counted with the events, per hour and dimension.
pub async fn delivery_stats(s: AnyStore) {
    s.accept(batch(vec![
        message("ten_a", "msg_1", 1_000, &["r1", "r2", "r3", "r4"]),
        message("ten_b", "msg_2", 1_000, &["r5"]),
    ]))
    .await
    .expect("accept");
    let bulk = |reason: &str| StatDims {
        stream: "broadcast".into(),
        pool: "bulk".into(),
        source: "ip3".into(),
        site: "gmail".into(),
        reason: reason.into(),
    };
    let with = |mut u: DeliveryUpdate, dims: StatDims| {
        u.dims = dims;
        u
    };
    s.record_deliveries(vec![
        with(
            update(
                "ten_a",
                "msg_1",
                "r1",
                RecipientStatus::Delivered,
                None,
                2_000,
            ),
            bulk(""),
        ),
        with(
            update(
                "ten_a",
                "msg_1",
                "r2",
                RecipientStatus::Delivered,
                None,
                2_500,
            ),
            bulk(""),
        ),
        with(
            update(
                "ten_a",
                "msg_1",
                "r3",
                RecipientStatus::Bounced,
                None,
                3_000,
            ),
            bulk("userunknown"),
        ),
        with(
            update(
                "ten_a",
                "msg_1",
                "r4",
                RecipientStatus::Delivered,
                None,
                3_600_500,
            ),
            bulk(""),
        ),
        with(
            update(
                "ten_b",
                "msg_2",
                "r5",
                RecipientStatus::Delivered,
                None,
                2_000,
            ),
            bulk(""),
        ),
    ])
    .await
    .expect("record");
    s.record_reports(vec![ReportUpdate {
        recipient_id: "r1".into(),
        message_id: "msg_1".into(),
        tenant_id: "ten_a".into(),
        rcpt_hash: hash("r1"),
        event: EventType::Complained,
        status_if_delivered: None,
        at: 4_000,
        detail_enc: b"sealed".to_vec(),
        dims: StatDims {
            stream: "broadcast".into(),
            reason: "feedback".into(),
            ..StatDims::default()
        },
    }])
    .await
    .expect("complaint");
    let filter = |f: fn(&mut StatsFilter)| {
        let mut filter = StatsFilter {
            tenant_id: "ten_a".into(),
            from: 0,
            to: 7_200_000,
            ..StatsFilter::default()
        };
        f(&mut filter);
        filter
    };
    let rows = |v: Vec<StatRow>| -> Vec<(i64, EventType, String, u64)> {
        v.into_iter()
            .map(|r| (r.bucket, r.event, r.reason, r.count))
            .collect()
    };
    assert_eq!(
        rows(s.stats(filter(|_| {})).await.expect("stats")),
        [
            (0, EventType::Bounced, "userunknown".to_string(), 1),
            (0, EventType::Complained, "feedback".to_string(), 1),
            (0, EventType::Delivered, String::new(), 2),
            (3_600_000, EventType::Delivered, String::new(), 1),
        ]
    );
    let by_pool = s
        .stats(filter(|f| f.pool = Some("bulk".into())))
        .await
        .expect("pool");
    assert_eq!(
        by_pool.iter().map(|r| r.count).sum::<u64>(),
        4,
        "the complaint has no pool"
    );
    let by_site = s
        .stats(filter(|f| f.site = Some("gmail".into())))
        .await
        .expect("site");
    assert_eq!(by_site.len(), 3);
    assert!(
        s.stats(filter(|f| f.stream = Some("transactional".into())))
            .await
            .expect("stream")
            .is_empty()
    );
    assert_eq!(
        s.stats(filter(|f| f.to = 3_600_000))
            .await
            .expect("range")
            .len(),
        3
    );
    assert_eq!(
        s.attempts_by_source(0).await.expect("by source"),
        [("ip3".to_string(), 5)],
        "every tenant's attempts; the complaint is no attempt"
    );
    assert!(
        s.attempts_by_source(7_200_000)
            .await
            .expect("later")
            .is_empty()
    );
    let b = s
        .stats(filter(|f| f.tenant_id = "ten_b".into()))
        .await
        .expect("b");
    assert_eq!(rows(b), [(0, EventType::Delivered, String::new(), 1)]);
}
