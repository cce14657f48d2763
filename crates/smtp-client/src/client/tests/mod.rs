//! SMTP client tests against a scripted in-process server (plain and STARTTLS).

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::*;

mod connection;
mod transactions;

/// A scripted SMTP server: fixed replies, records every command line and message.
#[derive(Clone)]
struct Script {
    greeting: &'static str,
    caps: &'static [&'static str],
    reject_ehlo: bool,
    mail: &'static str,
    rcpt: &'static [&'static str],
    data: &'static str,
    final_reply: &'static str,
    close_in_data: bool,
    tls: Option<Arc<rustls::ServerConfig>>,
}

const OK: Script = Script {
    greeting: "220 mx.test ESMTP",
    caps: &[
        "PIPELINING",
        "SIZE 10000000",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
    ],
    reject_ehlo: false,
    mail: "250 2.1.0 Ok",
    rcpt: &["250 2.1.5 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok"],
    data: "354 End data with <CR><LF>.<CR><LF>",
    final_reply: "250 2.0.0 Ok: queued as 1234",
    close_in_data: false,
    tls: None,
};

#[derive(Default, Debug)]
struct Seen {
    lines: Vec<String>,
    messages: Vec<Vec<u8>>,
    rcpt_index: usize,
}

async fn start(script: Script) -> (SocketAddr, JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut seen = Seen::default();
        if let Some(tcp) = serve(tcp, &script, &mut seen, false).await {
            let acceptor = tokio_rustls::TlsAcceptor::from(script.tls.clone().unwrap());
            let tls = acceptor.accept(tcp).await.unwrap();
            serve(tls, &script, &mut seen, true).await;
        }
        seen
    });
    (addr, handle)
}

/// A scripted server and a client connected to it as `mx.test` with `tls`.
async fn connected(script: Script, tls: TlsMode) -> (SmtpClient, JoinHandle<Seen>) {
    let (addr, server) = start(script).await;
    let client = SmtpClient::connect(addr, "mx.test", &config(tls))
        .await
        .unwrap();
    (client, server)
}

/// Serves one session; returns the plain stream when the client asked for STARTTLS.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    script: &Script,
    seen: &mut Seen,
    in_tls: bool,
) -> Option<S> {
    let mut io = BufReader::new(stream);
    if !in_tls {
        if script.greeting.is_empty() {
            let _ = io.read_to_end(&mut Vec::new()).await; // silent until the client leaves
            return None;
        }
        send(&mut io, script.greeting).await;
        if !script.greeting.starts_with("220") {
            return None;
        }
    }
    loop {
        let mut line = String::new();
        if io.read_line(&mut line).await.unwrap_or(0) == 0 {
            return None;
        }
        let line = line.trim_end().to_owned();
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        seen.lines.push(line);
        let reply = match verb.as_str() {
            "EHLO" if script.reject_ehlo => "502 5.5.2 Error: command not recognized".into(),
            "EHLO" => {
                let mut r = String::from("250-mx.test");
                let starttls = script.tls.is_some() && !in_tls;
                for cap in script.caps.iter().chain(starttls.then_some(&"STARTTLS")) {
                    r.push_str("\r\n250-");
                    r.push_str(cap);
                }
                r.push_str("\r\n250 DSN");
                r
            }
            "HELO" => "250 mx.test".into(),
            "MAIL" => script.mail.into(),
            "RCPT" => {
                seen.rcpt_index += 1;
                script.rcpt[(seen.rcpt_index - 1) % script.rcpt.len()].into()
            }
            "RSET" => "250 2.0.0 Ok".into(),
            "STAR" => {
                send(&mut io, "220 2.0.0 Ready to start TLS").await;
                return Some(io.into_inner());
            }
            "QUIT" => {
                send(&mut io, "221 2.0.0 Bye").await;
                return None;
            }
            "DATA" => {
                send(&mut io, script.data).await;
                if !script.data.starts_with("354") {
                    continue;
                }
                let mut message = Vec::new();
                loop {
                    let start = message.len();
                    if io.read_until(b'\n', &mut message).await.unwrap_or(0) == 0 {
                        return None;
                    }
                    if script.close_in_data {
                        return None; // drop the connection mid-message
                    }
                    if &message[start..] == b".\r\n" {
                        break;
                    }
                }
                seen.messages.push(message);
                script.final_reply.into()
            }
            _ => "500 5.5.2 unknown command".into(),
        };
        send(&mut io, &reply).await;
    }
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(io: &mut BufReader<S>, reply: &str) {
    let _ = io
        .get_mut()
        .write_all(format!("{reply}\r\n").as_bytes())
        .await;
}

fn config(tls: TlsMode) -> ClientConfig {
    ClientConfig {
        ehlo_name: "client.test".into(),
        source_ip: Some("127.0.0.1".parse().unwrap()),
        tls,
        trust: None,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
        data_timeout: Duration::from_secs(5),
    }
}

fn summary(result: &Result<TransactionResult, SmtpError>) -> String {
    match result {
        Ok(t) => {
            let rcpts: Vec<String> = t.rcpt_replies.iter().map(|r| r.code.to_string()).collect();
            let data = t
                .data_reply
                .as_ref()
                .map_or("none".into(), |r| r.code.to_string());
            format!("ok {} [{}] {data}", t.mail_reply.code, rcpts.join(","))
        }
        Err(e) => format!("err {e} permanent={}", e.is_permanent()),
    }
}

const RCPTS: &[&str] = &["a@example.net", "b@example.net", "c@example.net"];
