//! DKIM signing throughput: `cargo run --release -p postwerk-dkim --example dkim_bench`.
//!
//! Signs a ~5 KB message single-threaded for about 3 s per configuration and prints
//! messages/s for RSA-2048, Ed25519 and both signers together.

use std::time::{Duration, Instant};

use postwerk_dkim::{self as dkim, DkimAlgorithm, DkimError, DkimSigner};

fn message() -> Vec<u8> {
    let mut m = b"From: Sender <sender@example.com>\r\n\
To: Recipient <rcpt@example.net>\r\n\
Subject: Your weekly report\r\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
Message-ID: <bench.1@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
List-Unsubscribe: <https://example.com/u/abc>\r\n\
List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\
\r\n"
        .to_vec();
    let line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n";
    while m.len() < 5 * 1024 {
        m.extend_from_slice(line);
    }
    m
}

fn bench(name: &str, signers: &[DkimSigner], msg: &[u8]) -> Result<(), DkimError> {
    let budget = Duration::from_secs(3);
    let start = Instant::now();
    let mut n = 0u64;
    let mut bytes = 0usize;
    while start.elapsed() < budget {
        for _ in 0..16 {
            bytes += dkim::sign_message(signers, msg, 1_700_000_000)?.len();
            n += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:<16} {:>9.0} msg/s  ({n} messages in {secs:.2} s, {} B out)",
        n as f64 / secs,
        bytes / n as usize
    );
    Ok(())
}

fn main() -> Result<(), DkimError> {
    let rsa = dkim::generate_rsa_2048()?;
    let ed = dkim::generate_ed25519()?;
    let rsa = DkimSigner::new(
        "example.com",
        "rsa",
        DkimAlgorithm::RsaSha256,
        &rsa.private_pkcs8_der,
    )?;
    let ed = DkimSigner::new(
        "example.com",
        "ed",
        DkimAlgorithm::Ed25519Sha256,
        &ed.private_pkcs8_der,
    )?;
    let msg = message();
    println!("message size: {} bytes, single thread", msg.len());
    bench("rsa-2048", std::slice::from_ref(&rsa), &msg)?;
    bench("ed25519", std::slice::from_ref(&ed), &msg)?;
    bench("rsa + ed25519", &[rsa, ed], &msg)?;
    Ok(())
}
