//! Mail transactions: replies per stage, pipelining, dot-stuffing, chunked writes and
//! SMTPUTF8.

use super::*;

#[tokio::test]
async fn transactions_table() {
    const NO_PIPE: &[&str] = &["SIZE 1000", "ENHANCEDSTATUSCODES"];
    const MIXED: &[&str] = &[
        "250 2.1.5 Ok",
        "550 5.1.1 <b@example.net> unknown",
        "250 Ok",
    ];
    const ALL_BAD: &[&str] = &["550 5.1.1 unknown", "450 4.2.0 greylisted"];
    const NO_RCPT: &str = "554 5.5.1 Error: no valid recipients";
    let pipelined = [
        "MAIL FROM:<s@example.com> SIZE=21",
        "RCPT TO:<a@example.net>",
    ];
    let cases: Vec<(&str, Script, usize, &str, Vec<&str>)> = vec![
        (
            "one rcpt, pipelined",
            OK,
            1,
            "ok 250 [250] 250",
            vec![pipelined[0], pipelined[1], "DATA"],
        ),
        (
            "one rejected rcpt, pipelined",
            Script { rcpt: MIXED, ..OK },
            3,
            "ok 250 [250,550,250] 250",
            vec![
                pipelined[0],
                pipelined[1],
                "RCPT TO:<b@example.net>",
                "RCPT TO:<c@example.net>",
                "DATA",
            ],
        ),
        (
            "one rejected rcpt, no pipelining",
            Script {
                rcpt: MIXED,
                caps: NO_PIPE,
                ..OK
            },
            3,
            "ok 250 [250,550,250] 250",
            vec![
                pipelined[0],
                pipelined[1],
                "RCPT TO:<b@example.net>",
                "RCPT TO:<c@example.net>",
                "DATA",
            ],
        ),
        (
            "all rcpts rejected, pipelined",
            Script {
                rcpt: ALL_BAD,
                data: NO_RCPT,
                ..OK
            },
            2,
            "ok 250 [550,450] none",
            vec![
                pipelined[0],
                pipelined[1],
                "RCPT TO:<b@example.net>",
                "DATA",
                "RSET",
            ],
        ),
        (
            "all rcpts rejected, no pipelining",
            Script {
                rcpt: ALL_BAD,
                caps: NO_PIPE,
                ..OK
            },
            2,
            "ok 250 [550,450] none",
            vec![
                pipelined[0],
                pipelined[1],
                "RCPT TO:<b@example.net>",
                "RSET",
            ],
        ),
        (
            "mail rejected, pipelined",
            Script {
                mail: "550 5.7.1 sender blocked",
                rcpt: &["503 5.5.1 need MAIL"],
                data: NO_RCPT,
                ..OK
            },
            1,
            "err rejected at mail from: 550 5.7.1 permanent=true",
            vec![pipelined[0], pipelined[1], "DATA", "RSET"],
        ),
        (
            "mail deferred, no pipelining",
            Script {
                mail: "451 4.3.0 try later",
                caps: NO_PIPE,
                ..OK
            },
            1,
            "err rejected at mail from: 451 4.3.0 permanent=false",
            vec![pipelined[0], "RSET"],
        ),
        (
            "final reply rejects",
            Script {
                final_reply: "552 5.3.4 message too big",
                ..OK
            },
            1,
            "ok 250 [250] 552",
            vec![pipelined[0], pipelined[1], "DATA", "RSET"],
        ),
        (
            "DATA command rejected",
            Script {
                data: "451 4.3.0 no data now",
                caps: NO_PIPE,
                ..OK
            },
            1,
            "ok 250 [250] 451",
            vec![pipelined[0], pipelined[1], "DATA", "RSET"],
        ),
        (
            "421 to RCPT closes",
            Script {
                rcpt: &["421 4.7.0 too many errors"],
                ..OK
            },
            1,
            "err rejected at rcpt to: 421 4.7.0 permanent=false",
            vec![pipelined[0], pipelined[1], "DATA"],
        ),
    ];
    for (name, script, n, expected, transcript) in cases {
        let (mut client, server) = connected(script, TlsMode::Opportunistic).await;
        let result = client
            .send(
                "s@example.com",
                &RCPTS[..n],
                b"Subject: x\r\n\r\nHello\r\n",
                false,
            )
            .await;
        assert_eq!(summary(&result), expected, "{name}");
        let usable = client.is_usable();
        assert_eq!(usable, !expected.contains("421"), "{name}");
        client.quit().await;
        let seen = server.await.unwrap();
        let mut want: Vec<&str> = vec!["EHLO client.test"];
        want.extend(transcript);
        if usable {
            want.push("QUIT");
        }
        assert_eq!(seen.lines, want, "{name}");
    }
}

