//! The SQLite writer thread: group commit.
//!
//! Every write is a closure sent to one thread that owns the only writing connection.
//! The thread takes all closures waiting in its queue, runs each inside its own
//! SAVEPOINT (so one caller's failure does not undo another's), commits once —
//! one fsync for the whole group — and only then answers each caller. Under load,
//! callers that arrive during a commit form the next group, so throughput grows with
//! concurrency while every acknowledged write is durable.
//!
//! Durability is chosen per write: a [`Durability::Fsync`] write (accepting mail,
//! keys, domains) makes its whole group commit with `synchronous=FULL`; a group of
//! only [`Durability::Process`] writes (delivery outcomes) commits with `NORMAL`,
//! which survives a crash of the process but may be lost on power failure — for an
//! outcome that only means the delivery is repeated, never that mail is lost.
//!
//! [`Durability::Bulk`] writes (an import's batches) are fsynced too, but a group of
//! only bulk writes keeps its transaction open for the next bulk write, for up to
//! [`BULK_SPAN`]: a million rows with random keys (blind indexes) dirty most pages
//! of their B-trees in every batch, and each commit writes every dirty page, so few
//! large commits write a fraction of what many small ones do. Any other write that
//! arrives joins the open transaction and ends it, so it waits for one bulk write
//! at most, not for the span.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{StoreError, StoreResult};

/// Runs one job inside the current transaction and returns its completion, which is
/// told whether the enclosing commit succeeded.
struct Job {
    durability: Durability,
    run: Box<dyn FnOnce(&Connection) -> Completion + Send>,
}
type Completion = Box<dyn FnOnce(bool) + Send>;

/// Most jobs in one transaction.
const MAX_GROUP: usize = 1024;
/// Longest a transaction of bulk writes stays open for more of them.
const BULK_SPAN: Duration = Duration::from_secs(3);
/// How long a transaction of bulk writes waits for the next one.
const BULK_WAIT: Duration = Duration::from_millis(50);

/// How durable a write must be when its caller is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// On disk (fsync) before the caller is answered.
    Fsync,
    /// Survives a crash of the process (in the OS page cache); fsynced with the next
    /// durable group or checkpoint.
    Process,
    /// On disk before the caller is answered, as [`Durability::Fsync`], in a
    /// transaction that may wait for more bulk writes first.
    Bulk,
}

/// Handle to the writer thread.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(crate) fn start(conn: Connection) -> Writer {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx))
            .expect("spawn sqlite writer thread");
        Writer { jobs: tx }
    }

    /// Runs `f` in the next group transaction; resolves after the commit.
    pub(crate) async fn write<T, F>(&self, durability: Durability, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel::<StoreResult<T>>();
        let run = Box::new(move |conn: &Connection| -> Completion {
            let result = in_savepoint(conn, f);
            Box::new(move |committed: bool| {
                let outcome = match result {
                    Ok(v) if committed => Ok(v),
                    Ok(_) => Err(StoreError::Unavailable("commit failed".into())),
                    Err(e) => Err(e),
                };
                let _ = done_tx.send(outcome);
            })
        });
        let job = Job { durability, run };
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Unavailable("writer thread stopped".into()))?;
        done_rx
            .await
            .map_err(|_| StoreError::Unavailable("writer thread stopped".into()))?
    }
}

fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    // Cached statements: parsing them for every job was ~3 % of the writer's time.
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut st| st.execute([]))
            .map_err(super::unavailable)
    };
    run("SAVEPOINT job")?;
    match f(conn) {
        Ok(v) => {
            run("RELEASE job")?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            Err(e)
        }
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Job>) {
    let mut group: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    let mut completions: Vec<Completion> = Vec::with_capacity(MAX_GROUP);
    let mut full = true;
    while let Ok(first) = rx.recv() {
        group.push(first);
        take_waiting(&rx, &mut group);
        // Chosen before the transaction (SQLite refuses it inside one). Jobs that join
        // a bulk transaction later find it durable already.
        let durable = group.iter().any(|j| j.durability != Durability::Process);
        if durable != full {
            let pragma = if durable {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            full = conn.execute_batch(pragma).is_ok() == durable;
        }
        if (durable && !full) || conn.execute_batch("BEGIN IMMEDIATE").is_err() {
            // Dropping the jobs drops their reply channels: callers see Unavailable.
            tracing::error!(
                jobs = group.len(),
                "sqlite BEGIN failed; refusing the group"
            );
            group.clear();
            continue;
        }
        let begun = Instant::now();
        let mut bulk_only = true;
        loop {
            for job in group.drain(..) {
                bulk_only &= job.durability == Durability::Bulk;
                completions.push((job.run)(&conn));
            }
            // A transaction of bulk writes takes the next one if it comes soon.
            if !bulk_only || completions.len() >= MAX_GROUP || begun.elapsed() >= BULK_SPAN {
                break;
            }
            match rx.recv_timeout(BULK_WAIT) {
                Ok(job) => {
                    group.push(job);
                    take_waiting(&rx, &mut group);
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let committed = conn.execute_batch("COMMIT").is_ok();
        postwerk_core::metrics::STORE_COMMIT.observe(
            &[if durable { "fsync" } else { "process" }],
            started.elapsed().as_secs_f64(),
        );
        if !committed {
            tracing::error!(
                jobs = completions.len(),
                "sqlite group commit failed; rolling back"
            );
            let _ = conn.execute_batch("ROLLBACK");
        }
        for done in completions.drain(..) {
            done(committed);
        }
    }
}

/// Adds the jobs already waiting to `group`, up to [`MAX_GROUP`].
fn take_waiting(rx: &mpsc::Receiver<Job>, group: &mut Vec<Job>) {
    while group.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(job) => group.push(job),
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(dir: &std::path::Path) -> (Writer, std::path::PathBuf) {
        let path = dir.join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER PRIMARY KEY);")
            .unwrap();
        (Writer::start(conn), path)
    }

    fn insert(n: i64) -> impl FnOnce(&Connection) -> StoreResult<()> + Send + 'static {
        move |c| {
            c.execute("INSERT INTO t (n) VALUES (?1)", [n])
                .map(drop)
                .map_err(super::super::unavailable)
        }
    }

    #[tokio::test]
    async fn bulk_writes_sharing_a_transaction_succeed_or_fail_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, path) = writer(dir.path());
        let mut pending = Vec::new();
        for n in 0..40 {
            let w = writer.clone();
            // Every tenth repeats a key: one of the pair fails, alone.
            let key = if n % 10 == 9 { n - 1 } else { n };
            let durability = if n == 20 {
                Durability::Fsync
            } else {
                Durability::Bulk
            };
            pending.push(tokio::spawn(async move {
                w.write(durability, insert(key)).await
            }));
        }
        let mut failed = 0;
        for p in pending {
            failed += usize::from(p.await.unwrap().is_err());
        }
        assert_eq!(failed, 4);
        let stored: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, 36);
    }

    #[tokio::test]
    async fn a_bulk_write_alone_is_answered_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, path) = writer(dir.path());
        writer.write(Durability::Bulk, insert(1)).await.unwrap();
        // Another connection sees it: the transaction was committed, not left open.
        let stored: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, 1);
    }
}
