//! Tenants, API keys, cancellation and deletion.

use super::*;

pub async fn tenants(s: AnyStore) {
    s.insert_tenant(tenant("ten_a", "acme"))
        .await
        .expect("insert tenant");
    let t = s
        .get_tenant("ten_a")
        .await
        .expect("get")
        .expect("tenant exists");
    assert_eq!(t.id, "ten_a");
    assert_eq!(t.name, "acme");
    assert_eq!(t.wrapped_key, b"wrapped:ten_a");
    assert_eq!(t.created_at, 1_000);
    let by_name = s
        .get_tenant_by_name("acme")
        .await
        .expect("get")
        .expect("by name");
    assert_eq!(by_name.id, "ten_a");
    assert!(s.get_tenant("ten_missing").await.expect("get").is_none());
    assert!(
        s.get_tenant_by_name("ACME").await.expect("get").is_none(),
        "names are byte-exact"
    );

    assert!(
        is_conflict(s.insert_tenant(tenant("ten_b", "acme")).await, "tenant"),
        "duplicate name"
    );
    assert!(
        is_conflict(s.insert_tenant(tenant("ten_a", "other")).await, "tenant"),
        "duplicate id"
    );
    assert!(s.get_tenant("ten_b").await.expect("get").is_none());
    assert!(s.get_tenant_by_name("other").await.expect("get").is_none());
    s.insert_tenant(tenant("ten_b", "Acme"))
        .await
        .expect("names differing in case are distinct");
    assert_eq!(
        s.get_tenant_by_name("Acme")
            .await
            .expect("get")
            .expect("found")
            .id,
        "ten_b"
    );
}

pub async fn api_keys(s: AnyStore) {
    let key = ApiKeyRecord {
        id: "key_1".into(),
        tenant_id: "ten_a".into(),
        name: "ci".into(),
        secret_hash: vec![7; 32],
        scopes: vec![Scope::Send, Scope::Read],
        created_at: 1_000,
        expires_at: Some(99_000),
        revoked_at: None,
        last_used_at: None,
        allowed_ips: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
        rate_limit: Some(120),
    };
    s.insert_api_key(key.clone()).await.expect("insert key");
    let got = s
        .get_api_key("key_1")
        .await
        .expect("get")
        .expect("key exists");
    assert_eq!(got.id, "key_1");
    assert_eq!(got.tenant_id, "ten_a");
    assert_eq!(got.name, "ci");
    assert_eq!(got.secret_hash, vec![7; 32]);
    assert_eq!(
        got.scopes,
        vec![Scope::Read, Scope::Send],
        "scopes come back parsed and sorted"
    );
    assert_eq!(got.created_at, 1_000);
    assert_eq!(got.allowed_ips, key.allowed_ips);
    assert_eq!(got.rate_limit, Some(120));
    assert_eq!(got.expires_at, Some(99_000));
    assert_eq!(got.revoked_at, None);
    assert_eq!(got.last_used_at, None);

    s.touch_api_key("key_1", 5_000).await.expect("touch");
    assert_eq!(
        s.get_api_key("key_1")
            .await
            .expect("get")
            .expect("key")
            .last_used_at,
        Some(5_000)
    );
    s.touch_api_key("key_1", 6_000).await.expect("touch again");
    assert_eq!(
        s.get_api_key("key_1")
            .await
            .expect("get")
            .expect("key")
            .last_used_at,
        Some(6_000)
    );
    s.touch_api_key("key_missing", 6_000)
        .await
        .expect("touching an unknown key is a no-op");

    let mut all = ApiKeyRecord {
        id: "key_2".into(),
        scopes: Scope::ALL.to_vec(),
        expires_at: None,
        ..key.clone()
    };
    s.insert_api_key(all.clone())
        .await
        .expect("insert key with every scope");
    let got = s.get_api_key("key_2").await.expect("get").expect("key");
    all.scopes.sort_by_key(|s| s.as_str());
    assert_eq!(got.scopes, all.scopes);
    assert_eq!(got.expires_at, None);
    assert_eq!(
        s.get_api_key("key_1")
            .await
            .expect("get")
            .expect("key")
            .last_used_at,
        Some(6_000)
    );

    let none = ApiKeyRecord {
        id: "key_3".into(),
        scopes: Vec::new(),
        ..key.clone()
    };
    s.insert_api_key(none)
        .await
        .expect("insert key without scopes");
    assert!(
        s.get_api_key("key_3")
            .await
            .expect("get")
            .expect("key")
            .scopes
            .is_empty()
    );

    assert!(is_conflict(s.insert_api_key(key).await, "api key"));
    assert!(s.get_api_key("key_missing").await.expect("get").is_none());
}

