//! Domains and their DKIM keys.

use super::*;

pub(super) fn dkim(id: &str, selector: &str, created_at: i64) -> DkimKeyRecord {
    DkimKeyRecord {
        id: id.into(),
        selector: selector.into(),
        algorithm: if selector.starts_with("ed") {
            "ed25519-sha256"
        } else {
            "rsa-sha256"
        }
        .into(),
        private_key_enc: format!("pk:{id}").into_bytes(),
        public_key: format!("PUB{id}"),
        created_at,
    }
}

pub async fn domains(s: AnyStore) {
    let example = DomainRecord {
        tenant_id: "ten_a".into(),
        name: "example.com".into(),
        created_at: 1_000,
        // Given newest first: keys come back oldest first.
        keys: vec![
            dkim("dkim_2", "ed2026", 2_000),
            dkim("dkim_1", "rsa2026", 1_000),
        ],
    };
    s.insert_domain(example.clone())
        .await
        .expect("insert domain");
    let got = s
        .get_domain("ten_a", "example.com")
        .await
        .expect("get")
        .expect("domain exists");
    assert_eq!(got.tenant_id, "ten_a");
    assert_eq!(got.name, "example.com");
    assert_eq!(got.created_at, 1_000);
    assert_eq!(got.keys.len(), 2);
    let (k1, k2) = (&got.keys[0], &got.keys[1]);
    assert_eq!(
        (k1.id.as_str(), k1.selector.as_str(), k1.algorithm.as_str()),
        ("dkim_1", "rsa2026", "rsa-sha256")
    );
    assert_eq!(k1.private_key_enc, b"pk:dkim_1");
    assert_eq!(k1.public_key, "PUBdkim_1");
    assert_eq!(k1.created_at, 1_000);
    assert_eq!(
        (
            k2.id.as_str(),
            k2.selector.as_str(),
            k2.algorithm.as_str(),
            k2.created_at
        ),
        ("dkim_2", "ed2026", "ed25519-sha256", 2_000)
    );

    s.insert_domain(DomainRecord {
        tenant_id: "ten_a".into(),
        name: "alpha.example".into(),
        created_at: 3_000,
        keys: vec![dkim("dkim_3", "rsa2027", 3_000)],
    })
    .await
    .expect("insert second domain");
    let list = s.list_domains("ten_a").await.expect("list");
    let names: Vec<&str> = list.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["alpha.example", "example.com"], "ordered by name");
    assert_eq!(list[0].keys.len(), 1);
    assert_eq!(list[0].keys[0].id, "dkim_3");
    let listed_ids: Vec<&str> = list[1].keys.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(listed_ids, ["dkim_1", "dkim_2"]);

    // A duplicate is refused and adds nothing.
    let mut dup = example.clone();
    dup.keys = vec![dkim("dkim_9", "extra", 9_000)];
    assert!(is_conflict(s.insert_domain(dup).await, "domain"));
    assert_eq!(
        s.get_domain("ten_a", "example.com")
            .await
            .expect("get")
            .expect("domain")
            .keys
            .len(),
        2
    );

    // A key id clash undoes the whole insert.
    let clash = DomainRecord {
        tenant_id: "ten_a".into(),
        name: "clash.example".into(),
        created_at: 4_000,
        keys: vec![
            dkim("dkim_4", "fresh", 4_000),
            dkim("dkim_1", "reused", 4_000),
        ],
    };
    assert!(is_conflict(s.insert_domain(clash).await, "dkim key"));
    assert!(
        s.get_domain("ten_a", "clash.example")
            .await
            .expect("get")
            .is_none()
    );
    assert_eq!(s.list_domains("ten_a").await.expect("list").len(), 2);

    // A name belongs to one tenant: another tenant's insert is refused and adds
    // nothing.
    assert!(
        s.get_domain("ten_b", "example.com")
            .await
            .expect("get")
            .is_none()
    );
    assert!(s.list_domains("ten_b").await.expect("list").is_empty());
    let squat = DomainRecord {
        tenant_id: "ten_b".into(),
        name: "example.com".into(),
        created_at: 5_000,
        keys: vec![dkim("dkim_b", "b2026", 5_000)],
    };
    assert!(is_conflict(s.insert_domain(squat.clone()).await, "domain"));
    assert!(s.list_domains("ten_b").await.expect("list").is_empty());
    assert_eq!(
        s.domain_owners("example.com").await.expect("owners"),
        ["ten_a"]
    );
    assert!(
        s.domain_owners("unknown.example")
            .await
            .expect("owners")
            .is_empty()
    );
    let a = s
        .get_domain("ten_a", "example.com")
        .await
        .expect("get")
        .expect("domain");
    assert_eq!(a.keys.len(), 2, "tenant A's keys are untouched");

    // Removing it (another tenant's removal does nothing) frees the name with its
    // keys; then the other tenant may register it, and its key ids may be reused.
    assert!(
        !s.delete_domain("ten_b", "example.com")
            .await
            .expect("delete")
    );
    assert!(
        s.delete_domain("ten_a", "example.com")
            .await
            .expect("delete")
    );
    assert!(
        !s.delete_domain("ten_a", "example.com")
            .await
            .expect("delete again")
    );
    assert!(
        s.get_domain("ten_a", "example.com")
            .await
            .expect("get")
            .is_none()
    );
    let left: Vec<String> = s
        .list_domains("ten_a")
        .await
        .expect("list")
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(left, ["alpha.example"]);
    let mut moved = squat;
    moved.keys.push(dkim("dkim_1", "reused", 5_000));
    s.insert_domain(moved).await.expect("the freed name");
    assert_eq!(
        s.domain_owners("example.com").await.expect("owners"),
        ["ten_b"]
    );
    assert_eq!(
        s.get_domain("ten_b", "example.com")
            .await
            .expect("get")
            .expect("domain")
            .keys
            .len(),
        2
    );
}

/// Tenants adding the same name at once: exactly one of them gets it.
pub async fn concurrent_domain_adds(s: AnyStore) {
    let s = Arc::new(s);
    for round in 0..5 {
        let name = format!("race{round}.example");
        let adds = (0..6).map(|t| {
            let (s, name) = (s.clone(), name.clone());
            tokio::spawn(async move {
                s.insert_domain(DomainRecord {
                    tenant_id: format!("ten_{t}"),
                    name,
                    created_at: 1_000,
                    keys: vec![dkim(&format!("dkim_{round}_{t}"), "s", 1_000)],
                })
                .await
            })
        });
        let mut won = 0;
        for add in adds.collect::<Vec<_>>() {
            match add.await.expect("task") {
                Ok(()) => won += 1,
                Err(StoreError::Conflict("domain")) => {}
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(won, 1, "{name}");
        let owners = s.domain_owners(&name).await.expect("owners");
        assert_eq!(owners.len(), 1, "{name}");
        let d = s
            .get_domain(&owners[0], &name)
            .await
            .expect("get")
            .expect("the winner's domain");
        assert_eq!(d.keys.len(), 1, "only the winner's key is stored");
    }
}
