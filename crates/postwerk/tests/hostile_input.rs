//! Issue 15, hostile input through the real sockets of both SMTP listeners (submission
//! from a trusted network, and the inbound MX) and the raw-send API:
//! - commands that used to panic the session (a multi-byte character where `FROM:`
//!   belongs, or inside a VERP recipient) get a 5xx with an enhanced code and the
//!   session goes on;
//! - a NUL byte anywhere in DATA or BDAT (SMTP smuggling towards a next hop that
//!   drops NULs) refuses the message with `554 5.6.0`, and nothing is delivered;
//! - two From headers, or one From with two mailboxes, are refused: API `422
//!   multiple_from`, SMTP `550 5.7.1`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{Harness, Options, Sink};
use serde_json::json;

/// A plain-text SMTP client that writes exactly the bytes it is given.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// Connects, reads the banner and says EHLO.
    fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut c = Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        assert!(c.reply().starts_with("220 "));
        assert!(c.cmd(b"EHLO client.test").starts_with("250"));
        c
    }

    /// Reads one (possibly multi-line) reply; its last line without CRLF.
    fn reply(&mut self) -> String {
        loop {
            let mut line = Vec::new();
            self.reader.read_until(b'\n', &mut line).unwrap();
            let line = String::from_utf8_lossy(&line).trim_end().to_string();
            assert!(
                line.len() >= 3,
                "connection closed or short reply: {line:?}"
            );
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
        }
    }

    /// Sends raw bytes.
    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Sends one command line (CRLF added) and reads its reply.
    fn cmd(&mut self, line: &[u8]) -> String {
        self.send(line);
        self.send(b"\r\n");
        self.reply()
    }

    /// MAIL and RCPT, both accepted.
    fn envelope(&mut self, from: &str, to: &str) {
        let mail = self.cmd(format!("MAIL FROM:<{from}>").as_bytes());
        assert!(mail.starts_with("250"), "{mail}");
        let rcpt = self.cmd(format!("RCPT TO:<{to}>").as_bytes());
        assert!(rcpt.starts_with("250"), "{rcpt}");
    }

    /// A whole DATA transaction with `body` sent as is (it must end with CRLF.CRLF);
    /// the reply at its end.
    fn data(&mut self, from: &str, to: &str, body: &[u8]) -> String {
        self.envelope(from, to);
        assert!(self.cmd(b"DATA").starts_with("354"));
        self.send(body);
        self.reply()
    }

    /// Ends the session.
    fn quit(mut self) {
        assert!(self.cmd(b"QUIT").starts_with("221"));
    }

    /// The session still works.
    fn assert_alive(&mut self) {
        assert_eq!(self.cmd(b"NOOP"), "250 2.0.0 OK");
    }
}

fn harness(sink: &Sink) -> Harness {
    Harness::start(Options {
        inbound: "feedback_addresses = [\"fbl@bounces.example.com\"]\n",
        extra: "[[smtp.submission.trusted]]\ncidr = \"127.0.0.1\"\n",
        ..Options::to(sink)
    })
}

fn assert_no_panic(h: &Harness) {
    let log = h.server_log();
    assert!(!log.to_lowercase().contains("panic"), "{log}");
}

#[test]
fn commands_that_panicked_get_5xx_and_the_session_goes_on() {
    let sink = Sink::temp(false);
    let h = harness(&sink);
    for port in [h.smtp, h.mx] {
        let mut c = Client::connect(port);
        for line in [
            "MAIL FROM\u{e9}:<a@b.example>",
            "MAIL FR\u{f6}M:<a@b.example>",
            "RCPT T\u{f6}:<a@b.example>",
        ] {
            assert_eq!(
                c.cmd(line.as_bytes()),
                "501 5.5.4 Syntax error in parameters or arguments",
                "{port}: {line}"
            );
            c.assert_alive();
        }
        c.quit();
    }
    // A VERP-looking recipient with a multi-byte character across byte 5 of its id.
    let mut c = Client::connect(h.mx);
    assert!(c.cmd(b"MAIL FROM:<>").starts_with("250"));
    let rcpt = c.cmd("RCPT TO:<b+rcpt\u{e9}01-0a@bounces.example.com>".as_bytes());
    assert!(
        rcpt.starts_with("550 5.1.1") || rcpt.starts_with("501 5.1.3"),
        "{rcpt}"
    );
    c.assert_alive();
    c.quit();
    assert_no_panic(&h);
}