/// Keys are listed per tenant; rotation brings the expiry forward (never
/// later), revocation is once; other tenants cannot touch them.
pub async fn key_lifecycle(s: AnyStore) {
    let key = |id: &str, tenant: &str, created_at, expires_at| ApiKeyRecord {
        id: id.into(),
        tenant_id: tenant.into(),
        name: id.into(),
        secret_hash: vec![1],
        scopes: vec![Scope::Send],
        created_at,
        expires_at,
        revoked_at: None,
        last_used_at: None,
        allowed_ips: Vec::new(),
        rate_limit: None,
    };
    s.insert_api_key(key("key_b", "ten_a", 2, None))
        .await
        .expect("insert");
    s.insert_api_key(key("key_a", "ten_a", 1, Some(5_000)))
        .await
        .expect("insert");
    s.insert_api_key(key("key_c", "ten_b", 1, None))
        .await
        .expect("insert");
    let ids: Vec<_> = s
        .list_api_keys("ten_a")
        .await
        .expect("list")
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, ["key_a", "key_b"]);
    assert!(
        s.end_api_key("ten_a", "key_a", 9_000, false)
            .await
            .expect("rotate")
    );
    assert!(
        s.end_api_key("ten_a", "key_b", 9_000, false)
            .await
            .expect("rotate")
    );
    let get = |id: &'static str| {
        let s = s.clone();
        async move { s.get_api_key(id).await.expect("get").expect("key") }
    };
    assert_eq!(get("key_a").await.expires_at, Some(5_000), "never later");
    assert_eq!(get("key_b").await.expires_at, Some(9_000));
    assert!(
        !s.end_api_key("ten_b", "key_a", 1, true)
            .await
            .expect("other tenant")
    );
    assert!(
        s.end_api_key("ten_a", "key_a", 7_000, true)
            .await
            .expect("revoke")
    );
    assert!(
        !s.end_api_key("ten_a", "key_a", 8_000, true)
            .await
            .expect("twice")
    );
    assert_eq!(get("key_a").await.revoked_at, Some(7_000));
}

/// The waiting recipients' statuses of a message, by recipient id.
pub(super) async fn statuses(s: &AnyStore, tenant: &str, message: &str) -> Vec<RecipientStatus> {
    let m = s.get_message(tenant, message).await.expect("get");
    m.expect("message")
        .recipients
        .iter()
        .map(|r| r.status)
        .collect()
}

