//! A tiny authoritative DNS responder for tests: answers MX, A, AAAA and TXT queries from a fixed
//! table over real UDP and TCP sockets on 127.0.0.1 (same port for both).
//!
//! Names with no record at all get NXDOMAIN; known names without the asked type get an empty
//! NOERROR answer (NODATA). Negative answers carry an SOA so resolvers trust them.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

const TYPE_A: u16 = 1;
const TYPE_SOA: u16 = 6;
const TYPE_MX: u16 = 15;
const TYPE_TXT: u16 = 16;
const TYPE_AAAA: u16 = 28;

/// One entry of the responder's table. Names are case-insensitive, trailing dot optional.
#[derive(Debug, Clone)]
pub enum TestRecord {
    /// An MX record; `exchange` "." is a null MX (RFC 7505).
    Mx {
        /// Owner name.
        name: String,
        /// Preference.
        preference: u16,
        /// Exchange host name.
        exchange: String,
    },
    /// An A record.
    A {
        /// Owner name.
        name: String,
        /// Address.
        ip: Ipv4Addr,
    },
    /// An AAAA record.
    Aaaa {
        /// Owner name.
        name: String,
        /// Address.
        ip: Ipv6Addr,
    },
    /// A TXT record with one string (at most 255 bytes).
    Txt {
        /// Owner name.
        name: String,
        /// The text.
        text: String,
    },
    /// Every query for this name gets SERVFAIL.
    ServFail {
        /// Owner name.
        name: String,
    },
}

impl TestRecord {
    /// `name MX preference exchange`.
    pub fn mx(name: &str, preference: u16, exchange: &str) -> Self {
        Self::Mx {
            name: norm(name),
            preference,
            exchange: norm(exchange),
        }
    }

    /// `name A ip` or `name AAAA ip`, depending on the address family of `ip`.
    ///
    /// # Panics
    /// If `ip` is not an IP address (test helper).
    pub fn addr(name: &str, ip: &str) -> Self {
        match ip.parse() {
            Ok(std::net::IpAddr::V4(ip)) => Self::A {
                name: norm(name),
                ip,
            },
            Ok(std::net::IpAddr::V6(ip)) => Self::Aaaa {
                name: norm(name),
                ip,
            },
            Err(_) => panic!("not an IP address: {ip}"),
        }
    }

    /// `name TXT "text"`.
    pub fn txt(name: &str, text: &str) -> Self {
        Self::Txt {
            name: norm(name),
            text: text.into(),
        }
    }

    /// SERVFAIL for every query about `name`.
    pub fn servfail(name: &str) -> Self {
        Self::ServFail { name: norm(name) }
    }

    fn name(&self) -> &str {
        match self {
            Self::Mx { name, .. }
            | Self::A { name, .. }
            | Self::Aaaa { name, .. }
            | Self::Txt { name, .. }
            | Self::ServFail { name } => name,
        }
    }
}

fn norm(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The responder. Start it with [`TestDns::start`].
#[derive(Debug)]
pub struct TestDns;

/// Keeps the responder running; dropping it stops the server tasks.
#[derive(Debug)]
pub struct TestDnsHandle {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for TestDnsHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl TestDns {
    /// Binds UDP and TCP on the same 127.0.0.1 port and serves `records` until the handle drops.
    pub async fn start(records: Vec<TestRecord>) -> std::io::Result<(SocketAddr, TestDnsHandle)> {
        let mut last_err = None;
        for _ in 0..20 {
            match Self::start_at(SocketAddr::from(([127, 0, 0, 1], 0)), records.clone()).await {
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last_err = Some(e),
                started => return started,
            }
        }
        Err(last_err.unwrap_or_else(|| std::io::ErrorKind::AddrInUse.into()))
    }

    /// Serves `records` on UDP and TCP at `addr` (port 0: one free port for both), for a
    /// test that must name the server before it knows the records (a server configured
    /// with it creates the keys to publish).
    pub async fn start_at(
        addr: SocketAddr,
        records: Vec<TestRecord>,
    ) -> std::io::Result<(SocketAddr, TestDnsHandle)> {
        let records = Arc::new(records);
        let udp = UdpSocket::bind(addr).await?;
        let addr = udp.local_addr()?;
        let tcp = TcpListener::bind(addr).await?;
        let udp_task = tokio::spawn(serve_udp(udp, records.clone()));
        let tcp_task = tokio::spawn(serve_tcp(tcp, records));
        Ok((
            addr,
            TestDnsHandle {
                tasks: vec![udp_task, tcp_task],
            },
        ))
    }
}

async fn serve_udp(socket: UdpSocket, records: Arc<Vec<TestRecord>>) {
    let mut buf = [0u8; 1500];
    while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
        if let Some(reply) = respond(&buf[..n], &records) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, records: Arc<Vec<TestRecord>>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve_tcp_conn(stream, records.clone()));
    }
}

