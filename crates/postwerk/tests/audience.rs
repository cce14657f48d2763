//! The audience through the real front door: lists and bulk membership, the contact
//! search and count, segments, CSV imports (mapping, rejects, repeats, the watchdog
//! holding a file until an admin decides, erased people skipped), exports with a
//! canary row of their own, registered canaries, and the CLI's import and export.

mod common;

use std::time::Duration;

use common::{Harness, Options, wait_until};
use serde_json::{Value, json};

/// A CSV upload to `path` with `key`: (status, JSON answer).
fn upload(h: &Harness, key: &str, path: &str, csv: &str) -> (u16, Value) {
    let result = ureq::post(&format!("http://{}{}", h.http, path))
        .set("Authorization", &format!("Bearer {key}"))
        .set("Content-Type", "text/csv")
        .send_bytes(csv.as_bytes());
    let resp = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST {path}: {e}"),
    };
    let status = resp.status();
    (
        status,
        serde_json::from_str(&resp.into_string().unwrap()).unwrap(),
    )
}

/// Polls an import until it leaves `screening` and `running`.
fn settled(h: &Harness, key: &str, id: &str) -> Value {
    let mut last = Value::Null;
    let done = wait_until(Duration::from_secs(30), || {
        let (s, v) = h.call(key, "GET", &format!("/v1/imports/{id}"), None);
        assert_eq!(s, 200, "{v}");
        last = v;
        !matches!(last["state"].as_str(), Some("screening" | "running"))
    });
    assert!(done, "import {id} did not settle: {last}");
    last
}

fn count(h: &Harness, key: &str, query: &str) -> i64 {
    let (s, v) = h.call(key, "GET", &format!("/v1/contacts/count?{query}"), None);
    assert_eq!(s, 200, "{query}: {v}");
    v["count"].as_i64().expect("count")
}

