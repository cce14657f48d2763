//! SQLite's [`Run`]: a query on a pooled reader, a write (and the rows it returns)
//! through the group-committing writer (durable: fsynced before the future resolves).

use super::writer::Durability;
use super::{SqliteStore, conflict_or, unavailable};
use crate::StoreResult;
use crate::run::{Arg, FromRow, Run};
use crate::sql::Sql;

impl Run for SqliteStore {
    async fn rows<T: FromRow>(
        &self,
        _op: &'static str,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> StoreResult<Vec<T>> {
        self.read(move |c| {
            c.prepare_cached(sql.sqlite())
                .and_then(|mut st| {
                    st.query_map(rusqlite::params_from_iter(&args), |r| T::from_row(r))?
                        .collect()
                })
                .map_err(unavailable)
        })
        .await
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
                    .map_err(|e| match unique {
                        Some(what) => conflict_or(e, what),
                        None => unavailable(e),
                    })
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
                c.prepare_cached(sql.sqlite())
                    .and_then(|mut st| {
                        st.query_map(rusqlite::params_from_iter(&args), |r| T::from_row(r))?
                            .collect()
                    })
                    .map_err(|e| match unique {
                        Some(what) => conflict_or(e, what),
                        None => unavailable(e),
                    })
            })
            .await
    }
}
