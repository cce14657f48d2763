//! The HTTP listener protects itself, through the real binary: big bodies on small
//! endpoints are refused without being read into memory (the server's peak RSS stays
//! flat under four 60 MiB bodies), sends still take bodies up to
//! `[http] max_body_bytes`, a client that sends its headers a byte at a time is cut
//! off after `header_timeout`, a stalled body gets `408`, and connections over
//! `max_connections_per_ip` / `max_connections` get `503` while other clients are
//! served.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Harness, Options, wait_until};
use serde_json::{Value, json};

/// 60 MiB of `[0,0,…]`, the body of the reported attack.
fn big_array() -> Vec<u8> {
    let mut body = b"[".to_vec();
    body.extend(b"0,".repeat(30 * 1024 * 1024 - 1));
    body.extend(b"0]");
    body
}

/// The pid of this harness's `postwerk serve` (found by its config path).
fn server_pid(h: &Harness) -> u32 {
    let config = h.config.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            args.contains(&config.as_bytes()) && args.contains(&b"serve".as_slice())
        })
        .expect("postwerk serve is running")
}

/// A `/proc/<pid>/status` figure in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{field} in {status}"))
}

fn connect(h: &Harness) -> TcpStream {
    let s = TcpStream::connect(&h.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

/// Reads one response: (status, JSON body); `None` if the connection closed first.
fn read_response(s: &mut TcpStream) -> Option<(u16, Value)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head.split_whitespace().nth(1)?.parse().ok()?;
                let body =
                    serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap_or(Value::Null);
                return Some((status, body));
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[test]
fn big_bodies_on_small_endpoints_leave_memory_flat() {
    let h = Harness::start(Options {
        http: "max_body_bytes = 12582912",
        ..Default::default()
    });
    let pid = server_pid(&h);
    let body = big_array();
    // Warm up (first requests allocate pools), then measure the peak from here on.
    let (status, _) = h.request_with_key("POST", "/v1/auth/login", Some(&json!({})), &[], None);
    assert_eq!(status, 400);
    let before = status_kib(pid, "VmRSS");

    std::thread::scope(|scope| {
        // The reported attack: four clients send the whole body.
        for _ in 0..4 {
            scope.spawn(|| {
                let _ = ureq::post(&format!("http://{}/v1/auth/login", h.http))
                    .set("Content-Type", "application/json")
                    .send_bytes(&body);
            });
        }
        // The same without a length (chunked): refused once 16 KiB have arrived.
        for _ in 0..4 {
            scope.spawn(|| {
                let mut s = connect(&h);
                let head = "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                if s.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for part in body.chunks(1 << 20) {
                    let chunk = [format!("{:x}\r\n", part.len()).as_bytes(), part, b"\r\n"].concat();
                    if s.write_all(&chunk).is_err() {
                        return;
                    }
                }
            });
        }
        // A client that asks first gets a clean JSON answer without sending the body.
        let answers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut s = connect(&h);
                    let head = format!(
                        "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
                        body.len()
                    );
                    s.write_all(head.as_bytes()).unwrap();
                    read_response(&mut s)
                })
            })
            .collect();
        for a in answers {
            let (status, err) = a.join().unwrap().expect("an answer");
            assert_eq!(
                (status, &err["error"]["code"]),
                (413, &json!("payload_too_large")),
                "{err}"
            );
        }
    });
    let grown = status_kib(pid, "VmHWM").saturating_sub(before) / 1024;
    assert!(grown < 100, "peak RSS grew by {grown} MiB");

    // Small bodies: an array where an object belongs is a precise 400, naming no guess.
    let (status, err) = h.request_with_key(
        "POST",
        "/v1/auth/login",
        Some(&json!(["a@example.com", "pw"])),
        &[],
        None,
    );
    assert_eq!(
        (status, &err["error"]["code"]),
        (400, &json!("invalid_field"))
    );
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("a JSON object"),
        "{err}"
    );
    let (status, err) = h.request_with_key(
        "POST",
        "/v1/streams",
        Some(&json!({"name": "x", "retry": ["1m"], "pad": "y".repeat(20_000)})),
        &[],
        Some(&h.key),
    );
    assert_eq!(
        (status, &err["error"]["code"]),
        (413, &json!("payload_too_large"))
    );

    // Sends take bodies up to http.max_body_bytes (12 MiB here), and no more.
    let raw = |size: usize| {
        let data = format!(
            "From: app@example.com\r\nTo: big@example.test\r\nSubject: big\r\n\r\n{}\r\n",
            "x".repeat(size)
        );
        json!({"mail_from": "app@example.com", "rcpt_to": ["big@example.test"],
               "data": STANDARD.encode(data.as_bytes())})
    };
    let (status, v) = h.post("/v1/messages/raw", raw(8 << 20));
    assert_eq!(status, 202, "{v}");
    // Over it: refused on its Content-Length, before the body is sent.
    let mut s = connect(&h);
    let head = format!(
        "POST /v1/messages/raw HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        h.key,
        13 << 20
    );
    s.write_all(head.as_bytes()).unwrap();
    let (status, err) = read_response(&mut s).expect("an answer");
    assert_eq!(
        (status, &err["error"]["code"]),
        (413, &json!("payload_too_large"))
    );
    let (status, err) = h.post("/v1/messages", json!([{"from": "app@example.com"}]));
    assert_eq!(
        (status, &err["error"]["code"]),
        (400, &json!("invalid_field"))
    );
}

