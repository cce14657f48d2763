//! Lists and members, the contact filter, import batches, segments, canaries and
//! tenant events.

use super::*;

fn list(tenant: &str, id: &str, name: &str) -> ListRecord {
    ListRecord {
        id: id.into(),
        tenant_id: tenant.into(),
        name: name.into(),
        description: None,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

fn filter(tenant: &str) -> ContactFilter {
    ContactFilter {
        tenant_id: tenant.into(),
        limit: 100,
        ..ContactFilter::default()
    }
}

fn hashes(rows: &[ContactRecord]) -> Vec<Vec<u8>> {
    rows.iter().map(|c| c.rcpt_hash.clone()).collect()
}

pub async fn lists_and_the_contact_filter(s: AnyStore) {
    for (who, tags, at) in [
        ("p1", "aa11 bb22", 1_000),
        ("p2", "aa11", 2_000),
        ("p3", "cc33", 3_000),
    ] {
        let mut c = contact("ten_a", who, "v", at);
        c.attr_tags = tags.into();
        s.upsert_contact(c).await.expect("contact");
    }
    s.upsert_contact(contact("ten_b", "p1", "v", 1_000))
        .await
        .expect("other tenant");
    s.create_list(list("ten_a", "lst_1", "news"))
        .await
        .expect("list");
    assert!(matches!(
        s.create_list(list("ten_a", "lst_2", "news")).await,
        Err(StoreError::Conflict("list"))
    ));
    s.create_list(list("ten_b", "lst_3", "news"))
        .await
        .expect("same name, other tenant");
    let joined = s
        .add_members(
            "ten_a",
            "lst_1",
            vec![hash("p1"), hash("p2"), hash("nobody")],
            1_000,
        )
        .await
        .expect("members");
    assert_eq!(joined, 2, "only contacts join");
    let again = s
        .add_members("ten_a", "lst_1", vec![hash("p1")], 1_000)
        .await
        .expect("again");
    assert_eq!(again, 0);
    let found = s
        .find_list("ten_a", "news")
        .await
        .expect("find")
        .expect("by name");
    assert_eq!((found.list.id.as_str(), found.members), ("lst_1", 2));
    assert_eq!(
        s.find_list("ten_a", "lst_1")
            .await
            .expect("find")
            .map(|l| l.members),
        Some(2)
    );
    assert!(
        s.find_list("ten_a", "lst_3").await.expect("find").is_none(),
        "tenants apart"
    );

    let on_list = ContactFilter {
        lists: vec!["lst_1".into()],
        ..filter("ten_a")
    };
    assert_eq!(s.count_contacts(on_list.clone()).await.expect("count"), 2);
    let tagged = ContactFilter {
        attr_tags: vec!["aa11".into()],
        ..filter("ten_a")
    };
    assert_eq!(s.count_contacts(tagged).await.expect("count"), 2);
    let both = ContactFilter {
        attr_tags: vec!["aa11".into(), "bb22".into()],
        ..on_list.clone()
    };
    let rows = s.find_contacts(both).await.expect("find");
    assert_eq!(hashes(&rows), [hash("p1")]);
    let recent = ContactFilter {
        created_after: Some(2_000),
        created_before: Some(3_000),
        ..filter("ten_a")
    };
    assert_eq!(
        hashes(&s.find_contacts(recent).await.expect("find")),
        [hash("p2")]
    );
    s.add_consent(consent(
        "ten_a",
        "p1",
        "marketing",
        ConsentStatus::Active,
        1_000,
    ))
    .await
    .expect("c");
    s.add_consent(consent(
        "ten_a",
        "p2",
        "marketing",
        ConsentStatus::Active,
        1_000,
    ))
    .await
    .expect("c");
    s.add_consent(consent(
        "ten_a",
        "p2",
        "marketing",
        ConsentStatus::Withdrawn,
        2_000,
    ))
    .await
    .expect("c");
    let active = |status| ContactFilter {
        consent: vec![ConsentCondition {
            purpose: "marketing".into(),
            status,
        }],
        ..filter("ten_a")
    };
    assert_eq!(
        hashes(
            &s.find_contacts(active(Some(ConsentStatus::Active)))
                .await
                .expect("f")
        ),
        [hash("p1")]
    );
    assert_eq!(
        hashes(
            &s.find_contacts(active(Some(ConsentStatus::Withdrawn)))
                .await
                .expect("f")
        ),
        [hash("p2")]
    );
    assert_eq!(
        hashes(&s.find_contacts(active(None)).await.expect("f")),
        [hash("p3")]
    );

    // Pages by blind index, each after the cursor.
    let mut all = Vec::new();
    let mut page = ContactFilter {
        limit: 2,
        ..filter("ten_a")
    };
    loop {
        let rows = s.find_contacts(page.clone()).await.expect("page");
        all.extend(hashes(&rows));
        if rows.len() < 2 {
            break;
        }
        page.after = rows.last().map(|r| r.rcpt_hash.clone());
    }
    let mut want = vec![hash("p1"), hash("p2"), hash("p3")];
    want.sort();
    assert_eq!(all, want);

    let among = s
        .contacts_among("ten_a", vec![hash("p1"), hash("p9")])
        .await
        .expect("among");
    assert_eq!(hashes(&among), [hash("p1")]);
    let lists = s.subject_lists("ten_a", &hash("p1")).await.expect("lists");
    assert_eq!(lists.len(), 1);
    let memberships = s
        .memberships_among("ten_a", vec![hash("p1"), hash("p2"), hash("p3")])
        .await
        .expect("memberships");
    let mut members: Vec<(Vec<u8>, String)> = memberships;
    members.sort();
    let mut want = vec![
        (hash("p1"), "news".to_string()),
        (hash("p2"), "news".to_string()),
    ];
    want.sort();
    assert_eq!(members, want, "p3 is on no list");
    s.set_memberships("ten_a", &hash("p1"), Vec::new(), 2_000)
        .await
        .expect("set");
    assert_eq!(s.count_contacts(on_list.clone()).await.expect("count"), 1);
    let left = s
        .remove_members("ten_a", "lst_1", vec![hash("p2")])
        .await
        .expect("remove");
    assert_eq!(left, 1);
    let mut renamed = list("ten_a", "lst_1", "letters");
    renamed.updated_at = 5_000;
    assert!(s.update_list(renamed).await.expect("rename"));
    assert!(s.delete_list("ten_a", "lst_1").await.expect("delete"));
    assert!(!s.delete_list("ten_a", "lst_1").await.expect("gone"));
}

pub async fn import_batches_and_their_progress(s: AnyStore) {
    s.create_list(list("ten_a", "lst_1", "news"))
        .await
        .expect("list");
    let record = ImportRecord {
        id: "imp_1".into(),
        tenant_id: "ten_a".into(),
        state: "screening".into(),
        detail: "{}".into(),
        created_at: 1_000,
        updated_at: 1_000,
    };
    s.create_import(record.clone()).await.expect("import");
    let running = ImportRecord {
        state: "running".into(),
        detail: "{\"n\":0}".into(),
        ..record.clone()
    };
    assert!(
        s.update_import(running.clone(), &["screening"])
            .await
            .expect("run")
    );
    assert!(
        !s.update_import(running.clone(), &["held"])
            .await
            .expect("not held")
    );
    let person = |who: &str| ImportedContact {
        contact: Some(contact("ten_a", who, "v", 2_000)),
        rcpt_hash: hash(who),
        consent: Some(consent(
            "ten_a",
            who,
            "marketing",
            ConsentStatus::Active,
            2_000,
        )),
    };
    let progress = ImportRecord {
        detail: "{\"n\":2}".into(),
        updated_at: 2_000,
        ..running.clone()
    };
    let batch = ImportBatch {
        tenant_id: "ten_a".into(),
        list_id: Some("lst_1".into()),
        contacts: vec![person("p1"), person("p2")],
        extra_members: Vec::new(),
        progress,
    };
    assert!(s.import_contacts(batch.clone()).await.expect("batch"));
    let got = s
        .get_import("ten_a", "imp_1")
        .await
        .expect("get")
        .expect("there");
    assert_eq!(got.detail, "{\"n\":2}");
    assert_eq!(
        s.find_list("ten_a", "lst_1")
            .await
            .expect("f")
            .map(|l| l.members),
        Some(2)
    );
    assert_eq!(
        s.list_consents("ten_a", &hash("p1"))
            .await
            .expect("consents")
            .len(),
        1
    );
    // Cancelled meanwhile: the next batch writes nothing.
    let cancelled = ImportRecord {
        state: "cancelled".into(),
        ..running
    };
    assert!(
        s.update_import(cancelled, &["running", "held"])
            .await
            .expect("cancel")
    );
    let mut late = batch;
    late.contacts = vec![person("p3")];
    assert!(!s.import_contacts(late).await.expect("late batch"));
    assert!(
        s.get_contact("ten_a", &hash("p3"))
            .await
            .expect("get")
            .is_none(),
        "nothing of it"
    );
    assert_eq!(
        s.imports_in_state("cancelled").await.expect("state").len(),
        1
    );
    assert_eq!(
        s.list_imports("ten_a", None, 10).await.expect("list").len(),
        1
    );
    assert!(
        s.list_imports("ten_a", Some("imp_1".into()), 10)
            .await
            .expect("before")
            .is_empty()
    );
}

pub async fn segments_canaries_and_tenant_events(s: AnyStore) {
    let seg = SegmentRecord {
        id: "seg_1".into(),
        tenant_id: "ten_a".into(),
        name: "active".into(),
        filter_enc: b"sealed".to_vec(),
        created_at: 1_000,
        updated_at: 1_000,
    };
    s.create_segment(seg.clone()).await.expect("segment");
    assert!(matches!(
        s.create_segment(SegmentRecord {
            id: "seg_2".into(),
            ..seg.clone()
        })
        .await,
        Err(StoreError::Conflict("segment"))
    ));
    assert_eq!(
        s.find_segment("ten_a", "active").await.expect("find"),
        Some(seg.clone())
    );
    assert!(
        s.update_segment(SegmentRecord {
            name: "busy".into(),
            ..seg
        })
        .await
        .expect("update")
    );
    assert_eq!(s.segments("ten_a").await.expect("all")[0].name, "busy");
    assert!(s.delete_segment("ten_a", "seg_1").await.expect("delete"));

    let canary = CanaryRecord {
        address: "x1@canary.test".into(),
        tenant_id: "ten_a".into(),
        origin: "export:exp_1".into(),
        label: Some("news".into()),
        created_at: 1_000,
        triggered_at: None,
    };
    s.add_canary(canary.clone()).await.expect("canary");
    assert_eq!(
        s.canaries("ten_a", Some("export:exp_1".into()))
            .await
            .expect("of")
            .len(),
        1
    );
    assert!(
        s.canaries("ten_a", Some("registered".into()))
            .await
            .expect("of")
            .is_empty()
    );
    s.trigger_canary("x1@canary.test", 5_000)
        .await
        .expect("trigger");
    s.trigger_canary("x1@canary.test", 6_000)
        .await
        .expect("again");
    let found = s
        .find_canary("x1@canary.test")
        .await
        .expect("find")
        .expect("there");
    assert_eq!(found.triggered_at, Some(5_000), "the first time stays");
    assert!(
        s.delete_canary("ten_a", "x1@canary.test")
            .await
            .expect("delete")
    );

    s.add_tenant_event("ten_a", EventType::ImportHeld, 7_000, b"detail".to_vec())
        .await
        .expect("event");
    let events = s
        .list_events(EventFilter {
            tenant_id: "ten_a".into(),
            limit: 10,
            ..EventFilter::default()
        })
        .await
        .expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].event_type, events[0].message_id.as_str()),
        (EventType::ImportHeld, "")
    );
}