#[tokio::test]
async fn pipelined_message_is_dot_stuffed_and_connection_reused() {
    let (addr, server) = start(OK).await;
    let mut client = SmtpClient::connect(addr, "mx.test", &config(TlsMode::Opportunistic))
        .await
        .unwrap();
    assert!(client.capabilities().pipelining && client.tls_info().is_none());
    assert_eq!(client.peer_addr(), addr);
    let message = "Subject: caf\u{e9}\r\n\r\n.leading dot\r\n..two\r\n.\r\nbare\nlf\r\nlast line";
    let result = client
        .send("s@example.com", &RCPTS[..2], message.as_bytes(), false)
        .await;
    assert_eq!(summary(&result), "ok 250 [250,250] 250");
    let result = client
        .send(
            "t@example.com",
            &RCPTS[2..],
            b"Subject: 2\r\n\r\nx\r\n",
            false,
        )
        .await;
    assert_eq!(summary(&result), "ok 250 [250] 250");
    assert!(client.is_usable());
    client.quit().await;
    let seen = server.await.unwrap();
    let size = format!(
        "MAIL FROM:<s@example.com> SIZE={} BODY=8BITMIME",
        message.len()
    );
    let expected_lines = [
        "EHLO client.test",
        &size,
        "RCPT TO:<a@example.net>",
        "RCPT TO:<b@example.net>",
        "DATA",
        "MAIL FROM:<t@example.com> SIZE=17",
        "RCPT TO:<c@example.net>",
        "DATA",
        "QUIT",
    ];
    assert_eq!(seen.lines, expected_lines);
    let wire = "Subject: caf\u{e9}\r\n\r\n..leading dot\r\n...two\r\n..\r\nbare\r\nlf\r\nlast line\r\n.\r\n";
    assert_eq!(String::from_utf8_lossy(&seen.messages[0]), wire);
    assert_eq!(seen.messages[1], b"Subject: 2\r\n\r\nx\r\n.\r\n");
}

#[tokio::test]
async fn large_message_is_sent_in_chunks() {
    let (mut client, server) = connected(OK, TlsMode::Disabled).await;
    let mut message = b"Subject: big\r\n\r\n".to_vec();
    while message.len() < 3 * WRITE_CHUNK {
        message.extend_from_slice(b".dotted line of text that is 40 bytes\r\n");
    }
    let result = client
        .send("s@example.com", &RCPTS[..1], &message, false)
        .await;
    assert_eq!(summary(&result), "ok 250 [250] 250");
    client.quit().await;
    let seen = server.await.unwrap();
    let lines = message
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"."))
        .count();
    assert_eq!(seen.messages[0].len(), message.len() + lines + 3);
}

/// A message to an internationalised recipient, asking for SMTPUTF8.
async fn send_utf8(client: &mut SmtpClient) -> Result<TransactionResult, SmtpError> {
    client
        .send(
            "s@example.com",
            &["j\u{fc}rgen@example.net"],
            b"x\r\n",
            true,
        )
        .await
}

#[tokio::test]
async fn smtputf8_parameter() {
    let script = Script {
        caps: &["PIPELINING", "SMTPUTF8"],
        ..OK
    };
    let (mut client, server) = connected(script, TlsMode::Disabled).await;
    let result = send_utf8(&mut client).await;
    assert_eq!(summary(&result), "ok 250 [250] 250");
    client.quit().await;
    assert_eq!(
        server.await.unwrap().lines[1],
        "MAIL FROM:<s@example.com> SMTPUTF8"
    );

    let (mut client, server) = connected(OK, TlsMode::Disabled).await;
    let result = send_utf8(&mut client).await;
    let err = result.unwrap_err();
    assert_eq!(err.to_string(), "rejected at mail from: 553 5.6.7");
    assert!(err.is_permanent());
    let bad = client
        .send("s@example.com", &["a@b>\r\nRSET"], b"x\r\n", false)
        .await;
    assert!(matches!(
        bad,
        Err(SmtpError::Protocol(SmtpStage::RcptTo, _))
    ));
    assert!(client.is_usable());
    client.quit().await;
    assert_eq!(server.await.unwrap().lines, ["EHLO client.test", "QUIT"]);
}
