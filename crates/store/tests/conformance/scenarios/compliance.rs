//! Retention, the request register and the breach register.

use super::*;

/// Retention: content of settled messages goes first, then events and the
/// messages themselves; anything still queued or deferred is kept whole; the
/// limit bounds each call.
pub async fn retention_purge(s: AnyStore) {
    s.accept(batch(vec![
        message("ten_a", "old_done", 1_000, &["a1"]),
        message("ten_a", "old_busy", 1_000, &["b1", "b2"]),
        message("ten_a", "new_done", 5_000, &["c1"]),
    ]))
    .await
    .expect("accept");
    s.claim_due("node", 6_000, 7_000, 10).await.expect("claim");
    s.record_deliveries(vec![
        update(
            "ten_a",
            "old_done",
            "a1",
            RecipientStatus::Delivered,
            None,
            1_100,
        ),
        update(
            "ten_a",
            "old_busy",
            "b1",
            RecipientStatus::Delivered,
            None,
            1_100,
        ),
        update(
            "ten_a",
            "old_busy",
            "b2",
            RecipientStatus::Deferred,
            Some(9_000),
            1_100,
        ),
        update(
            "ten_a",
            "new_done",
            "c1",
            RecipientStatus::Delivered,
            None,
            5_100,
        ),
    ])
    .await
    .expect("record");
    let content = |s: &AnyStore, id: &'static str| {
        let s = s.clone();
        async move {
            s.load_content(id)
                .await
                .expect("load")
                .map(|c| c.content_enc.is_some())
        }
    };
    // Content retention only.
    let p = s.purge(cutoffs(2_000, 0, 0, 100)).await.expect("purge");
    assert_eq!(
        p,
        Purged {
            contents: 1,
            ..Purged::default()
        }
    );
    assert_eq!(content(&s, "old_done").await, Some(false));
    assert_eq!(
        content(&s, "old_busy").await,
        Some(true),
        "a deferred recipient keeps its content"
    );
    assert_eq!(content(&s, "new_done").await, Some(true));
    // Event retention, one row of each kind per call.
    let r = cutoffs(2_000, 2_000, 0, 1);
    let first = s.purge(r.clone()).await.expect("purge");
    assert_eq!((first.events, first.messages), (1, 1));
    let mut total = first;
    loop {
        let p = s.purge(r.clone()).await.expect("purge");
        if p.is_empty() {
            break;
        }
        total.events += p.events;
        total.messages += p.messages;
    }
    // Events before 2_000: accepted ×4 (at 1_000 ×3 and 5_000 ×1 — only three
    // old) and three deliveries at 1_100.
    assert_eq!((total.events, total.messages), (6, 1));
    assert!(
        s.get_message("ten_a", "old_done")
            .await
            .expect("get")
            .is_none()
    );
    let busy = s
        .get_message("ten_a", "old_busy")
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(busy.recipients.len(), 2);
    assert!(busy.events.is_empty(), "its old events went");
    let fresh = s
        .get_message("ten_a", "new_done")
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(fresh.events.len(), 2);
}

/// Periods of a tenant, of a stream and of one tenant's stream override the
/// default, the most specific first, one kind at a time.
pub async fn retention_policies(s: AnyStore) {
    let in_stream = |mut m: NewMessage, stream: &str| {
        m.stream = stream.into();
        m
    };
    s.accept(batch(vec![
        in_stream(message("ten_a", "a_bulk", 1_000, &["r1"]), "broadcast"),
        in_stream(message("ten_a", "a_tx", 1_000, &["r2"]), "transactional"),
        in_stream(message("ten_b", "b_bulk", 1_000, &["r3"]), "broadcast"),
        in_stream(message("ten_b", "b_tx", 1_000, &["r4"]), "transactional"),
    ]))
    .await
    .expect("accept");
    s.claim_due("node", 2_000, 3_000, 10).await.expect("claim");
    let done = [
        ("ten_a", "a_bulk", "r1"),
        ("ten_a", "a_tx", "r2"),
        ("ten_b", "b_bulk", "r3"),
        ("ten_b", "b_tx", "r4"),
    ]
    .map(|(t, m, r)| update(t, m, r, RecipientStatus::Delivered, None, 1_100));
    s.record_deliveries(done.to_vec()).await.expect("record");
    let policy = |tenant: Option<&str>,
                  stream: Option<&str>,
                  content: Option<i64>,
                  events: Option<i64>| RetentionPolicy {
        tenant_id: tenant.map(Into::into),
        stream: stream.map(Into::into),
        content,
        events,
        webhook_logs: None,
    };
    // Now 11_000; by default everything is kept (periods of 100 s).
    let mut r = cutoffs(0, 0, 0, 100);
    r.now = 11_000;
    r.default = RetentionPeriods {
        content: 100_000,
        events: 100_000,
        webhook_logs: 100_000,
    };
    r.policies = vec![
        policy(None, Some("broadcast"), Some(5_000), None),
        policy(Some("ten_a"), None, Some(5_000), None),
        policy(Some("ten_a"), Some("broadcast"), Some(50_000), None),
    ];
    let p = s.purge(r.clone()).await.expect("purge");
    assert_eq!((p.contents, p.events, p.messages), (2, 0, 0));
    let content = |id: &'static str| {
        let s = s.clone();
        async move {
            s.load_content(id)
                .await
                .expect("load")
                .map(|c| c.content_enc.is_some())
        }
    };
    assert_eq!(content("b_bulk").await, Some(false), "the stream's period");
    assert_eq!(content("a_tx").await, Some(false), "the tenant's period");
    assert_eq!(
        content("a_bulk").await,
        Some(true),
        "the tenant's period for the stream beats both"
    );
    assert_eq!(content("b_tx").await, Some(true), "the default");
    // Events: tenant a's period applies to its broadcast stream too, whose own
    // policy leaves events unset.
    r.policies[1].events = Some(5_000);
    let p = s.purge(r).await.expect("purge");
    assert_eq!((p.contents, p.events, p.messages), (0, 4, 2));
    for (tenant, id, kept) in [
        ("ten_a", "a_bulk", false),
        ("ten_a", "a_tx", false),
        ("ten_b", "b_bulk", true),
        ("ten_b", "b_tx", true),
    ] {
        let found = s.get_message(tenant, id).await.expect("get");
        assert_eq!(found.is_some(), kept, "{id}");
    }
}