#[test]
fn slow_headers_and_stalled_bodies_are_cut_off() {
    let h = Harness::start(Options {
        http: "header_timeout = \"2s\"\nbody_timeout = \"2s\"",
        ..Default::default()
    });
    // Slowloris: the headers one byte per second never finish.
    let mut s = connect(&h);
    let head = format!(
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: {}\r\n\r\n",
        "a".repeat(60)
    );
    let mut closed = false;
    for byte in head.as_bytes() {
        if s.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
        // The server closes the connection: a read returns end of file at once.
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 64];
        let eof = matches!(s.read(&mut b), Ok(0));
        s.set_nonblocking(false).unwrap();
        if eof {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a client sending a header a byte a second was not cut off"
    );

    // A body that stops half way: 408 with the JSON error.
    let mut s = connect(&h);
    s.write_all(
        b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
    )
    .unwrap();
    let (status, err) = read_response(&mut s).expect("an answer");
    assert_eq!(
        (status, &err["error"]["code"]),
        (408, &json!("body_timeout")),
        "{err}"
    );

    // Meanwhile the server answers everyone else.
    let (status, _) = h.get("/v1/health");
    assert_eq!(status, 200);
}

/// `GET /v1/health` from another client address (`local`, on loopback), by Python:
/// the status, or `0` if the connection was refused or closed.
fn health_from(h: &Harness, local: &str) -> u16 {
    let addr: SocketAddr = h.http.parse().unwrap();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import http.client,sys\n\
             try:\n\
             \x20c=http.client.HTTPConnection(sys.argv[1],int(sys.argv[2]),timeout=10,source_address=(sys.argv[3],0))\n\
             \x20c.request('GET','/v1/health');print(c.getresponse().status)\n\
             except Exception: print(0)",
        ])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(local)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// `GET /v1/health` on a new connection from 127.0.0.1; the connection stays open.
fn health(h: &Harness) -> (TcpStream, Option<(u16, Value)>) {
    let mut s = connect(h);
    let _ = s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n");
    let answer = read_response(&mut s);
    (s, answer)
}

#[test]
fn connections_over_the_caps_get_503_while_others_are_served() {
    let h = Harness::start(Options {
        http: "max_connections = 6\nmax_connections_per_ip = 3",
        ..Default::default()
    });
    // Open (keep-alive) connections from 127.0.0.1 until one is refused: at most three
    // are served (the harness's own client may hold one of them) …
    let mut held: Vec<TcpStream> = Vec::new();
    let refused = loop {
        let (s, answer) = health(&h);
        match answer {
            Some((200, _)) => held.push(s),
            other => break other,
        }
        assert!(held.len() <= 3, "more than 3 connections from one address");
    };
    assert!(!held.is_empty());
    // … and the one over the cap gets the JSON error …
    let (status, err) = refused.expect("an answer");
    assert_eq!(
        (status, &err["error"]["code"]),
        (503, &json!("too_many_connections")),
        "{err}"
    );
    // … while another client is served.
    assert_eq!(health_from(&h, "127.0.0.2"), 200);
    // Closing one frees its place.
    drop(held.pop());
    assert!(
        wait_until(Duration::from_secs(10), || health(&h).1.map(|a| a.0)
            == Some(200)),
        "a freed place is given again"
    );

    // The total: six connections held from 127.0.0.3 and 127.0.0.5.
    drop(held);
    let others: Vec<std::process::Child> = ["127.0.0.3", "127.0.0.5"]
        .iter()
        .flat_map(|from| [from; 3])
        .map(|from| {
            std::process::Command::new("python3")
                .args([
                    "-c",
                    "import socket,sys,time\n\
                     s=socket.create_connection((sys.argv[1],int(sys.argv[2])),source_address=(sys.argv[3],0))\n\
                     time.sleep(30)",
                ])
                .arg("127.0.0.1")
                .arg(h.http.rsplit(':').next().unwrap())
                .arg(from)
                .spawn()
                .unwrap()
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(10), || health_from(&h, "127.0.0.4")
            == 503),
        "a seventh connection in all is refused"
    );
    for mut c in others {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(
        wait_until(Duration::from_secs(10), || health_from(&h, "127.0.0.4")
            == 200),
        "served again once the others left"
    );
}
