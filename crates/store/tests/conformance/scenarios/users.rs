//! Users, sign-in accounting and sessions.

use super::*;

/// Users are unique by address per tenant (the same address may have accounts in
/// several tenants, found together), listed per tenant; sessions are found by
/// token hash and end once.
pub async fn users_and_sessions(s: AnyStore) {
    s.insert_user(user("usr_a", "ten_a", "idx-a"))
        .await
        .expect("insert");
    s.insert_user(user("usr_b", "ten_b", "idx-b"))
        .await
        .expect("insert");
    s.insert_user(user("usr_c", "ten_b", "idx-a"))
        .await
        .expect("the same address in another tenant");
    assert!(matches!(
        s.insert_user(user("usr_d", "ten_b", "idx-a")).await,
        Err(StoreError::Conflict("user"))
    ));
    let found: Vec<String> = s
        .find_users("idx-a")
        .await
        .expect("find")
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(found, ["usr_a", "usr_c"]);
    assert_eq!(
        s.get_user("usr_a").await.expect("get"),
        Some(user("usr_a", "ten_a", "idx-a"))
    );
    assert!(s.find_users("idx-x").await.expect("find").is_empty());
    let listed: Vec<String> = s
        .list_users("ten_b")
        .await
        .expect("list")
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(listed, ["usr_b", "usr_c"]);

    let session = session_of("usr_a", 7, 0);
    assert!(s.open_session(session.clone()).await.expect("session"));
    assert_eq!(
        s.get_session(vec![7; 32]).await.expect("get"),
        Some(session.clone())
    );
    assert!(s.end_session(vec![7; 32], 200).await.expect("end"));
    assert!(!s.end_session(vec![7; 32], 300).await.expect("end"), "once");
    let ended = s
        .get_session(vec![7; 32])
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(ended.revoked_at, Some(200));
    assert!(s.get_session(vec![6; 32]).await.expect("get").is_none());

    s.delete_user("usr_a").await.expect("delete");
    assert_eq!(s.get_user("usr_a").await.expect("get"), None);
    assert!(
        s.get_session(vec![7; 32]).await.expect("get").is_none(),
        "its sessions go with it"
    );
}

pub(super) fn user(id: &str, tenant: &str, index: &str) -> UserRecord {
    UserRecord {
        id: id.into(),
        tenant_id: tenant.into(),
        email_index: index.into(),
        email_enc: vec![1, 2, 3],
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        role: "analyst".into(),
        scopes: vec![Scope::Read],
        totp_enc: None,
        created_at: 1,
        disabled_at: None,
        failed_logins: 0,
        locked_until: None,
        session_gen: 0,
        lists: None,
    }
}

pub(super) fn session_of(user_id: &str, token: u8, user_gen: i64) -> SessionRecord {
    SessionRecord {
        id_hash: vec![token; 32],
        user_id: user_id.into(),
        tenant_id: "ten_a".into(),
        csrf_hash: vec![8; 32],
        created_at: 100,
        expires_at: 1_000,
        revoked_at: None,
        user_gen,
    }
}

pub(super) const POLICY: LockPolicy = LockPolicy {
    failures_before_lock: 3,
    first_lock_ms: 1_000,
    max_lock_ms: 5_000,
};

/// Sign-in attempts are counted before they are checked, one statement each:
/// concurrent attempts all count, the one reaching the threshold sets the lock,
/// the rest find the account locked; a lock doubles per further failure up to the
/// longest; a released attempt gives its count (and its lock) back; a session
/// clears both.
pub async fn sign_in_attempts(s: AnyStore) {
    s.insert_user(user("usr_a", "ten_a", "idx-a"))
        .await
        .expect("insert");
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let s = s.clone();
        attempts.spawn(async move { s.reserve_login("usr_a", 10_000, POLICY).await });
    }
    let results: Vec<Reservation> = attempts
        .join_all()
        .await
        .into_iter()
        .map(|r| r.expect("reserve"))
        .collect();
    let counted = results
        .iter()
        .filter(|r| matches!(r, Reservation::Counted { .. }))
        .count();
    assert_eq!(counted, 3, "{results:?}");
    assert!(
        results
            .iter()
            .filter(|r| !matches!(r, Reservation::Counted { .. }))
            .all(|r| *r == Reservation::Locked(11_000)),
        "{results:?}"
    );
    assert!(results.contains(&Reservation::Counted {
        lock: Some(11_000),
        previous_lock: None
    }));
    let u = s.get_user("usr_a").await.expect("get").expect("user");
    assert_eq!((u.failed_logins, u.locked_until), (3, Some(11_000)));

    // After the lock: the next failure locks for twice as long, then up to 5 s.
    assert_eq!(
        s.reserve_login("usr_a", 11_000, POLICY)
            .await
            .expect("reserve"),
        Reservation::Counted {
            lock: Some(13_000),
            previous_lock: Some(11_000)
        }
    );
    assert_eq!(
        s.reserve_login("usr_a", 13_000, POLICY)
            .await
            .expect("reserve"),
        Reservation::Counted {
            lock: Some(17_000),
            previous_lock: Some(13_000)
        }
    );
    assert_eq!(
        s.reserve_login("usr_a", 17_000, POLICY)
            .await
            .expect("reserve"),
        Reservation::Counted {
            lock: Some(22_000),
            previous_lock: Some(17_000)
        }
    );
    // That one was no failure after all: its count and its lock go back.
    s.release_login("usr_a", Some(22_000), Some(17_000))
        .await
        .expect("release");
    let u = s.get_user("usr_a").await.expect("get").expect("user");
    assert_eq!((u.failed_logins, u.locked_until), (5, Some(17_000)));
    assert_eq!(
        s.reserve_login("usr_x", 1, POLICY).await.expect("reserve"),
        Reservation::NoUser
    );

    // A session clears the count and the lock.
    assert!(
        s.open_session(session_of("usr_a", 1, 0))
            .await
            .expect("open")
    );
    let u = s.get_user("usr_a").await.expect("get").expect("user");
    assert_eq!((u.failed_logins, u.locked_until), (0, None));
    // Below the threshold nothing locks, and a release does not go below zero.
    assert_eq!(
        s.reserve_login("usr_a", 30_000, POLICY)
            .await
            .expect("reserve"),
        Reservation::Counted {
            lock: None,
            previous_lock: None
        }
    );
    for _ in 0..2 {
        s.release_login("usr_a", None, None).await.expect("release");
    }
    let u = s.get_user("usr_a").await.expect("get").expect("user");
    assert_eq!(u.failed_logins, 0);
}

