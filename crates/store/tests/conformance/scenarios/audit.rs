//! The audit chain.

use super::*;

/// The audit log chains each entry to the one committed before it, also under
/// concurrent appends, and verifies.
pub async fn audit_chain(s: AnyStore) {
    let s = Arc::new(s);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.append_audit(AuditDraft {
                at: 1_000 + i,
                tenant_id: Some(if i % 2 == 0 { "ten_a" } else { "ten_b" }.into()),
                actor: format!("key:{i}"),
                action: "subject.export".into(),
                target: Some(format!("rcpt:{i:02x}")),
                ip: None,
            })
            .await
            .expect("append")
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let all = s.list_audit(None, None, 1_000).await.expect("list");
    assert_eq!(all.len(), 20);
    assert_eq!(
        postwerk_store::audit::verify(None, all.clone())
            .expect("intact")
            .0,
        20
    );
    assert_eq!(s.audit_anchor().await.expect("anchor"), None);
    let page = s.list_audit(None, Some(all[9].seq), 5).await.expect("page");
    assert_eq!(page, all[10..15]);
    // Newest first: the last five, then the five before the tenth, backwards.
    let newest = s.list_audit_newest(None, None, 5).await.expect("newest");
    let expected: Vec<_> = all[15..].iter().rev().cloned().collect();
    assert_eq!(newest, expected);
    let back = s
        .list_audit_newest(None, Some(all[10].seq), 5)
        .await
        .expect("back");
    let expected: Vec<_> = all[5..10].iter().rev().cloned().collect();
    assert_eq!(back, expected);
    let tenant_b = s
        .list_audit_newest(Some("ten_b"), None, 100)
        .await
        .expect("tenant");
    assert_eq!(tenant_b.len(), 10);
    assert!(
        tenant_b
            .iter()
            .all(|e| e.tenant_id.as_deref() == Some("ten_b"))
    );
    let a = s
        .list_audit(Some("ten_a"), None, 100)
        .await
        .expect("tenant");
    assert_eq!(a.len(), 10);
    assert!(a.iter().all(|e| e.tenant_id.as_deref() == Some("ten_a")));

    // Retention prunes the oldest entries (a leading run, at most `limit`) and
    // anchors what is left, which still verifies.
    assert_eq!(
        s.prune_audit(1_000, 100).await.expect("prune"),
        0,
        "none older"
    );
    assert_eq!(s.prune_audit(2_000, 5).await.expect("prune"), 5);
    let anchor = s.audit_anchor().await.expect("anchor");
    assert_eq!(anchor, Some((all[4].seq, all[4].hash.clone())));
    let rest = s.list_audit(None, None, 1_000).await.expect("list");
    assert_eq!(rest, all[5..]);
    assert_eq!(
        postwerk_store::audit::verify(anchor, rest.clone())
            .expect("intact")
            .0,
        15
    );
    assert!(postwerk_store::audit::verify(None, rest).is_err());
}