/// The register of data-subject requests: open until closed once; overdue means
/// open and past due; tenants see only their own.
pub async fn request_register(s: AnyStore) {
    let req = |tenant: &str, kind, due_at| DsarRecord {
        seq: 0,
        tenant_id: tenant.into(),
        kind,
        rcpt_hash: hash("p1"),
        received_at: 1_000,
        due_at,
        status: DsarStatus::Open,
        closed_at: None,
        detail_enc: b"sealed".to_vec(),
    };
    let a = s
        .add_request(req("ten_a", DsarKind::Access, 5_000))
        .await
        .expect("add");
    let b = s
        .add_request(req("ten_a", DsarKind::Erasure, 9_000))
        .await
        .expect("add");
    let c = s
        .add_request(req("ten_a", DsarKind::Objection, 2_000))
        .await
        .expect("add");
    s.add_request(req("ten_b", DsarKind::Access, 1_500))
        .await
        .expect("add");
    assert!(
        s.close_request("ten_a", c, DsarStatus::Rejected, 1_900)
            .await
            .expect("close")
    );
    assert!(
        !s.close_request("ten_a", c, DsarStatus::Completed, 2_000)
            .await
            .expect("twice")
    );
    assert!(
        !s.close_request("ten_b", a, DsarStatus::Completed, 2_000)
            .await
            .expect("other tenant")
    );
    let all = s
        .list_requests("ten_a", None, None, 100)
        .await
        .expect("list");
    let got: Vec<_> = all
        .iter()
        .map(|r| (r.seq, r.kind, r.status, r.closed_at))
        .collect();
    assert_eq!(
        got,
        [
            (a, DsarKind::Access, DsarStatus::Open, None),
            (b, DsarKind::Erasure, DsarStatus::Open, None),
            (c, DsarKind::Objection, DsarStatus::Rejected, Some(1_900)),
        ]
    );
    assert_eq!(
        (
            all[0].rcpt_hash.clone(),
            all[0].detail_enc.clone(),
            all[0].received_at,
            all[0].due_at
        ),
        (hash("p1"), b"sealed".to_vec(), 1_000, 5_000)
    );
    let overdue: Vec<_> = s
        .list_requests("ten_a", Some(6_000), None, 100)
        .await
        .expect("overdue")
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(overdue, [a]);
    let page: Vec<_> = s
        .list_requests("ten_a", None, Some(a), 1)
        .await
        .expect("page")
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(page, [b]);
}

/// The breach register: each step is recorded once; an incident is overdue while
/// a notification is missing past its deadline; tenants see only their own.
pub async fn breach_register(s: AnyStore) {
    let incident = |tenant: &str| IncidentRecord {
        seq: 0,
        tenant_id: tenant.into(),
        detected_at: 1_000,
        authority_due_at: 73_000,
        customers_due_at: 25_000,
        authority_notified_at: None,
        customers_notified_at: None,
        closed_at: None,
        detail_enc: b"sealed".to_vec(),
    };
    let a = s.add_incident(incident("ten_a")).await.expect("add");
    let b = s.add_incident(incident("ten_a")).await.expect("add");
    s.add_incident(incident("ten_b")).await.expect("add");
    let overdue = |at| {
        let s = s.clone();
        async move {
            s.list_incidents("ten_a", Some(at), None, 10)
                .await
                .expect("list")
                .into_iter()
                .map(|i| i.seq)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(overdue(20_000).await, Vec::<i64>::new());
    assert_eq!(
        overdue(30_000).await,
        [a, b],
        "customers not told after 24 h"
    );
    assert!(
        s.step_incident("ten_a", a, IncidentStep::CustomersNotified, 20_000)
            .await
            .expect("step")
    );
    assert!(
        !s.step_incident("ten_a", a, IncidentStep::CustomersNotified, 21_000)
            .await
            .expect("once")
    );
    assert!(
        !s.step_incident("ten_b", b, IncidentStep::Closed, 1)
            .await
            .expect("other tenant")
    );
    assert_eq!(overdue(30_000).await, [b]);
    assert_eq!(
        overdue(80_000).await,
        [a, b],
        "authority not notified after 72 h"
    );
    assert!(
        s.step_incident("ten_a", a, IncidentStep::AuthorityNotified, 60_000)
            .await
            .expect("step")
    );
    assert_eq!(overdue(80_000).await, [b]);
    let all = s
        .list_incidents("ten_a", None, None, 10)
        .await
        .expect("list");
    assert_eq!(
        (
            all[0].customers_notified_at,
            all[0].authority_notified_at,
            all[0].closed_at,
            all[0].detail_enc.clone()
        ),
        (Some(20_000), Some(60_000), None, b"sealed".to_vec())
    );
    assert_eq!(
        s.list_incidents("ten_a", None, Some(a), 10)
            .await
            .expect("page")
            .len(),
        1
    );
}
