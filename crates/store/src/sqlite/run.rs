//! SQLite's [`Run`]: a query on a pooled reader, a write (and the rows it returns)
//! through the group-committing writer (durable: fsynced before the future resolves).

use std::borrow::Cow;

use super::writer::Durability;
use super::{SqliteStore, conflict_or, unavailable};
use crate::StoreResult;
use crate::run::{Arg, FromRow, Run, Step};
use crate::sql::{Sql, sqlite_params};

/// A driver error of a write: `Conflict(unique)` on a uniqueness violation when
/// `unique` names the thing.
fn write_error(unique: Option<&'static str>) -> impl Fn(rusqlite::Error) -> crate::StoreError {
    move |e| match unique {
        Some(what) => conflict_or(e, what),
        None => unavailable(e),
    }
}

/// The rows `text` returns for `args` on connection `c`, decoded.
fn query<T: FromRow>(
    c: &rusqlite::Connection,
    text: &str,
    args: &[Arg],
) -> rusqlite::Result<Vec<T>> {
    let mut st = c.prepare_cached(text)?;
    st.query_map(rusqlite::params_from_iter(args), |r| T::from_row(r))?
        .collect()
}

impl SqliteStore {
    /// The rows `text` (SQLite's) returns for `args` on a pooled reader, decoded.
    async fn read_rows<T: FromRow>(
        &self,
        text: Cow<'static, str>,
        args: Vec<Arg>,
    ) -> StoreResult<Vec<T>> {
        self.read(move |c| query(c, &text, &args).map_err(unavailable))
            .await
    }
}

impl Run for SqliteStore {
    async fn rows<T: FromRow>(
        &self,
        _op: &'static str,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> StoreResult<Vec<T>> {
        self.read_rows(Cow::Borrowed(sql.sqlite()), args).await
    }

    async fn rows_of<T: FromRow>(
        &self,
        _op: &'static str,
        text: String,
        args: Vec<Arg>,
    ) -> StoreResult<Vec<T>> {
        self.read_rows(Cow::Owned(sqlite_params(&text)), args).await
    }

    async fn write(
        &self,
        _op: &'static str,
        unique: Option<&'static str>,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> StoreResult<u64> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(sql.sqlite())
                    .and_then(|mut st| st.execute(rusqlite::params_from_iter(&args)))
                    .map(|n| n as u64)
                    .map_err(write_error(unique))
            })
            .await
    }

    async fn write_rows<T: FromRow>(
        &self,
        _op: &'static str,
        unique: Option<&'static str>,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> StoreResult<Vec<T>> {
        self.writer
            .write(Durability::Fsync, move |c| {
                query(c, sql.sqlite(), &args).map_err(write_error(unique))
            })
            .await
    }

    async fn write_all(
        &self,
        _op: &'static str,
        unique: Option<&'static str>,
        steps: Vec<Step>,
    ) -> StoreResult<Vec<u64>> {
        self.writer
            .write(Durability::Fsync, move |c| {
                steps
                    .iter()
                    .map(|step| {
                        c.prepare_cached(&step.text.sqlite())
                            .and_then(|mut st| st.execute(rusqlite::params_from_iter(&step.args)))
                            .map(|n| n as u64)
                            .map_err(write_error(unique))
                    })
                    .collect()
            })
            .await
    }

    async fn write_guarded(
        &self,
        _op: &'static str,
        guard: Step,
        steps: Vec<Step>,
    ) -> StoreResult<bool> {
        let run = |c: &rusqlite::Connection, step: &Step| {
            c.prepare_cached(&step.text.sqlite())
                .and_then(|mut st| st.execute(rusqlite::params_from_iter(&step.args)))
                .map_err(unavailable)
        };
        let written = self
            .writer
            .write(Durability::Bulk, move |c| {
                if run(c, &guard)? == 0 {
                    // Undoes nothing written yet; the savepoint is released unused.
                    return Err(crate::StoreError::Conflict(GUARD));
                }
                steps.iter().try_for_each(|step| run(c, step).map(drop))
            })
            .await;
        match written {
            Ok(()) => Ok(true),
            Err(crate::StoreError::Conflict(GUARD)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The conflict a [`Run::write_guarded`] guard that changed nothing raises inside the
/// writer (to roll its savepoint back), answered as `false`.
const GUARD: &str = "guard";
