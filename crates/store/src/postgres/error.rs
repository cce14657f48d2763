//! Mapping PostgreSQL and pool errors to [`StoreError`] without leaking row values.
//!
//! A server error's `DETAIL` can quote row values (`Key (name)=(acme) already
//! exists.`), and messages of some classes do too (data exceptions quote the bad
//! input). So an error is described by its SQLSTATE and, only for classes whose
//! messages name objects rather than data (connection, auth, catalog, resources,
//! operator intervention), by the server's primary message. Never the detail.

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use crate::StoreError;

/// Why an internal operation failed.
pub enum Failure {
    /// A deadlock or serialization failure: the transaction was rolled back and may
    /// be run again as a whole.
    Transient(StoreError),
    /// Anything else.
    Final(StoreError),
}

impl Failure {
    /// The error reported to callers.
    pub(super) fn into_store(self) -> StoreError {
        match self {
            Failure::Transient(e) | Failure::Final(e) => e,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Final(e)
    }
}

/// Internal result type.
pub(super) type PgResult<T> = Result<T, Failure>;

/// SQLSTATE classes whose primary message names objects, never data.
const SAFE_MESSAGE_CLASSES: &[&str] = &["08", "28", "3D", "3F", "42", "53", "54", "55", "57", "58"];

/// Describes `e` for an `Unavailable` error of operation `op`.
fn describe(op: &str, e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        if SAFE_MESSAGE_CLASSES.iter().any(|c| code.starts_with(c)) {
            format!("postgres {op}: {} (SQLSTATE {code})", db.message())
        } else {
            format!("postgres {op}: SQLSTATE {code}")
        }
    } else if e.is_closed() {
        format!("postgres {op}: connection closed")
    } else {
        // Client-side errors (I/O, protocol, encoding) carry no row values.
        format!("postgres {op}: {e}")
    }
}

/// Maps any error of operation `op` (no uniqueness constraint expected).
pub(super) fn pg(op: &'static str) -> impl Fn(tokio_postgres::Error) -> Failure {
    move |e| classify(op, None, e)
}

/// Maps an error of operation `op`, turning a unique violation into
/// `Conflict(what)`.
pub(super) fn conflict(
    op: &'static str,
    what: &'static str,
) -> impl Fn(tokio_postgres::Error) -> Failure {
    move |e| classify(op, Some(what), e)
}

fn classify(op: &'static str, what: Option<&'static str>, e: tokio_postgres::Error) -> Failure {
    match (e.code(), what) {
        (Some(code), Some(what)) if *code == SqlState::UNIQUE_VIOLATION => {
            Failure::Final(StoreError::Conflict(what))
        }
        (Some(code), _)
            if *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::T_R_SERIALIZATION_FAILURE =>
        {
            Failure::Transient(StoreError::Unavailable(describe(op, &e)))
        }
        _ => {
            let msg = describe(op, &e);
            tracing::warn!(error = %msg, "postgres operation failed");
            Failure::Final(StoreError::Unavailable(msg))
        }
    }
}

/// Maps a failure to get a pooled connection.
pub(super) fn pool(e: PoolError) -> Failure {
    use deadpool_postgres::TimeoutType;
    let msg = match e {
        PoolError::Timeout(TimeoutType::Wait) => {
            "postgres: timed out waiting for a pooled connection".to_string()
        }
        PoolError::Timeout(TimeoutType::Create) => "postgres: timed out connecting".to_string(),
        PoolError::Timeout(TimeoutType::Recycle) => {
            "postgres: timed out checking a pooled connection".to_string()
        }
        PoolError::Backend(e) => describe("connect", &e),
        PoolError::Closed => "postgres: pool closed".to_string(),
        PoolError::NoRuntimeSpecified => "postgres: pool has no runtime".to_string(),
        PoolError::PostCreateHook(_) => "postgres: connection setup failed".to_string(),
    };
    tracing::warn!(error = %msg, "postgres connection unavailable");
    Failure::Final(StoreError::Unavailable(msg))
}

/// A column that could not be decoded.
pub(crate) fn corrupt(what: &str) -> Failure {
    Failure::Final(StoreError::Corrupt(what.to_string()))
}