fn emails(page: &Value) -> Vec<String> {
    let mut out: Vec<String> = page["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|c| c["email"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn lists_membership_and_the_contact_search() {
    let h = Harness::start(Options::default());
    let key = &h.key;
    let (s, list) = h.call(
        key,
        "POST",
        "/v1/lists",
        Some(json!({"name": "newsletter"})),
    );
    assert_eq!(s, 201, "{list}");
    assert_eq!(list["members"], 0);
    let (s, dup) = h.call(
        key,
        "POST",
        "/v1/lists",
        Some(json!({"name": "newsletter"})),
    );
    assert_eq!(
        (s, dup["error"]["code"].as_str()),
        (409, Some("list_exists"))
    );
    let people = [
        ("anna@example.org", "Gdansk", vec!["newsletter", "vip"]),
        ("jan@example.org", "gdansk ", vec!["newsletter"]),
        ("ola@example.net", "Berlin", vec!["newsletter"]),
        ("piotr@example.net", "Gdansk", vec![]),
    ];
    for (email, city, lists) in &people {
        let body = json!({"attributes": {"city": city, "tier": 2}, "lists": lists});
        let (s, c) = h.call(key, "PUT", &format!("/v1/contacts/{email}"), Some(body));
        assert_eq!(s, 201, "{c}");
    }
    let (_, anna) = h.call(key, "GET", "/v1/contacts/anna@example.org", None);
    let mut lists: Vec<&str> = anna["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    lists.sort();
    assert_eq!(
        lists,
        ["newsletter", "vip"],
        "a new list name made the list"
    );

    assert_eq!(count(&h, key, "list=newsletter"), 3);
    assert_eq!(
        count(&h, key, &format!("list={}", list["id"].as_str().unwrap())),
        3
    );
    assert_eq!(count(&h, key, "list=newsletter&list=vip"), 1);
    assert_eq!(
        count(&h, key, "attributes.city=GDANSK"),
        3,
        "case and blanks ignored"
    );
    assert_eq!(
        count(&h, key, "attributes.tier=2"),
        4,
        "numbers match their text"
    );
    assert_eq!(count(&h, key, "list=newsletter&attributes.city=berlin"), 1);
    assert_eq!(count(&h, key, "email=Ola@Example.NET"), 1);
    assert_eq!(count(&h, key, "consent.marketing=none"), 4);
    let (s, c) = h.call(
        key,
        "POST",
        "/v1/contacts/jan@example.org/consents",
        Some(json!({"purpose": "marketing", "lawful_basis": "consent", "source": "form"})),
    );
    assert_eq!(s, 201, "{c}");
    assert_eq!(count(&h, key, "consent.marketing=active"), 1);
    assert_eq!(count(&h, key, "consent.marketing=none"), 3);
    let (s, bad) = h.call(
        key,
        "GET",
        "/v1/contacts/count?consent.marketing=maybe",
        None,
    );
    assert_eq!(
        (s, bad["error"]["code"].as_str()),
        (422, Some("invalid_filter"))
    );
    let (s, bad) = h.call(key, "GET", "/v1/contacts?colour=red", None);
    assert_eq!(
        (s, bad["error"]["code"].as_str()),
        (422, Some("unknown_parameter"))
    );
    let (s, bad) = h.call(key, "GET", "/v1/contacts/count?list=nope", None);
    assert_eq!(
        (s, bad["error"]["code"].as_str()),
        (422, Some("unknown_list"))
    );

    // Pages of two cover every contact once.
    let mut seen = Vec::new();
    let mut path = "/v1/contacts?limit=2".to_string();
    loop {
        let (s, page) = h.call(key, "GET", &path, None);
        assert_eq!(s, 200, "{page}");
        seen.extend(emails(&page));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/contacts?limit=2&cursor={c}"),
            None => break,
        }
    }
    seen.sort();
    let mut all: Vec<String> = people.iter().map(|p| p.0.to_string()).collect();
    all.sort();
    assert_eq!(seen, all);
    let admin = h.new_key(None, "admin", &[]);
    assert!(
        !h.audit_entries(&admin, "contacts.list").is_empty(),
        "searches are audited"
    );

    // Bulk membership: contacts join, strangers do not.
    let body = json!({"emails": ["piotr@example.net", "stranger@example.org", "anna@example.org"]});
    let (s, added) = h.call(key, "POST", "/v1/lists/newsletter/members", Some(body));
    assert_eq!(s, 200, "{added}");
    assert_eq!(
        (added["added"].as_i64(), added["not_added"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(count(&h, key, "list=newsletter"), 4);
    let body = json!({"emails": ["anna@example.org", "jan@example.org"]});
    let (s, removed) = h.call(key, "DELETE", "/v1/lists/newsletter/members", Some(body));
    assert_eq!((s, removed["removed"].as_i64()), (200, Some(2)));
    let (s, page) = h.call(key, "GET", "/v1/contacts?list=newsletter", None);
    assert_eq!(s, 200);
    assert_eq!(emails(&page), ["ola@example.net", "piotr@example.net"]);

    let (s, renamed) = h.call(
        key,
        "PATCH",
        "/v1/lists/newsletter",
        Some(json!({"name": "news"})),
    );
    assert_eq!(
        (s, renamed["name"].as_str(), renamed["members"].as_i64()),
        (200, Some("news"), Some(2))
    );
    let (s, shown) = h.call(key, "GET", "/v1/lists/news", None);
    assert_eq!((s, shown["members"].as_i64()), (200, Some(2)));
    let (s, _) = h.call(key, "DELETE", "/v1/lists/news", None);
    assert_eq!(s, 204);
    let (s, _) = h.call(key, "GET", "/v1/lists/news", None);
    assert_eq!(s, 404);
    let (_, ola) = h.call(key, "GET", "/v1/contacts/ola@example.net", None);
    assert_eq!(
        ola["lists"],
        json!([]),
        "the contact stays, off the deleted list"
    );

    // Segments: a saved filter counts what it names now.
    let body =
        json!({"name": "gdansk", "filter": {"attributes": {"city": "gdansk"}, "lists": ["vip"]}});
    let (s, seg) = h.call(key, "POST", "/v1/segments", Some(body));
    assert_eq!(s, 201, "{seg}");
    let (s, shown) = h.call(key, "GET", "/v1/segments/gdansk", None);
    assert_eq!((s, shown["count"].as_i64()), (200, Some(1)));
    assert_eq!(count(&h, key, "segment=gdansk"), 1);
    let (s, preview) = h.call(
        key,
        "POST",
        "/v1/segments/preview",
        Some(json!({"attributes": {"city": "gdansk"}})),
    );
    assert_eq!((s, preview["count"].as_i64()), (200, Some(3)));
    let (s, bad) = h.call(
        key,
        "POST",
        "/v1/segments",
        Some(json!({"name": "x", "filter": {"lists": ["nope"]}})),
    );
    assert_eq!(
        (s, bad["error"]["code"].as_str()),
        (422, Some("unknown_list"))
    );

    // An erased person leaves every list and the search.
    let privacy = h.new_key(None, "privacy", &[]);
    let (s, erased) = h.call(&privacy, "DELETE", "/v1/subjects/anna@example.org", None);
    assert_eq!(s, 200, "{erased}");
    assert_eq!(erased["erased"]["list_memberships"], 1);
    assert_eq!(count(&h, key, "list=vip"), 0);
    assert_eq!(count(&h, key, "attributes.city=gdansk"), 2);
}

#[test]
fn imports_are_screened_held_decided_and_never_bring_back_the_erased() {
    let h = Harness::start(Options::default());
    let key = h.new_key(None, "read,write,import,privacy", &[]);
    let admin = h.new_key(None, "read,admin", &[]);
    let (s, _) = h.call(&key, "POST", "/v1/lists", Some(json!({"name": "club"})));
    assert_eq!(s, 201);

    // Mapping, quoting, an invalid address, a likely typo, a repeat that merges.
    let csv = "Address,Vorname,Stadt,notes\r\n\
               anna@example.org,Anna,Gdansk,x\r\n\
               not-an-address,X,Y,z\r\n\
               bob@gmial.com,Bob,Lodz,\r\n\
               \"jan@example.org\",\"Jan, Jr.\",Sopot,\r\n\
               ANNA@example.org,,Gdynia,\r\n";
    let path = "/v1/imports?list=club&consent=marketing&source=fair&map.Address=email&map.Stadt=attribute:city&map.notes=skip";
    let (s, imp) = upload(&h, &key, path, csv);
    assert_eq!(s, 202, "{imp}");
    assert!(imp["id"].as_str().unwrap().starts_with("imp_"));
    let done = settled(&h, &key, imp["id"].as_str().unwrap());
    assert_eq!(done["state"], "done", "{done}");
    let c = &done["counts"];
    assert_eq!(
        (
            c["rows"].as_i64(),
            c["imported"].as_i64(),
            c["rejected"].as_i64(),
            c["duplicates"].as_i64()
        ),
        (Some(5), Some(2), Some(2), Some(1)),
        "{done}"
    );
    let reasons: Vec<&str> = done["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["invalid_address", "likely_typo:gmail.com"]);
    assert_eq!(done["rejects"][0]["row"], 3);
    let (_, anna) = h.call(&key, "GET", "/v1/contacts/anna@example.org", None);
    assert_eq!(
        anna["attributes"],
        json!({"Vorname": "Anna", "city": "Gdynia"}),
        "the repeat merged"
    );
    assert_eq!(anna["lists"], json!(["club"]));
    let consent = &anna["consent_history"][0];
    assert_eq!(
        (consent["purpose"].as_str(), consent["source"].as_str()),
        (Some("marketing"), Some("fair")),
        "{anna}"
    );
    assert_eq!(count(&h, &key, "list=club&consent.marketing=active"), 2);
    assert_eq!(h.audit_entries(&admin, "import.done").len(), 1);

    // A file of role addresses is held: nothing of it is written until an admin decides.
    let mut roles = String::from("email\n");
    for i in 0..60 {
        let local = if i % 2 == 0 { "info" } else { "buyer" };
        roles.push_str(&format!("{local}@shop{i}.example.net\n"));
    }
    let (s, held) = upload(&h, &key, "/v1/imports?list=club", &roles);
    assert_eq!((s, held["state"].as_str()), (202, Some("held")), "{held}");
    assert_eq!(held["reasons"][0]["signal"], "role_addresses");
    assert_eq!(held["reasons"][0]["count"], 30);
    assert_eq!(
        count(&h, &key, "list=club"),
        2,
        "a held import writes nothing"
    );
    let id = held["id"].as_str().unwrap();
    let (s, _) = h.call(&key, "POST", &format!("/v1/imports/{id}/approve"), None);
    assert_eq!(s, 403, "approving takes the admin scope");
    let (s, approved) = h.call(&admin, "POST", &format!("/v1/imports/{id}/approve"), None);
    assert_eq!(
        (s, approved["state"].as_str()),
        (200, Some("running")),
        "{approved}"
    );
    assert_eq!(settled(&h, &key, id)["state"], "done");
    assert_eq!(count(&h, &key, "list=club"), 62);
    let (s, again) = h.call(&admin, "POST", &format!("/v1/imports/{id}/discard"), None);
    assert_eq!(
        (s, again["error"]["code"].as_str()),
        (409, Some("invalid_state"))
    );

    // A held file discarded: nothing written, nothing left.
    let (_, held) = upload(
        &h,
        &key,
        "/v1/imports?list=club",
        &roles.replace("shop", "store"),
    );
    let id = held["id"].as_str().unwrap();
    let (s, discarded) = h.call(&admin, "POST", &format!("/v1/imports/{id}/discard"), None);
    assert_eq!((s, discarded["state"].as_str()), (200, Some("cancelled")));
    assert_eq!(count(&h, &key, "list=club"), 62);
    assert!(!h.data.join("imports").join(format!("{id}.spool")).exists());

    // An erased person's row is skipped.
    let (s, _) = h.call(&key, "DELETE", "/v1/subjects/jan@example.org", None);
    assert_eq!(s, 200);
    let (_, imp) = upload(
        &h,
        &key,
        "/v1/imports?list=club",
        "email\njan@example.org\nzoe@example.org\n",
    );
    let done = settled(&h, &key, imp["id"].as_str().unwrap());
    assert_eq!(
        (
            done["counts"]["skipped_erased"].as_i64(),
            done["counts"]["imported"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let (s, _) = h.call(&key, "GET", "/v1/contacts/jan@example.org", None);
    assert_eq!(s, 404);

    // Bad files get precise errors.
    let (s, e) = upload(&h, &key, "/v1/imports", "name\nx\n");
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("missing_email_column"))
    );
    let (s, e) = upload(&h, &key, "/v1/imports", "email\n\"open\n");
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_csv")));
    let (s, e) = upload(&h, &key, "/v1/imports?list=nope", "email\na@example.org\n");
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("unknown_list"))
    );
    let (s, _) = upload(&h, &h.key, "/v1/imports", "email\na@example.org\n");
    assert_eq!(s, 403, "importing takes the import scope");
    let (s, list) = h.call(&key, "GET", "/v1/imports", None);
    assert_eq!(s, 200);
    let states: Vec<&str> = list["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.len(), 6, "{states:?}");
    assert_eq!(
        states[0], "failed",
        "newest first: the unreadable file failed"
    );
}

#[test]
fn exports_carry_a_canary_of_their_own_and_the_cli_imports_and_exports() {
    let h = Harness::start(Options {
        extra: "[canaries]\ndomain = \"canary.example.net\"\n",
        ..Options::default()
    });
    let key = h.new_key(None, "read,write,import,export,privacy", &[]);
    let dir = h.root.path();
    let file = dir.join("people.csv");
    let mut csv = String::from("email,first_name,city\n");
    // Five domains: one domain's share over 80 % would hold the file.
    let domains = [
        "example.org",
        "example.net",
        "mail.test",
        "post.test",
        "box.test",
    ];
    for i in 0..120 {
        let domain = domains[i % 5];
        csv.push_str(&format!("p{i}@{domain},P{i},\"Town, {}\"\n", i % 3));
    }
    std::fs::write(&file, csv).unwrap();
    h.cli_ok(&["lists", "create", "members"]);
    let out = h.cli(&[
        "contacts",
        "import",
        file.to_str().unwrap(),
        "--list",
        "members",
        "--consent",
        "marketing",
        "--source",
        "fair",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("120 imported"));
    let listed: Value = serde_json::from_str(&h.cli_ok(&["lists", "list", "--json"])).unwrap();
    assert_eq!(listed[0]["members"], 120);

    let resp = ureq::get(&format!(
        "http://{}/v1/contacts/export?list=members",
        h.http
    ))
    .set("Authorization", &format!("Bearer {key}"))
    .call()
    .expect("export");
    let export_id = resp
        .header("X-Postwerk-Export")
        .expect("export id")
        .to_string();
    let text = resp.into_string().unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("email,city,first_name,lists,created_at"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 121, "120 members and one canary");
    let canaries: Vec<&&str> = rows
        .iter()
        .filter(|r| r.contains("@canary.example.net"))
        .collect();
    assert_eq!(canaries.len(), 1);
    assert!(
        rows.iter()
            .any(|r| r.starts_with("p7@mail.test,\"Town, 1\",P7,members,")),
        "{text}"
    );
    let address = canaries[0].split(',').next().unwrap();
    let (s, found) = h.call(
        &key,
        "GET",
        &format!("/v1/canaries?origin=export:{export_id}"),
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(
        found["canaries"][0]["address"], address,
        "the export is recovered from its canary"
    );
    assert_eq!(found["canaries"][0]["label"], "members");

    // The CLI's export: header first, one canary of its own, a different one.
    let cli = h.cli_ok(&["contacts", "export", "--list", "members"]);
    let cli_canary: Vec<&str> = cli
        .lines()
        .filter(|r| r.contains("@canary.example.net"))
        .collect();
    assert_eq!((cli.lines().count(), cli_canary.len()), (122, 1));
    assert!(!cli.contains(address), "each export has its own canary");

    let (s, registered) = h.call(
        &key,
        "POST",
        "/v1/canaries",
        Some(json!({"label": "seed list"})),
    );
    assert_eq!(s, 201, "{registered}");
    assert!(
        registered["address"]
            .as_str()
            .unwrap()
            .ends_with("@canary.example.net")
    );
    let (s, all) = h.call(&key, "GET", "/v1/canaries", None);
    assert_eq!(
        (s, all["canaries"].as_array().map(Vec::len)),
        (200, Some(3))
    );

    // Mail from elsewhere reaching a canary raises the alarm; an unknown address at the
    // canary domain is refused.
    let script = "import smtplib, sys\n\
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=20)\n\
msg = b'From: Deals <deals@leaker.test>\\r\\nSubject: hi\\r\\nMessage-ID: <x1@leaker.test>\\r\\n\\r\\nbuy\\r\\n'\n\
s.sendmail('spam@leaker.test', [sys.argv[2]], msg)\n\
try:\n    s.sendmail('spam@leaker.test', ['nobody@canary.example.net'], msg)\n    print('accepted')\n\
except smtplib.SMTPRecipientsRefused:\n    print('refused')\n\
s.quit()\n";
    let canary = registered["address"].as_str().unwrap();
    let out = common::python(script, &[&h.mx.to_string(), canary]);
    assert_eq!(out.trim(), "refused", "{out}");
    let (_, all) = h.call(&key, "GET", "/v1/canaries?origin=registered", None);
    assert!(all["canaries"][0]["triggered_at"].is_string(), "{all}");
    let (s, incidents) = h.call(&key, "GET", "/v1/privacy/incidents", None);
    assert_eq!(s, 200, "{incidents}");
    let text = incidents.to_string();
    assert!(
        text.contains("seed list") && text.contains("leaker.test"),
        "{text}"
    );
    let (s, events) = h.call(&key, "GET", "/v1/events?type=canary_triggered", None);
    assert_eq!(s, 200, "{events}");
    assert_eq!(
        events["events"][0]["from_domain"], "leaker.test",
        "{events}"
    );
    assert_eq!(events["events"][0]["canary"], canary);
    let (s, _) = h.call(&h.key, "GET", "/v1/contacts/export", None);
    assert_eq!(s, 403, "exporting takes the export scope");
}

/// A session cookie for `email` (`POST /v1/auth/login`).
fn sign_in(h: &Harness, email: &str, password: &str) -> String {
    let resp = ureq::post(&format!("http://{}/v1/auth/login", h.http))
        .send_json(json!({"email": email, "password": password}))
        .expect("sign in");
    let cookie = resp.header("set-cookie").expect("session cookie");
    cookie.split(';').next().unwrap().to_string()
}

/// A GET with a session cookie: (status, JSON).
fn get_as(h: &Harness, cookie: &str, path: &str) -> (u16, Value) {
    let resp = match ureq::get(&format!("http://{}{path}", h.http))
        .set("Cookie", cookie)
        .call()
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}"),
    };
    (resp.status(), resp.into_json().unwrap_or(Value::Null))
}

#[test]
fn a_user_limited_to_some_lists_reads_only_their_contacts() {
    let h = Harness::start(Options::default());
    let key = &h.key;
    for (email, list) in [
        ("north@example.org", "north"),
        ("south@example.org", "south"),
        ("both@example.org", "north"),
    ] {
        let body = json!({"lists": [list], "attributes": {"area": list}});
        let (s, _) = h.call(key, "PUT", &format!("/v1/contacts/{email}"), Some(body));
        assert_eq!(s, 201);
    }
    let (s, _) = h.call(
        key,
        "POST",
        "/v1/lists/south/members",
        Some(json!({"emails": ["both@example.org"]})),
    );
    assert_eq!(s, 200);
    let admin = h.new_key(None, "admin", &[]);
    let id = h.create_user(
        "default",
        "reader@example.org",
        "analyst",
        "reader-password-1",
    );
    let (s, user) = h.call(
        &admin,
        "PUT",
        &format!("/v1/users/{id}/lists"),
        Some(json!({"lists": ["north"]})),
    );
    assert_eq!(s, 200, "{user}");
    assert_eq!(user["lists"].as_array().map(Vec::len), Some(1));
    let (s, bad) = h.call(
        &admin,
        "PUT",
        &format!("/v1/users/{id}/lists"),
        Some(json!({"lists": ["nope"]})),
    );
    assert_eq!(
        (s, bad["error"]["code"].as_str()),
        (422, Some("unknown_list"))
    );

    let cookie = sign_in(&h, "reader@example.org", "reader-password-1");
    let (s, page) = get_as(&h, &cookie, "/v1/contacts");
    assert_eq!(s, 200, "{page}");
    assert_eq!(emails(&page), ["both@example.org", "north@example.org"]);
    let (_, south) = get_as(&h, &cookie, "/v1/contacts/count?list=south");
    assert_eq!(south["count"], 1, "only south's members also on north");
    let (s, _) = get_as(&h, &cookie, "/v1/contacts/south@example.org");
    assert_eq!(
        s, 404,
        "a contact on no list of theirs is not there for them"
    );
    let (s, _) = get_as(&h, &cookie, "/v1/contacts/north@example.org");
    assert_eq!(s, 200);
    let (_, lists) = get_as(&h, &cookie, "/v1/lists");
    assert_eq!(lists["lists"].as_array().map(Vec::len), Some(1));

    // Lifted: every contact again; an API key is never limited.
    let (s, _) = h.call(
        &admin,
        "PUT",
        &format!("/v1/users/{id}/lists"),
        Some(json!({"lists": null})),
    );
    assert_eq!(s, 200);
    let (_, page) = get_as(&h, &cookie, "/v1/contacts");
    assert_eq!(emails(&page).len(), 3);
    assert_eq!(count(&h, key, "list=south"), 2);
}
