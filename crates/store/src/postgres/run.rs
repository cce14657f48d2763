//! PostgreSQL's [`Run`]: one statement on a pooled connection (its own transaction),
//! re-run after a deadlock or serialization failure like every transaction here.

use tokio_postgres::types::ToSql;

use super::error::{PgResult, conflict, pg};
use super::{PgStore, retrying};
use crate::StoreResult;
use crate::run::{Arg, FromRow, Run, Step};
use crate::sql::Sql;

/// `args` as the driver's parameter list.
pub(super) fn params(args: &[Arg]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

impl PgStore {
    /// The rows `text` returns for `args`, decoded; a uniqueness violation is
    /// `Conflict(unique)` when `unique` names the thing.
    async fn query_rows<T: FromRow>(
        &self,
        op: &'static str,
        unique: Option<&'static str>,
        text: &str,
        args: &[Arg],
    ) -> StoreResult<Vec<T>> {
        retrying(|| async move {
            let client = self.client().await?;
            let stmt = client.prepare_cached(text).await.map_err(pg(op))?;
            let rows = client.query(&stmt, &params(args)).await;
            let rows = match unique {
                Some(what) => rows.map_err(conflict(op, what))?,
                None => rows.map_err(pg(op))?,
            };
            rows.iter().map(T::from_row).collect()
        })
        .await
    }
}

impl Run for PgStore {
    async fn rows<T: FromRow>(
        &self,
        op: &'static str,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> StoreResult<Vec<T>> {
        self.query_rows(op, None, sql.pg(), &args).await
    }

    async fn rows_of<T: FromRow>(
        &self,
        op: &'static str,
        text: String,
        args: Vec<Arg>,
    ) -> StoreResult<Vec<T>> {
        self.query_rows(op, None, &text, &args).await
    }

    async fn write(
        &self,
        op: &'static str,
        unique: Option<&'static str>,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> StoreResult<u64> {
        let args = &args;
        retrying(|| async move { self.exec(op, unique, sql.pg(), &params(args)).await }).await
    }

    async fn write_rows<T: FromRow>(
        &self,
        op: &'static str,
        unique: Option<&'static str>,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> StoreResult<Vec<T>> {
        self.query_rows(op, unique, sql.pg(), &args).await
    }

    async fn write_all(
        &self,
        op: &'static str,
        unique: Option<&'static str>,
        steps: Vec<Step>,
    ) -> StoreResult<Vec<u64>> {
        let steps = &steps;
        retrying(|| async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg(op))?;
            let mut counts = Vec::with_capacity(steps.len());
            for step in steps {
                let stmt = tx.prepare_cached(step.text.pg()).await.map_err(pg(op))?;
                let result = tx.execute(&stmt, &params(&step.args)).await;
                counts.push(match unique {
                    Some(what) => result.map_err(conflict(op, what))?,
                    None => result.map_err(pg(op))?,
                });
            }
            tx.commit().await.map_err(pg(op))?;
            PgResult::Ok(counts)
        })
        .await
    }

    async fn write_guarded(
        &self,
        op: &'static str,
        guard: Step,
        steps: Vec<Step>,
    ) -> StoreResult<bool> {
        let (guard, steps) = (&guard, &steps);
        retrying(|| async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg(op))?;
            let stmt = tx.prepare_cached(guard.text.pg()).await.map_err(pg(op))?;
            if tx
                .execute(&stmt, &params(&guard.args))
                .await
                .map_err(pg(op))?
                == 0
            {
                return PgResult::Ok(false);
            }
            for step in steps {
                let stmt = tx.prepare_cached(step.text.pg()).await.map_err(pg(op))?;
                tx.execute(&stmt, &params(&step.args))
                    .await
                    .map_err(pg(op))?;
            }
            tx.commit().await.map_err(pg(op))?;
            Ok(true)
        })
        .await
    }
}
