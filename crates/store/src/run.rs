//! Running one statement on either backend, so that an area's operations that are a
//! single statement are written once (as default methods of the area's trait, see
//! `store_area!`) instead of once per backend.
//!
//! - [`Arg`]: an owned statement parameter both drivers bind (SQLite's statements run
//!   on another thread, so parameters cannot borrow the caller's values).
//! - [`FromRow`]: a row type with its one decoder over [`Columns`].
//! - [`Run`]: what each backend provides: the rows of a query (also of one built at
//!   run time), the count of a write, or the rows a write returns; PostgreSQL's
//!   re-runs after a deadlock, SQLite's group-commits.

use std::future::Future;

use crate::StoreResult;
use crate::row::Columns;
use crate::sql::Sql;

/// An owned statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// SQL `NULL` (any type).
    Null,
    /// An integer (`BIGINT` or `INTEGER`).
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes (`BYTEA` or `BLOB`).
    Bytes(Vec<u8>),
    /// A truth value (`BOOLEAN`; SQLite's 0 or 1).
    Bool(bool),
}

impl From<bool> for Arg {
    fn from(v: bool) -> Arg {
        Arg::Bool(v)
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(v)
    }
}

impl From<usize> for Arg {
    /// A count or limit (saturating at `i64::MAX`).
    fn from(v: usize) -> Arg {
        Arg::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(v.to_string())
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(v)
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Arg {
        Arg::Text(v.clone())
    }
}

impl From<&[u8]> for Arg {
    fn from(v: &[u8]) -> Arg {
        Arg::Bytes(v.to_vec())
    }
}

impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Arg {
        Arg::Bytes(v)
    }
}

impl From<&Vec<u8>> for Arg {
    fn from(v: &Vec<u8>) -> Arg {
        Arg::Bytes(v.clone())
    }
}

impl<T: Into<Arg>> From<Option<T>> for Arg {
    fn from(v: Option<T>) -> Arg {
        v.map_or(Arg::Null, Into::into)
    }
}

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Arg::Null => ValueRef::Null,
            Arg::Int(v) => ValueRef::Integer(*v),
            Arg::Text(v) => ValueRef::Text(v.as_bytes()),
            Arg::Bytes(v) => ValueRef::Blob(v),
            Arg::Bool(v) => ValueRef::Integer(i64::from(*v)),
        }))
    }
}