#[test]
fn nul_bytes_in_data_or_bdat_are_refused_on_both_listeners() {
    let sink = Sink::temp(false);
    let h = harness(&sink);
    let smuggled = |nul_line: &[u8]| {
        let mut m = b"From: app@example.com\r\nSubject: s\r\n\r\na\r\n".to_vec();
        m.extend_from_slice(nul_line);
        m.extend_from_slice(b"MAIL FROM:<app@example.com>\r\nRCPT TO:<smuggled@example.test>\r\nDATA\r\nFrom: app@example.com\r\n\r\nx\r\n.\r\n");
        m
    };
    let bodies = [
        smuggled(b"\r\n\x00.\r\n"),
        smuggled(b"\r\n.\x00\r\n"),
        b"From: app@example.com\r\nSubject: s\r\n\r\na\x00b\r\n.\r\n".to_vec(),
    ];
    for (port, from, to) in [
        (h.smtp, "app@example.com", "nul@example.test"),
        (h.mx, "", "fbl@bounces.example.com"),
    ] {
        let mut c = Client::connect(port);
        for body in &bodies {
            assert_eq!(
                c.data(from, to, body),
                "554 5.6.0 NUL bytes are not allowed in messages",
                "{port}: {:?}",
                String::from_utf8_lossy(body)
            );
            c.assert_alive();
        }
        // BDAT: the NUL in the second chunk, at the start of a line.
        c.envelope(from, to);
        let first = b"From: app@example.com\r\n\r\na\r\n";
        c.send(format!("BDAT {}\r\n", first.len()).as_bytes());
        c.send(first);
        assert!(c.reply().starts_with("250"));
        let last = b"\x00.\r\nb\r\n";
        c.send(format!("BDAT {} LAST\r\n", last.len()).as_bytes());
        c.send(last);
        assert_eq!(c.reply(), "554 5.6.0 NUL bytes are not allowed in messages");
        c.assert_alive();
        c.quit();
    }
    // A clean message afterwards is the only one that arrives.
    let mut c = Client::connect(h.smtp);
    let ok = c.data(
        "app@example.com",
        "clean@example.test",
        b"From: app@example.com\r\nSubject: clean\r\n\r\nhello\r\n.\r\n",
    );
    assert!(ok.starts_with("250 2.0.0 Ok: queued as msg_"), "{ok}");
    c.quit();
    assert!(
        sink.wait_for(1, Duration::from_secs(30)),
        "{}",
        h.server_log()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.count(), 1);
    assert_eq!(sink.messages()[0].1["rcpt"], json!(["clean@example.test"]));
    assert_no_panic(&h);
}

#[test]
fn more_than_one_from_is_refused_by_the_api_and_smtp() {
    let sink = Sink::temp(false);
    let h = harness(&sink);
    let bad = [
        "From: app@example.com\r\nFrom: ceo@other.example\r\nSubject: s\r\n\r\nb\r\n",
        "From: ceo@other.example, App <app@example.com>\r\nSubject: s\r\n\r\nb\r\n",
        "From: <ceo@other.example>,\r\n <app@example.com>\r\nSubject: s\r\n\r\nb\r\n",
    ];
    let raw = |message: &str| {
        h.post(
            "/v1/messages/raw",
            json!({"mail_from": "app@example.com", "rcpt_to": ["x@example.test"], "data": B64.encode(message)}),
        )
    };
    let mut c = Client::connect(h.smtp);
    for message in bad {
        let (status, v) = raw(message);
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (422, Some("multiple_from")),
            "{message}: {v}"
        );
        let mut body = message.as_bytes().to_vec();
        body.extend_from_slice(b".\r\n");
        assert_eq!(
            c.data("app@example.com", "x@example.test", &body),
            "550 5.7.1 Message must have exactly one From header with one mailbox",
            "{message}"
        );
    }
    // One From with one mailbox passes both doors.
    let good = "From: \"App, Inc.\" <app@example.com>\r\nSubject: s\r\n\r\nb\r\n";
    let (status, v) = raw(good);
    assert_eq!(status, 202, "{v}");
    let ok = c.data(
        "app@example.com",
        "x@example.test",
        format!("{good}.\r\n").as_bytes(),
    );
    assert!(ok.starts_with("250 "), "{ok}");
    c.quit();
    assert!(
        sink.wait_for(2, Duration::from_secs(30)),
        "{}",
        h.server_log()
    );
}