/// An admin's change is one statement that raises the session generation; a
/// session opens only with the current generation of a user not disabled; the
/// second factor changes only from the value it was read with.
pub async fn admin_changes_win(s: AnyStore) {
    let mut a = user("usr_a", "ten_a", "idx-a");
    a.failed_logins = 4;
    a.locked_until = Some(50);
    a.totp_enc = Some(vec![1; 40]);
    s.insert_user(a).await.expect("insert");
    assert!(
        s.change_user("usr_a", UserChange::Logout)
            .await
            .expect("logout")
    );
    assert!(
        !s.open_session(session_of("usr_a", 1, 0))
            .await
            .expect("open"),
        "read before the logout: no session"
    );
    assert!(s.get_session(vec![1; 32]).await.expect("get").is_none());
    let u = s.get_user("usr_a").await.expect("get").expect("user");
    assert_eq!(
        (u.session_gen, u.failed_logins, u.locked_until),
        (1, 4, Some(50)),
        "and nothing of the sign-in written"
    );
    assert!(
        s.change_user("usr_a", UserChange::Password("new-hash".into()))
            .await
            .expect("password")
    );
    let u = s.get_user("usr_a").await.expect("get").expect("user");
    assert_eq!(
        (
            u.session_gen,
            u.password_hash.as_str(),
            u.failed_logins,
            u.locked_until
        ),
        (2, "new-hash", 0, None)
    );
    assert!(
        s.open_session(session_of("usr_a", 2, 2))
            .await
            .expect("open")
    );

    // The second factor: compare-and-set.
    assert!(
        !s.swap_second_factor("usr_a", Some(vec![9; 40]), Some(vec![2; 40]))
            .await
            .expect("swap"),
        "not the value it was read with"
    );
    assert!(
        s.swap_second_factor("usr_a", Some(vec![1; 40]), Some(vec![2; 40]))
            .await
            .expect("swap")
    );
    assert!(
        !s.swap_second_factor("usr_a", Some(vec![1; 40]), Some(vec![3; 40]))
            .await
            .expect("swap"),
        "a value is used once"
    );
    assert!(
        s.change_user("usr_a", UserChange::RemoveSecondFactor)
            .await
            .expect("remove")
    );
    assert!(
        !s.swap_second_factor("usr_a", Some(vec![2; 40]), Some(vec![4; 40]))
            .await
            .expect("swap"),
        "the admin's removal stands"
    );
    assert!(
        s.swap_second_factor("usr_a", None, Some(vec![5; 40]))
            .await
            .expect("enrol")
    );
    let u = s.get_user("usr_a").await.expect("get").expect("user");
    assert_eq!((u.session_gen, u.totp_enc), (3, Some(vec![5; 40])));

    assert!(
        s.change_user("usr_a", UserChange::Disable(70))
            .await
            .expect("disable")
    );
    assert!(
        s.change_user("usr_a", UserChange::Disable(90))
            .await
            .expect("disable")
    );
    let u = s.get_user("usr_a").await.expect("get").expect("user");
    assert_eq!(
        (u.session_gen, u.disabled_at),
        (5, Some(70)),
        "the first time stays"
    );
    assert!(
        !s.open_session(session_of("usr_a", 3, 5))
            .await
            .expect("open"),
        "disabled"
    );
    assert!(
        !s.change_user("usr_x", UserChange::Logout)
            .await
            .expect("unknown")
    );
}
