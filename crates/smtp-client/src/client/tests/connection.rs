//! Connection set-up and tear-down: connect failures, HELO fallback, a server closing
//! mid-DATA, `Send` bounds and STARTTLS.

use super::*;

#[tokio::test]
async fn connect_failures_table() {
    let cases: &[(&str, Script, TlsMode, &str)] = &[
        (
            "421 greeting",
            Script {
                greeting: "421 4.3.2 Service not available",
                ..OK
            },
            TlsMode::Opportunistic,
            "rejected at greeting: 421 4.3.2 permanent=false",
        ),
        (
            "554 greeting",
            Script {
                greeting: "554 5.7.1 go away",
                ..OK
            },
            TlsMode::Opportunistic,
            "rejected at greeting: 554 5.7.1 permanent=true",
        ),
        (
            "silent server",
            Script { greeting: "", ..OK },
            TlsMode::Opportunistic,
            "timeout at greeting permanent=false",
        ),
        (
            "tls required, not offered",
            OK,
            TlsMode::Required,
            "tls error: STARTTLS not offered permanent=false",
        ),
    ];
    for (name, script, tls, expected) in cases {
        let (addr, server) = start(script.clone()).await;
        let mut cfg = config(*tls);
        cfg.command_timeout = Duration::from_millis(300);
        let err = SmtpClient::connect(addr, "mx.test", &cfg)
            .await
            .unwrap_err();
        assert_eq!(
            format!("{err} permanent={}", err.is_permanent()),
            *expected,
            "{name}"
        );
        drop(server);
    }
}

#[tokio::test]
async fn helo_fallback() {
    let (addr, server) = start(Script {
        reject_ehlo: true,
        ..OK
    })
    .await;
    let mut client = SmtpClient::connect(addr, "mx.test", &config(TlsMode::Required)).await;
    // Required TLS cannot be offered over HELO.
    assert!(matches!(client, Err(SmtpError::Tls(_))));
    drop(server);
    let (addr, server) = start(Script {
        reject_ehlo: true,
        ..OK
    })
    .await;
    client = SmtpClient::connect(addr, "mx.test", &config(TlsMode::Opportunistic)).await;
    let mut client = client.unwrap();
    assert_eq!(client.capabilities(), &Capabilities::default());
    let result = client
        .send("s@example.com", &RCPTS[..1], b"x\r\n", false)
        .await;
    assert_eq!(summary(&result), "ok 250 [250] 250");
    client.quit().await;
    let lines = server.await.unwrap().lines;
    assert_eq!(
        lines[..3],
        [
            "EHLO client.test",
            "HELO client.test",
            "MAIL FROM:<s@example.com>"
        ]
    );
}

#[tokio::test]
async fn server_closing_mid_data_is_a_transient_io_error() {
    let (addr, server) = start(Script {
        close_in_data: true,
        ..OK
    })
    .await;
    let mut client = SmtpClient::connect(addr, "mx.test", &config(TlsMode::Disabled))
        .await
        .unwrap();
    let message = [
        &b"Subject: x\r\n\r\n"[..],
        &b"0123456789abcdef\r\n".repeat(100_000),
    ]
    .concat();
    let err = client
        .send("s@example.com", &RCPTS[..1], &message, false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SmtpError::Io(SmtpStage::Message, _)),
        "{err:?}"
    );
    assert!(!err.is_permanent() && err.reply().is_none());
    assert!(!client.is_usable());
    let again = client
        .send("s@example.com", &RCPTS[..1], b"x\r\n", false)
        .await;
    assert!(matches!(again, Err(SmtpError::Protocol(..))));
    client.quit().await;
    server.await.unwrap();
}

/// The engine shares signers and the resolver and spawns connection futures.
#[test]
fn public_types_and_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    fn send_sync<T: Send + Sync>() {}
    send_sync::<postwerk_dkim::DkimSigner>();
    send_sync::<postwerk_dns::resolve::MxResolver>();
    send_sync::<SmtpError>();
    #[allow(dead_code)]
    fn futures(c: &mut SmtpClient, r: &postwerk_dns::resolve::MxResolver, cfg: &ClientConfig) {
        send(&SmtpClient::connect(
            "127.0.0.1:25".parse().unwrap(),
            "",
            cfg,
        ));
        send(&c.send("", &[], b"", false));
        send(&r.resolve(""));
    }
}

