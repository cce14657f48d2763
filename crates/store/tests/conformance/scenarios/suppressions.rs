//! Suppression lists.

use super::*;

pub(super) fn seqs(list: &[SuppressionRecord]) -> Vec<i64> {
    list.iter().map(|s| s.seq).collect()
}

/// (hash, stream) of each entry.
pub(super) fn scopes(list: &[SuppressionRecord]) -> Vec<(Vec<u8>, Option<String>)> {
    list.iter()
        .map(|s| (s.rcpt_hash.clone(), s.stream.clone()))
        .collect()
}

pub(super) fn scope(hash: &[u8], stream: Option<&str>) -> (Vec<u8>, Option<String>) {
    (hash.to_vec(), stream.map(str::to_string))
}

pub async fn suppressions(s: AnyStore) {
    use SuppressionReason::*;
    let (h1, h2, h3) = (hash("alice"), hash("bob"), hash("carol"));

    let first = suppression("ten_a", &h1, None, HardBounce, 1_000);
    assert!(s.add_suppression(first.clone()).await.expect("add"));
    // The same scope again: not added, and the stored entry is unchanged.
    let mut again = suppression("ten_a", &h1, None, Complaint, 2_000);
    again.address_enc = None;
    again.source = Some("api".into());
    assert!(!s.add_suppression(again).await.expect("add again"));
    // A stream scope is an entry of its own.
    let broadcast = suppression("ten_a", &h1, Some("broadcast"), Unsubscribe, 3_000);
    assert!(
        s.add_suppression(broadcast.clone())
            .await
            .expect("add scoped")
    );
    assert!(
        !s.add_suppression(suppression("ten_a", &h1, Some("broadcast"), Manual, 3_500))
            .await
            .expect("add scoped again")
    );
    let mut bob = suppression("ten_a", &h2, None, Manual, 4_000);
    bob.address_enc = None;
    bob.source = None;
    assert!(s.add_suppression(bob.clone()).await.expect("add bob"));
    assert!(
        s.add_suppression(suppression("ten_b", &h1, None, Complaint, 5_000))
            .await
            .expect("same address, other tenant")
    );
    // An empty stream name is the every-stream scope.
    assert!(
        s.add_suppression(suppression("ten_a", &h3, Some(""), Manual, 6_000))
            .await
            .expect("add carol")
    );
    assert!(
        !s.add_suppression(suppression("ten_a", &h3, None, Manual, 6_500))
            .await
            .expect("add carol again")
    );

    // find: every scope of the hashes asked for, in seq order, fields intact.
    let found = s
        .find_suppressions("ten_a", vec![h1.clone(), hash("nobody"), h1.clone()])
        .await
        .expect("find");
    assert_eq!(
        scopes(&found),
        [scope(&h1, None), scope(&h1, Some("broadcast"))]
    );
    assert!(found[0].seq > 0 && found[0].seq < found[1].seq);
    let want_first = SuppressionRecord {
        seq: found[0].seq,
        ..first.clone()
    };
    assert_eq!(found[0], want_first, "the first add is kept unchanged");
    let want_broadcast = SuppressionRecord {
        seq: found[1].seq,
        ..broadcast.clone()
    };
    assert_eq!(found[1], want_broadcast);
    let found = s
        .find_suppressions("ten_a", vec![h2.clone(), h1.clone()])
        .await
        .expect("find");
    assert_eq!(
        scopes(&found),
        [
            scope(&h1, None),
            scope(&h1, Some("broadcast")),
            scope(&h2, None)
        ]
    );
    assert_eq!(
        found[2],
        SuppressionRecord {
            seq: found[2].seq,
            ..bob.clone()
        },
        "no sealed address or source round-trips as None"
    );
    let carol = s
        .find_suppressions("ten_a", vec![h3.clone()])
        .await
        .expect("find");
    assert_eq!(scopes(&carol), [scope(&h3, None)]);
    assert!(
        s.find_suppressions("ten_a", vec![hash("nobody")])
            .await
            .expect("find")
            .is_empty(),
        "other hashes"
    );
    assert!(
        s.find_suppressions("ten_a", Vec::new())
            .await
            .expect("find")
            .is_empty()
    );
    assert!(
        s.find_suppressions("ten_c", vec![h1.clone(), h2.clone()])
            .await
            .expect("find")
            .is_empty(),
        "other tenants"
    );
    let other = s
        .find_suppressions("ten_b", vec![h1.clone(), h2.clone()])
        .await
        .expect("find");
    assert_eq!(scopes(&other), [scope(&h1, None)]);
    assert_eq!(other[0].tenant_id, "ten_b");
    assert_eq!(other[0].reason, Complaint);

    // list: in seq order, paged by cursor, optionally by hash.
    let all = s
        .list_suppressions("ten_a", None, None, 100)
        .await
        .expect("list");
    assert_eq!(
        scopes(&all),
        [
            scope(&h1, None),
            scope(&h1, Some("broadcast")),
            scope(&h2, None),
            scope(&h3, None)
        ]
    );
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(all.iter().all(|e| e.tenant_id == "ten_a"));
    for (filter, limit, want) in [
        (None, 3, seqs(&all)),
        (None, 1, seqs(&all)),
        (Some(h1.clone()), 1, seqs(&all[..2])),
    ] {
        let mut cursor = None;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = s
                .list_suppressions("ten_a", filter.clone(), cursor, limit)
                .await
                .expect("page");
            assert!(page.len() <= limit, "page larger than the limit");
            let Some(last) = page.last() else { break };
            cursor = Some(last.seq);
            seen.extend(seqs(&page));
            pages += 1;
            assert!(pages < 20, "pagination does not end");
        }
        assert_eq!(seen, want, "every entry once, in order");
        assert_eq!(pages, want.len().div_ceil(limit));
    }
    let after = s
        .list_suppressions("ten_a", None, Some(all[1].seq), 100)
        .await
        .expect("list");
    assert_eq!(seqs(&after), seqs(&all[2..]));
    let by_hash = s
        .list_suppressions("ten_a", Some(h2.clone()), None, 100)
        .await
        .expect("list");
    assert_eq!(scopes(&by_hash), [scope(&h2, None)]);
    assert_eq!(
        s.list_suppressions("ten_a", None, None, 0)
            .await
            .expect("list")
            .len(),
        1,
        "a zero limit is treated as 1"
    );
    let b = s
        .list_suppressions("ten_b", None, None, 100)
        .await
        .expect("list");
    assert_eq!(scopes(&b), [scope(&h1, None)]);
    assert!(
        s.list_suppressions("ten_b", Some(h2.clone()), None, 100)
            .await
            .expect("list")
            .is_empty()
    );

    // remove: exactly the scope named.
    assert_eq!(
        s.remove_suppression("ten_a", &h1, Some("other"), false)
            .await
            .expect("remove"),
        0,
        "no such scope"
    );
    assert_eq!(
        s.remove_suppression("ten_a", &h1, Some("broadcast"), false)
            .await
            .expect("remove"),
        1
    );
    assert_eq!(
        s.remove_suppression("ten_a", &h1, Some("broadcast"), false)
            .await
            .expect("remove"),
        0,
        "already removed"
    );
    let found = s
        .find_suppressions("ten_a", vec![h1.clone()])
        .await
        .expect("find");
    assert_eq!(
        scopes(&found),
        [scope(&h1, None)],
        "the every-stream entry stays"
    );
    assert_eq!(
        s.remove_suppression("ten_c", &h1, None, false)
            .await
            .expect("remove"),
        0,
        "other tenant"
    );
    for h in [&h1, &h2, &h3] {
        assert_eq!(
            s.remove_suppression("ten_a", h, None, false)
                .await
                .expect("remove"),
            1
        );
    }
    assert!(
        s.find_suppressions("ten_a", vec![h1.clone(), h2.clone(), h3.clone()])
            .await
            .expect("find")
            .is_empty()
    );
    assert!(
        s.list_suppressions("ten_a", None, None, 100)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        s.find_suppressions("ten_b", vec![h1.clone()])
            .await
            .expect("find")
            .len(),
        1,
        "tenant B's entry is untouched"
    );

    // Added again after removal: a new entry with a later seq.
    assert!(
        s.add_suppression(suppression("ten_a", &h1, None, Manual, 7_000))
            .await
            .expect("re-add")
    );
    let back = s
        .find_suppressions("ten_a", vec![h1.clone()])
        .await
        .expect("find");
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].reason, Manual);
    assert_eq!(back[0].created_at, 7_000);
    assert!(back[0].seq > all.last().expect("entries").seq);
}