async fn serve_tcp_conn(mut stream: TcpStream, records: Arc<Vec<TestRecord>>) {
    loop {
        let Ok(len) = stream.read_u16().await else {
            return;
        };
        let mut query = vec![0; usize::from(len)];
        if stream.read_exact(&mut query).await.is_err() {
            return;
        }
        let Some(reply) = respond(&query, &records) else {
            return;
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// Builds the response to one query, or `None` if the query is malformed.
fn respond(query: &[u8], records: &[TestRecord]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[4..6] != [0, 1] {
        return None;
    }
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(pos)?);
        pos += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(pos..pos + len)?).to_ascii_lowercase());
        pos += len;
    }
    let qname = labels.join(".");
    let qtype = u16::from_be_bytes([*query.get(pos)?, *query.get(pos + 1)?]);
    let question = query.get(12..pos + 4)?;

    let matching = records.iter().filter(|r| r.name() == qname);
    let servfail = matching
        .clone()
        .any(|r| matches!(r, TestRecord::ServFail { .. }));
    let exists = matching.clone().next().is_some();
    let mut answers = Vec::new();
    let mut count = 0u16;
    for record in matching.filter(|_| !servfail) {
        let (rtype, rdata) = match record {
            TestRecord::Mx {
                preference,
                exchange,
                ..
            } => {
                let mut d = preference.to_be_bytes().to_vec();
                encode_name(&mut d, exchange);
                (TYPE_MX, d)
            }
            TestRecord::A { ip, .. } => (TYPE_A, ip.octets().to_vec()),
            TestRecord::Aaaa { ip, .. } => (TYPE_AAAA, ip.octets().to_vec()),
            TestRecord::Txt { text, .. } => {
                // One character-string per 255 bytes, as a long DKIM key is published.
                let mut d = Vec::with_capacity(text.len() + text.len() / 255 + 1);
                for chunk in text.as_bytes().chunks(255) {
                    d.push(u8::try_from(chunk.len()).unwrap_or(255));
                    d.extend_from_slice(chunk);
                }
                if text.is_empty() {
                    d.push(0);
                }
                (TYPE_TXT, d)
            }
            TestRecord::ServFail { .. } => continue,
        };
        if rtype == qtype {
            push_record(&mut answers, rtype, &rdata);
            count += 1;
        }
    }
    let rcode: u8 = if servfail {
        2
    } else if exists {
        0
    } else {
        3
    };
    let soa = count == 0 && !servfail;

    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&query[..2]); // id
    out.push(0x84 | (query[2] & 0x01)); // QR, AA, RD copied
    out.push(0x80 | rcode); // RA
    for n in [1, count, u16::from(soa), 0] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(question);
    out.extend_from_slice(&answers);
    if soa {
        let mut d = Vec::new();
        encode_name(&mut d, "ns.test");
        encode_name(&mut d, "hostmaster.test");
        for v in [1u32, 3600, 600, 86400, 60] {
            d.extend_from_slice(&v.to_be_bytes());
        }
        push_record(&mut out, TYPE_SOA, &d);
    }
    Some(out)
}

/// Appends a resource record owned by the question name (compression pointer to offset 12).
fn push_record(out: &mut Vec<u8>, rtype: u16, rdata: &[u8]) {
    out.extend_from_slice(&[0xc0, 0x0c]);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // class IN
    out.extend_from_slice(&60u32.to_be_bytes()); // TTL
    let len = u16::try_from(rdata.len()).unwrap_or(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(rdata);
}

fn encode_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(u8::try_from(label.len()).unwrap_or(63));
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}
