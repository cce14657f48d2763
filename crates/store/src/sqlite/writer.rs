//! The SQLite writer thread: group commit.
//!
//! Every write is a closure sent to one thread that owns the only writing connection.
//! The thread takes all closures waiting in its queue, runs each inside its own
//! SAVEPOINT (so one caller's failure does not undo another's), commits once —
//! one fsync for the whole group — and only then answers each caller. Under load,
//! callers that arrive during a commit form the next group, so throughput grows with
//! concurrency while every acknowledged write is durable.

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::{StoreError, StoreResult};

/// Runs one job inside the current transaction and returns its completion, which is
/// told whether the enclosing commit succeeded.
type Job = Box<dyn FnOnce(&Connection) -> Completion + Send>;
type Completion = Box<dyn FnOnce(bool) + Send>;

/// Most jobs in one transaction.
const MAX_GROUP: usize = 1024;

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
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel::<StoreResult<T>>();
        let job: Job = Box::new(move |conn: &Connection| {
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
    conn.execute_batch("SAVEPOINT job")
        .map_err(super::unavailable)?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("RELEASE job")
                .map_err(super::unavailable)?;
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
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if conn.execute_batch("BEGIN IMMEDIATE").is_err() {
            // Dropping the jobs drops their reply channels: callers see Unavailable.
            tracing::error!(
                jobs = group.len(),
                "sqlite BEGIN failed; refusing the group"
            );
            group.clear();
            continue;
        }
        for job in group.drain(..) {
            completions.push(job(&conn));
        }
        let committed = conn.execute_batch("COMMIT").is_ok();
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