/// The acceptance check of the largest batch (500 messages × 50 recipients):
/// tens of thousands of hashes, with repeats, in one call.
pub async fn suppression_lookup_of_a_large_batch(s: AnyStore) {
    let hashes: Vec<Vec<u8>> = (0..25_000)
        .map(|i| hash(&format!("r{}", i % 12_000)))
        .collect();
    for (i, h) in [0, 498, 499, 500, 998, 5_000, 11_999]
        .into_iter()
        .enumerate()
    {
        let stream = (i % 2 == 1).then_some("broadcast");
        let rec = suppression(
            "ten_a",
            &hash(&format!("r{h}")),
            stream,
            SuppressionReason::HardBounce,
            1_000 + i as i64,
        );
        assert!(s.add_suppression(rec).await.expect("add"));
    }
    assert!(
        s.add_suppression(suppression(
            "ten_b",
            &hash("r42"),
            None,
            SuppressionReason::Manual,
            1_000
        ))
        .await
        .expect("add")
    );
    let found = s
        .find_suppressions("ten_a", hashes.clone())
        .await
        .expect("find");
    let got: Vec<i64> = found.iter().map(|s| s.created_at).collect();
    assert_eq!(
        got,
        (1_000..1_007).collect::<Vec<_>>(),
        "each entry once, in seq order"
    );
    assert!(
        s.find_suppressions("ten_c", hashes)
            .await
            .expect("find")
            .is_empty()
    );
    // A small lookup after the large one (other statement sizes).
    let found = s
        .find_suppressions("ten_a", vec![hash("r499"), hash("r1"), hash("r500")])
        .await
        .expect("find");
    assert_eq!(
        found.iter().map(|s| s.created_at).collect::<Vec<_>>(),
        [1_002, 1_003]
    );
}