/// Cancelling a tenant cancels its active sub-accounts and holds their waiting
/// mail, leased or not; nothing resumes it but reactivation, which lifts the
/// sub-accounts cancelled with the tenant (not one cancelled before) and queues
/// the mail again (not a paused stream's).
pub async fn tenant_cancellation(s: AnyStore) {
    use RecipientStatus::{Queued, Suspended};
    let mut child = tenant("ten_c", "child");
    child.parent_id = Some("ten_p".into());
    let mut early = tenant("ten_e", "early");
    early.parent_id = Some("ten_p".into());
    for t in [
        tenant("ten_p", "parent"),
        child,
        early,
        tenant("ten_o", "other"),
    ] {
        s.insert_tenant(t).await.expect("tenant");
    }
    s.accept(batch(vec![
        message("ten_p", "msg_p", 1_000, &["p1", "p2"]),
        message("ten_c", "msg_c", 1_000, &["c1"]),
        message("ten_o", "msg_o", 1_000, &["o1"]),
    ]))
    .await
    .expect("accept");
    // p1 is being delivered (leased) when the tenant is cancelled: it is held too.
    let leased = s.claim_due("n", 1_000, 60_000, 1).await.expect("claim");
    assert_eq!(ids(&leased), ["p1"]);
    assert!(
        s.set_tenant_cancelled("ten_e", Some(1_500), 1_500)
            .await
            .expect("early")
    );
    assert!(
        s.set_tenant_cancelled("ten_p", Some(2_000), 2_000)
            .await
            .expect("cancel")
    );
    assert!(
        !s.set_tenant_cancelled("ten_p", Some(3_000), 3_000)
            .await
            .expect("again"),
        "already cancelled"
    );
    assert!(
        !s.set_tenant_cancelled("ten_x", Some(3_000), 3_000)
            .await
            .expect("unknown")
    );
    let cancelled = |id: &str| {
        let s = s.clone();
        let id = id.to_string();
        async move {
            s.get_tenant(&id)
                .await
                .expect("get")
                .expect("tenant")
                .cancelled_at
        }
    };
    assert_eq!(cancelled("ten_p").await, Some(2_000));
    assert_eq!(cancelled("ten_c").await, Some(2_000));
    assert_eq!(cancelled("ten_e").await, Some(1_500), "kept its own time");
    assert_eq!(cancelled("ten_o").await, None);
    assert_eq!(statuses(&s, "ten_p", "msg_p").await, [Suspended, Suspended]);
    assert_eq!(statuses(&s, "ten_c", "msg_c").await, [Suspended]);
    assert_eq!(statuses(&s, "ten_o", "msg_o").await, [Queued]);
    let due = s.claim_due("n", 100_000, 160_000, 10).await.expect("claim");
    assert_eq!(ids(&due), ["o1"], "held mail is not delivered");

    let listed = |before| {
        let s = s.clone();
        async move {
            let mut ids: Vec<String> = s
                .list_tenants(before)
                .await
                .expect("list")
                .into_iter()
                .map(|t| t.id)
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(listed(None).await, ["ten_c", "ten_e", "ten_o", "ten_p"]);
    assert_eq!(listed(Some(2_000)).await, ["ten_e"]);
    assert_eq!(listed(Some(2_001)).await, ["ten_c", "ten_e", "ten_p"]);

    // Neither a queue resume nor a stream resume releases a cancelled tenant's mail.
    let all = QueueSelector::default();
    assert_eq!(
        s.queue_action(all.clone(), QueueAction::Resume, 2_500)
            .await
            .expect("resume"),
        0
    );
    s.pause_stream(StreamPause {
        tenant_id: "ten_p".into(),
        stream: "transactional".into(),
        reason: Some("manual".into()),
        initial_settings: "{}".into(),
        at: 2_600,
        detail_enc: None,
    })
    .await
    .expect("pause");

    assert!(
        s.set_tenant_cancelled("ten_p", None, 3_000)
            .await
            .expect("reactivate")
    );
    assert!(
        !s.set_tenant_cancelled("ten_p", None, 3_000)
            .await
            .expect("again")
    );
    assert_eq!(cancelled("ten_p").await, None);
    assert_eq!(cancelled("ten_c").await, None);
    assert_eq!(
        cancelled("ten_e").await,
        Some(1_500),
        "cancelled on its own"
    );
    assert_eq!(statuses(&s, "ten_c", "msg_c").await, [Queued]);
    assert_eq!(
        statuses(&s, "ten_p", "msg_p").await,
        [Suspended, Suspended],
        "the paused stream's mail stays held"
    );
    let due = s.claim_due("n", 100_000, 160_000, 10).await.expect("claim");
    assert_eq!(ids(&due), ["c1"]);
}

/// Fills the audience's tables for `t`: a list with a member (the contact `p1`), a
/// segment, an import and a canary.
async fn populate_audience(s: &AnyStore, t: &str, at: i64) {
    s.create_list(ListRecord {
        id: format!("lst_{t}"),
        tenant_id: t.into(),
        name: "news".into(),
        description: None,
        created_at: at,
        updated_at: at,
    })
    .await
    .expect("list");
    let joined = s
        .add_members(t, &format!("lst_{t}"), vec![hash("p1")], at)
        .await
        .expect("member");
    assert_eq!(joined, 1);
    s.create_segment(SegmentRecord {
        id: format!("seg_{t}"),
        tenant_id: t.into(),
        name: "all".into(),
        filter_enc: b"sealed".to_vec(),
        created_at: at,
        updated_at: at,
    })
    .await
    .expect("segment");
    s.create_import(ImportRecord {
        id: format!("imp_{t}"),
        tenant_id: t.into(),
        state: "done".into(),
        detail: "{}".into(),
        created_at: at,
        updated_at: at,
    })
    .await
    .expect("import");
    s.add_canary(CanaryRecord {
        address: format!("{t}@canary.test"),
        tenant_id: t.into(),
        origin: "registered".into(),
        label: None,
        created_at: at,
        triggered_at: None,
    })
    .await
    .expect("canary");
    s.create_broadcast(broadcast(t, &format!("bc_{t}"), at))
        .await
        .expect("broadcast");
}

/// Fills every table of `TENANT_TABLES` for `t` (ids made unique with it) and
/// writes an audit entry about it.
pub(super) async fn populate(s: &AnyStore, t: &str) {
    let at = 10_000;
    s.insert_tenant(tenant(t, t)).await.expect("tenant");
    s.insert_api_key(ApiKeyRecord {
        id: format!("key_{t}"),
        tenant_id: t.into(),
        name: "k".into(),
        secret_hash: vec![1; 32],
        scopes: vec![Scope::Send],
        created_at: at,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        allowed_ips: Vec::new(),
        rate_limit: None,
    })
    .await
    .expect("key");
    s.insert_domain(DomainRecord {
        tenant_id: t.into(),
        // A domain belongs to one tenant: each has its own.
        name: format!("{t}.example"),
        created_at: at,
        keys: vec![dkim(&format!("dkim_{t}"), "rsa2026", at)],
    })
    .await
    .expect("domain");
    s.insert_webhook(WebhookRecord {
        id: format!("wh_{t}"),
        tenant_id: t.into(),
        url: "https://hooks.example/".into(),
        events: Vec::new(),
        streams: Vec::new(),
        secret_enc: b"sealed".to_vec(),
        previous_secret_enc: None,
        previous_until: None,
        created_at: at,
        disabled_at: None,
        failing_since: None,
    })
    .await
    .expect("webhook");
    let (m, r1, r2) = (format!("msg_{t}"), format!("r1_{t}"), format!("r2_{t}"));
    s.accept(AcceptBatch {
        messages: vec![message(t, &m, at, &[&r1, &r2])],
        idempotency: Some(idem(t, at, "resp")),
        lease: None,
        progress: None,
    })
    .await
    .expect("accept");
    s.record_deliveries(vec![update(
        t,
        &m,
        &r1,
        RecipientStatus::Delivered,
        None,
        at,
    )])
    .await
    .expect("deliver");
    for d in s
        .claim_webhook_deliveries("n", at, at + 1_000, 100)
        .await
        .expect("claim")
    {
        s.finish_webhook_delivery(WebhookOutcome {
            attempt: WebhookAttemptRecord {
                seq: 0,
                delivery_seq: d.seq,
                webhook_id: d.webhook_id.clone(),
                tenant_id: d.tenant_id.clone(),
                event_seq: d.event_seq,
                at,
                status_code: Some(200),
                error: None,
                duration_ms: 5,
                state: WebhookDeliveryState::Delivered,
            },
            next_attempt_at: None,
            record: true,
            disable_failing_before: 0,
        })
        .await
        .expect("finish");
    }
    let rec = suppression(t, &hash("p1"), None, SuppressionReason::Manual, at);
    s.add_suppression(rec).await.expect("suppression");
    s.upsert_contact(contact(t, "p1", "data", at))
        .await
        .expect("contact");
    s.add_consent(consent(t, "p1", "marketing", ConsentStatus::Active, at))
        .await
        .expect("consent");
    s.ensure_subject_keys(t, vec![subject_key("p1", "key")])
        .await
        .expect("subject key");
    s.add_request(DsarRecord {
        seq: 0,
        tenant_id: t.into(),
        kind: DsarKind::Access,
        rcpt_hash: hash("p1"),
        received_at: at,
        due_at: at,
        status: DsarStatus::Open,
        closed_at: None,
        detail_enc: b"sealed".to_vec(),
    })
    .await
    .expect("request");
    s.add_incident(IncidentRecord {
        seq: 0,
        tenant_id: t.into(),
        detected_at: at,
        authority_due_at: at,
        customers_due_at: at,
        authority_notified_at: None,
        customers_notified_at: None,
        closed_at: None,
        detail_enc: b"sealed".to_vec(),
    })
    .await
    .expect("incident");
    s.put_stream_settings(t, "broadcast", "{}".into(), at)
        .await
        .expect("stream");
    populate_audience(s, t, at).await;
    s.insert_user(UserRecord {
        id: format!("usr_{t}"),
        tenant_id: t.into(),
        email_index: format!("idx_{t}"),
        email_enc: vec![1],
        password_hash: "hash".into(),
        role: "admin".into(),
        scopes: vec![Scope::Admin],
        totp_enc: None,
        created_at: at,
        disabled_at: None,
        failed_logins: 0,
        locked_until: None,
        session_gen: 0,
        lists: None,
    })
    .await
    .expect("user");
    let opened = s.open_session(SessionRecord {
        id_hash: t.as_bytes().to_vec(),
        user_id: format!("usr_{t}"),
        tenant_id: t.into(),
        csrf_hash: vec![8; 32],
        created_at: at,
        expires_at: at * 2,
        revoked_at: None,
        user_gen: 0,
    });
    assert!(opened.await.expect("session"));
    s.append_audit(AuditDraft {
        at,
        tenant_id: Some(t.into()),
        actor: "cli".into(),
        action: "tenant.create".into(),
        target: Some(t.into()),
        ip: None,
    })
    .await
    .expect("audit");
}

/// How many rows of each kind the store shows of tenant `t`.
pub(super) async fn holdings(s: &AnyStore, t: &str) -> Vec<(&'static str, usize)> {
    let messages = MessageFilter {
        tenant_id: t.into(),
        limit: 100,
        ..MessageFilter::default()
    };
    let stats = StatsFilter {
        tenant_id: t.into(),
        from: 0,
        to: i64::MAX,
        stream: None,
        pool: None,
        source: None,
        site: None,
    };
    let p1 = || vec![hash("p1")];
    vec![
        (
            "tenant",
            s.get_tenant(t).await.expect("tenant").iter().count(),
        ),
        ("api keys", s.list_api_keys(t).await.expect("keys").len()),
        ("domains", s.list_domains(t).await.expect("domains").len()),
        (
            "webhooks",
            s.list_webhooks(Some(t)).await.expect("hooks").len(),
        ),
        (
            "webhook attempts",
            s.list_webhook_attempts(t, &format!("wh_{t}"), None, 100)
                .await
                .expect("attempts")
                .len(),
        ),
        (
            "messages",
            s.list_messages(messages).await.expect("messages").len(),
        ),
        (
            "events",
            s.list_events(events(t, 100)).await.expect("events").len(),
        ),
        (
            "idempotency",
            s.get_idempotency(t, &[0xab; 32], 0)
                .await
                .expect("idem")
                .iter()
                .count(),
        ),
        (
            "suppressions",
            s.find_suppressions(t, p1()).await.expect("supp").len(),
        ),
        (
            "contacts",
            s.get_contact(t, &hash("p1"))
                .await
                .expect("contact")
                .iter()
                .count(),
        ),
        (
            "consents",
            s.list_consents(t, &hash("p1"))
                .await
                .expect("consents")
                .len(),
        ),
        (
            "subject keys",
            s.subject_keys(t, p1()).await.expect("keys").len(),
        ),
        (
            "requests",
            s.list_requests(t, None, None, 100)
                .await
                .expect("dsar")
                .len(),
        ),
        (
            "incidents",
            s.list_incidents(t, None, None, 100)
                .await
                .expect("inc")
                .len(),
        ),
        ("stats", s.stats(stats).await.expect("stats").len()),
        (
            "streams",
            s.list_streams(Some(t)).await.expect("streams").len(),
        ),
        ("users", s.list_users(t).await.expect("users").len()),
        (
            "sessions",
            s.get_session(t.as_bytes().to_vec())
                .await
                .expect("session")
                .iter()
                .count(),
        ),
        (
            "audit",
            s.list_audit(Some(t), None, 100).await.expect("audit").len(),
        ),
    ]
}

/// Deleting a tenant in bounded steps removes every row of it — its wrapped key
/// last — and nothing of anyone else; its audit entries stay.
pub async fn tenant_deletion(s: AnyStore) {
    populate(&s, "ten_a").await;
    populate(&s, "ten_b").await;
    let before = holdings(&s, "ten_b").await;
    let held = holdings(&s, "ten_a").await;
    assert!(held.iter().all(|&(_, n)| n > 0), "{held:?}");
    let mut steps = 0;
    loop {
        let deleted = s.delete_tenant_data("ten_a", 2).await.expect("delete");
        assert!(deleted <= 2, "bounded: {deleted}");
        if deleted == 0 {
            break;
        }
        steps += 1;
        let gone = s.get_tenant("ten_a").await.expect("get").is_none();
        if gone {
            assert!(
                holdings(&s, "ten_a")
                    .await
                    .iter()
                    .all(|&(what, n)| n == 0 || what == "audit"),
                "the key goes last"
            );
        }
    }
    assert!(steps > TENANT_TABLES.len(), "{steps} steps");
    let after = holdings(&s, "ten_a").await;
    for (what, n) in &after {
        assert_eq!(
            *n,
            usize::from(*what == "audit"),
            "{what} of ten_a: {after:?}"
        );
    }
    assert_eq!(holdings(&s, "ten_b").await, before, "ten_b untouched");
    assert_eq!(s.delete_tenant_data("ten_a", 2).await.expect("again"), 0);
}
