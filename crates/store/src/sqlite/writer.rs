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

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::{StoreError, StoreResult};

/// Runs one job inside the current transaction and returns its completion, which is
/// told whether the enclosing commit succeeded.
struct Job {
    durable: bool,
    run: Box<dyn FnOnce(&Connection) -> Completion + Send>,
}
type Completion = Box<dyn FnOnce(bool) + Send>;

/// Most jobs in one transaction.
const MAX_GROUP: usize = 1024;

/// How durable a write must be when its caller is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// On disk (fsync) before the caller is answered.
    Fsync,
    /// Survives a crash of the process (in the OS page cache); fsynced with the next
    /// durable group or checkpoint.
    Process,
}

/// Handle to the writer thread.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(crate) fn start(conn: Connection) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel::<Job>();
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
        let job = Job {
            durable: durability == Durability::Fsync,
            run,
        };
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

fn run(conn: Connection, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut group: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    let mut completions: Vec<Completion> = Vec::with_capacity(MAX_GROUP);
    let mut full = true;
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let durable = group.iter().any(|j| j.durable);
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
        for job in group.drain(..) {
            completions.push((job.run)(&conn));
        }
        let started = std::time::Instant::now();
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