fn tls_server_config() -> Arc<rustls::ServerConfig> {
    tls_server_config_for(&rcgen::generate_simple_self_signed(vec!["mx.test".to_owned()]).unwrap())
}

fn tls_server_config_for(cert: &rcgen::CertifiedKey<rcgen::KeyPair>) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    Arc::new(config)
}

#[tokio::test]
async fn verified_tls_needs_a_trusted_certificate_for_the_host_name() {
    let cert = rcgen::generate_simple_self_signed(vec!["mx.test".to_owned()]).unwrap();
    let server_tls = Some(tls_server_config_for(&cert));
    let trusting = postwerk_dns::trust::verifying_config(&[cert.cert.der().clone()]).unwrap();
    let cases = [
        ("Mozilla's roots only", None, "mx.test", false),
        (
            "trusted, wrong name",
            Some(trusting.clone()),
            "other.test",
            false,
        ),
        (
            "trusted, IP instead of a name",
            Some(trusting.clone()),
            "127.0.0.1",
            false,
        ),
        ("trusted, right name", Some(trusting), "mx.test", true),
    ];
    for (name, trust, host, ok) in cases {
        let (addr, server) = start(Script {
            tls: server_tls.clone(),
            ..OK
        })
        .await;
        let cfg = ClientConfig {
            trust,
            ..config(TlsMode::Verified)
        };
        match SmtpClient::connect(addr, host, &cfg).await {
            Ok(client) => {
                assert!(ok, "{name}: connected");
                assert!(client.tls_info().unwrap().verified, "{name}");
                client.quit().await;
            }
            Err(e) => {
                assert!(!ok, "{name}: {e}");
                assert!(matches!(e, SmtpError::Tls(_)), "{name}: {e}");
            }
        }
        server.abort();
    }
    // Without STARTTLS on offer, verified TLS cannot happen at all.
    let (addr, server) = start(OK).await;
    let err = SmtpClient::connect(addr, "mx.test", &config(TlsMode::Verified))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        SmtpError::Tls("STARTTLS not offered".into()).to_string()
    );
    server.abort();
}

#[tokio::test]
async fn starttls_with_self_signed_certificate() {
    let tls = Some(tls_server_config());
    for mode in [TlsMode::Opportunistic, TlsMode::Required, TlsMode::Disabled] {
        let (addr, server) = start(Script {
            tls: tls.clone(),
            ..OK
        })
        .await;
        let mut client = SmtpClient::connect(addr, "mx.test", &config(mode))
            .await
            .unwrap();
        let result = client
            .send(
                "s@example.com",
                &RCPTS[..1],
                b"Subject: tls\r\n\r\nhi\r\n",
                false,
            )
            .await;
        assert_eq!(summary(&result), "ok 250 [250] 250");
        let info = client.tls_info().cloned();
        client.quit().await;
        let seen = server.await.unwrap();
        if mode == TlsMode::Disabled {
            assert!(info.is_none());
            assert_eq!(
                seen.lines[..2],
                ["EHLO client.test", "MAIL FROM:<s@example.com> SIZE=20"]
            );
            continue;
        }
        let info = info.unwrap();
        assert_eq!(info.version, "TLSv1.3");
        assert!(
            info.cipher.starts_with("TLS13_AES_") || info.cipher.starts_with("TLS13_CHACHA"),
            "{info:?}"
        );
        assert_eq!(
            seen.lines[..4],
            [
                "EHLO client.test",
                "STARTTLS",
                "EHLO client.test",
                "MAIL FROM:<s@example.com> SIZE=20"
            ]
        );
        assert_eq!(seen.messages, [b"Subject: tls\r\n\r\nhi\r\n.\r\n"]);
    }
}