impl tokio_postgres::types::ToSql for Arg {
    /// Binds as the parameter's type: an integer also fits an `INTEGER` parameter when
    /// in range; anything else the inner value's own conversion refuses.
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use tokio_postgres::types::{IsNull, Type};
        match self {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Int(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql_checked(ty, out),
            Arg::Int(v) => v.to_sql_checked(ty, out),
            Arg::Text(v) => v.to_sql_checked(ty, out),
            Arg::Bytes(v) => v.to_sql_checked(ty, out),
            Arg::Bool(v) => v.to_sql_checked(ty, out),
        }
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// The statement of a [`Step`]: one declared with `sql!`, or one built at run time
/// (with `$N` parameters), such as a multi-row insert of as many rows as there are.
pub enum Text {
    /// Declared once.
    Fixed(&'static Sql),
    /// Built for this write.
    Built(String),
}

impl Text {
    /// PostgreSQL's text.
    pub(crate) fn pg(&self) -> &str {
        match self {
            Text::Fixed(sql) => sql.pg(),
            Text::Built(text) => text,
        }
    }

    /// SQLite's text.
    pub(crate) fn sqlite(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Text::Fixed(sql) => sql.sqlite().into(),
            Text::Built(text) => crate::sql::sqlite_params(text).into(),
        }
    }
}

/// One write of [`Run::write_all`]: a statement and its arguments.
pub struct Step {
    /// The statement.
    pub(crate) text: Text,
    /// Its arguments.
    pub(crate) args: Vec<Arg>,
}

impl Step {
    /// A declared statement with `args`.
    pub(crate) fn new(sql: &'static Sql, args: Vec<Arg>) -> Step {
        Step {
            text: Text::Fixed(sql),
            args,
        }
    }

    /// A statement built at run time (`$N` parameters) with `args`.
    pub(crate) fn built(text: String, args: Vec<Arg>) -> Step {
        Step {
            text: Text::Built(text),
            args,
        }
    }
}

/// `head (…), (…), … tail`: a multi-row statement of `rows` tuples of `width`
/// parameters each, numbered from `$1` (both dialects).
pub(crate) fn multi_row(head: &str, width: usize, rows: usize, tail: &str) -> String {
    let tuples: Vec<String> = (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=width).map(|i| format!("${}", r * width + i)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!("{head} {} {tail}", tuples.join(", "))
}

/// A row type with its one decoder (by column name), for both backends.
pub trait FromRow: Sized + Send + 'static {
    /// The row `r` as a `Self`, or the driver's corrupt error naming the column.
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error>;
}

/// One statement, run by a backend: the supertrait of every area's trait, whose
/// single-statement operations are written once over it.
pub trait Run: Send + Sync {
    /// The rows `sql` returns for `args`, decoded (`op` names the operation in errors).
    fn rows<T: FromRow>(
        &self,
        op: &'static str,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> impl Future<Output = StoreResult<Vec<T>>> + Send;

    /// [`Run::rows`] of a statement built at run time (`text`, with `$N` parameters),
    /// such as a filter's: each distinct text is prepared once per connection.
    fn rows_of<T: FromRow>(
        &self,
        op: &'static str,
        text: String,
        args: Vec<Arg>,
    ) -> impl Future<Output = StoreResult<Vec<T>>> + Send;

    /// Runs the write `sql` for `args`, durably; returns how many rows it changed. A
    /// uniqueness violation is `Conflict(unique)` when `unique` names the thing.
    fn write(
        &self,
        op: &'static str,
        unique: Option<&'static str>,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Runs the write `sql` for `args`, durably, as [`Run::write`]; returns the rows
    /// it returns (`RETURNING`), decoded.
    fn write_rows<T: FromRow>(
        &self,
        op: &'static str,
        unique: Option<&'static str>,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> impl Future<Output = StoreResult<Vec<T>>> + Send;

    /// Runs the writes `steps` (each a statement and its arguments, in order) in one
    /// transaction, durably: all of them or none. Returns each one's changed rows.
    fn write_all(
        &self,
        op: &'static str,
        unique: Option<&'static str>,
        steps: Vec<Step>,
    ) -> impl Future<Output = StoreResult<Vec<u64>>> + Send;

    /// Runs `guard` and then `steps` in one transaction, durably, if `guard` changes a
    /// row; if it changes none, nothing is written and the answer is `false`. A bulk
    /// write (an import's batches): SQLite may commit it together with the bulk writes
    /// that follow it closely (see `sqlite/writer.rs`).
    fn write_guarded(
        &self,
        op: &'static str,
        guard: Step,
        steps: Vec<Step>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// The first row `sql` returns for `args`, if any.
    fn row<T: FromRow>(
        &self,
        op: &'static str,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> impl Future<Output = StoreResult<Option<T>>> + Send {
        async move { Ok(self.rows(op, sql, args).await?.into_iter().next()) }
    }

    /// The first row the write `sql` returns for `args`, if any (see
    /// [`Run::write_rows`]).
    fn write_row<T: FromRow>(
        &self,
        op: &'static str,
        unique: Option<&'static str>,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> impl Future<Output = StoreResult<Option<T>>> + Send {
        async move {
            let rows = self.write_rows(op, unique, sql, args).await?;
            Ok(rows.into_iter().next())
        }
    }
}

impl Run for crate::AnyStore {
    async fn rows<T: FromRow>(
        &self,
        op: &'static str,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> StoreResult<Vec<T>> {
        match self {
            crate::AnyStore::Sqlite(s) => s.rows(op, sql, args).await,
            crate::AnyStore::Postgres(s) => s.rows(op, sql, args).await,
        }
    }

    async fn rows_of<T: FromRow>(
        &self,
        op: &'static str,
        text: String,
        args: Vec<Arg>,
    ) -> StoreResult<Vec<T>> {
        match self {
            crate::AnyStore::Sqlite(s) => s.rows_of(op, text, args).await,
            crate::AnyStore::Postgres(s) => s.rows_of(op, text, args).await,
        }
    }

    async fn write(
        &self,
        op: &'static str,
        unique: Option<&'static str>,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> StoreResult<u64> {
        match self {
            crate::AnyStore::Sqlite(s) => s.write(op, unique, sql, args).await,
            crate::AnyStore::Postgres(s) => s.write(op, unique, sql, args).await,
        }
    }

    async fn write_rows<T: FromRow>(
        &self,
        op: &'static str,
        unique: Option<&'static str>,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> StoreResult<Vec<T>> {
        match self {
            crate::AnyStore::Sqlite(s) => s.write_rows(op, unique, sql, args).await,
            crate::AnyStore::Postgres(s) => s.write_rows(op, unique, sql, args).await,
        }
    }

    async fn write_all(
        &self,
        op: &'static str,
        unique: Option<&'static str>,
        steps: Vec<Step>,
    ) -> StoreResult<Vec<u64>> {
        match self {
            crate::AnyStore::Sqlite(s) => s.write_all(op, unique, steps).await,
            crate::AnyStore::Postgres(s) => s.write_all(op, unique, steps).await,
        }
    }

    async fn write_guarded(
        &self,
        op: &'static str,
        guard: Step,
        steps: Vec<Step>,
    ) -> StoreResult<bool> {
        match self {
            crate::AnyStore::Sqlite(s) => s.write_guarded(op, guard, steps).await,
            crate::AnyStore::Postgres(s) => s.write_guarded(op, guard, steps).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_convert_as_their_values() {
        let none: Option<&str> = None;
        assert_eq!(
            args![7i64, "t", none, Some(3usize), &b"h"[..], true],
            vec![
                Arg::Int(7),
                Arg::Text("t".into()),
                Arg::Null,
                Arg::Int(3),
                Arg::Bytes(b"h".to_vec()),
                Arg::Bool(true)
            ]
        );
        assert_eq!(Arg::from(usize::MAX), Arg::Int(i64::MAX));
    }
}
