//! Broadcasts: state moves only from the states they name, the expansion's cursor
//! moves with the messages of its batch (a stale cursor writes nothing), one node
//! holds a broadcast at a time, and the report's tallies read its messages.

use super::*;

fn progress(t: &str, id: &str, from: &[u8], to: &[u8], done: bool) -> BroadcastProgress {
    BroadcastProgress {
        tenant_id: t.into(),
        id: id.into(),
        from_cursor: from.to_vec(),
        to_cursor: to.to_vec(),
        counts: format!("{{\"sent\":{}}}", to.len()),
        done,
        at: 2_000,
    }
}

fn in_broadcast(mut m: NewMessage, id: &str) -> NewMessage {
    m.broadcast_id = Some(id.into());
    m
}

pub async fn broadcasts_expand_once(s: AnyStore) {
    let t = "ten_bc";
    s.insert_tenant(tenant(t, "bc")).await.unwrap();
    s.create_broadcast(broadcast(t, "bc_1", 1_000))
        .await
        .unwrap();
    // Not sending yet: no claim, no progress.
    assert!(
        !s.claim_broadcast(t, "bc_1", "node_a", 5_000, 1_000)
            .await
            .unwrap()
    );
    let early = AcceptBatch {
        progress: Some(progress(t, "bc_1", b"", b"h1", false)),
        ..batch(vec![in_broadcast(
            message(t, "msg_e", 1_000, &["rcpt_e"]),
            "bc_1",
        )])
    };
    assert!(matches!(
        s.accept(early).await,
        Err(StoreError::Conflict("broadcast"))
    ));
    assert!(
        s.get_message(t, "msg_e").await.unwrap().is_none(),
        "nothing of a refused batch"
    );

    // draft → sending (with its spec frozen); not again from draft.
    let frozen = Some((b"frozen".to_vec(), None));
    assert!(
        s.move_broadcast(t, "bc_1", &["draft"], "sending", 1_500, frozen)
            .await
            .unwrap()
    );
    assert!(
        !s.move_broadcast(t, "bc_1", &["draft"], "sending", 1_500, None)
            .await
            .unwrap()
    );
    let b = s.find_broadcast(t, "bc_1").await.unwrap().unwrap();
    assert_eq!(
        (b.state.as_str(), b.spec_enc.as_slice()),
        ("sending", b"frozen".as_slice())
    );
    // Another tenant sees nothing of it.
    assert!(
        s.find_broadcast("ten_other", "bc_1")
            .await
            .unwrap()
            .is_none()
    );

    // One node holds it; another may take it only once the lease ended.
    assert!(
        s.claim_broadcast(t, "bc_1", "node_a", 5_000, 2_000)
            .await
            .unwrap()
    );
    assert!(
        !s.claim_broadcast(t, "bc_1", "node_b", 9_000, 4_000)
            .await
            .unwrap()
    );
    let due = s.due_broadcasts(4_000, "node_b").await.unwrap();
    assert!(due.is_empty(), "held by node_a: {due:?}");
    assert_eq!(
        s.due_broadcasts(4_000, "node_a").await.unwrap().len(),
        1,
        "its own after a restart"
    );
    assert_eq!(
        s.due_broadcasts(6_000, "node_b").await.unwrap().len(),
        1,
        "a lease that ended"
    );

    // A batch moves the cursor with its messages; a second writer from the same cursor
    // writes nothing.
    let first = AcceptBatch {
        progress: Some(progress(t, "bc_1", b"", b"h1", false)),
        ..batch(vec![in_broadcast(
            message(t, "msg_1", 2_000, &["rcpt_1"]),
            "bc_1",
        )])
    };
    s.accept(first).await.unwrap();
    let stale = AcceptBatch {
        progress: Some(progress(t, "bc_1", b"", b"h1", false)),
        ..batch(vec![in_broadcast(
            message(t, "msg_2", 2_000, &["rcpt_2"]),
            "bc_1",
        )])
    };
    assert!(matches!(
        s.accept(stale).await,
        Err(StoreError::Conflict("broadcast"))
    ));
    assert!(s.get_message(t, "msg_2").await.unwrap().is_none());
    let b = s.find_broadcast(t, "bc_1").await.unwrap().unwrap();
    assert_eq!(
        (b.cursor.as_slice(), b.counts.as_str()),
        (b"h1".as_slice(), "{\"sent\":2}")
    );

    // Paused, its next batch is refused; resumed, the last batch ends it.
    assert!(
        s.move_broadcast(t, "bc_1", &["scheduled", "sending"], "paused", 2_500, None)
            .await
            .unwrap()
    );
    let next = AcceptBatch {
        progress: Some(progress(t, "bc_1", b"h1", b"h2", true)),
        ..batch(vec![in_broadcast(
            message(t, "msg_3", 3_000, &["rcpt_3"]),
            "bc_1",
        )])
    };
    assert!(matches!(
        s.accept(next.clone()).await,
        Err(StoreError::Conflict("broadcast"))
    ));
    assert!(
        s.move_broadcast(t, "bc_1", &["paused"], "sending", 2_600, None)
            .await
            .unwrap()
    );
    s.accept(next).await.unwrap();
    let b = s.find_broadcast(t, "bc_1").await.unwrap().unwrap();
    assert_eq!(
        (b.state.as_str(), b.finished_at, b.runner),
        ("sent", Some(2_000), None)
    );
    assert!(
        !s.move_broadcast(
            t,
            "bc_1",
            &["draft", "scheduled", "sending", "paused"],
            "cancelled",
            3_000,
            None
        )
        .await
        .unwrap()
    );

    // The report reads its messages' recipients and events.
    let tallies = s.broadcast_tallies(t, "bc_1").await.unwrap();
    let queued = tallies
        .iter()
        .find(|x| x.kind == "status" && x.key == "queued");
    assert_eq!(queued.map(|x| x.n), Some(2), "{tallies:?}");
    let accepted = tallies
        .iter()
        .find(|x| x.kind == "event" && x.key == "accepted");
    assert_eq!(
        accepted.map(|x| (x.n, x.recipients)),
        Some((2, 2)),
        "{tallies:?}"
    );

    // A scheduled broadcast is due at its time; deleted once done.
    let mut later = broadcast(t, "bc_2", 1_000);
    later.state = "scheduled".into();
    later.send_at = Some(10_000);
    s.create_broadcast(later).await.unwrap();
    assert!(
        s.due_broadcasts(9_999, "node_a")
            .await
            .unwrap()
            .iter()
            .all(|b| b.id != "bc_2")
    );
    assert!(
        s.due_broadcasts(10_000, "node_a")
            .await
            .unwrap()
            .iter()
            .any(|b| b.id == "bc_2")
    );
    assert!(
        !s.delete_broadcast(t, "bc_2").await.unwrap(),
        "scheduled: not deleted"
    );
    assert!(s.delete_broadcast(t, "bc_1").await.unwrap());
    let left = s.broadcasts(t, None, 10).await.unwrap();
    assert_eq!(
        left.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
        ["bc_2"]
    );
}
