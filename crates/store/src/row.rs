//! Reading a row's columns by name with either driver, so that each row type has one
//! decoder (written over [`Columns`]) for both backends. A column that is missing, of
//! another type or out of range for its field makes the row `Corrupt(column)` on both.

use std::str::FromStr;

use crate::StoreError;

/// A column value both drivers can read.
pub trait Value: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a> {}

impl<T: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>> Value for T {}

/// A result row of either backend.
pub trait Columns {
    /// The driver's error (each backend turns it into a [`StoreError`] its own way).
    type Error;
    /// Column `name`, or [`Columns::corrupt`] of it.
    fn get<T: Value>(&self, name: &str) -> Result<T, Self::Error>;
    /// The error of a row whose column `name` does not decode.
    fn corrupt(name: &str) -> Self::Error;
    /// Text column `name` parsed as a `T` (read in place, not copied), or
    /// [`Columns::corrupt`] of `what`.
    fn parse<T: FromStr>(&self, name: &str, what: &str) -> Result<T, Self::Error>;
}

impl Columns for rusqlite::Row<'_> {
    type Error = rusqlite::Error;
    fn get<T: Value>(&self, name: &str) -> Result<T, Self::Error> {
        rusqlite::Row::get(self, name).map_err(|_| Self::corrupt(name))
    }
    /// Carried through rusqlite's closures as a conversion failure, unwrapped again
    /// by `sqlite::unavailable`.
    fn corrupt(name: &str) -> Self::Error {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Null,
            Box::new(StoreError::Corrupt(name.to_string())),
        )
    }
    fn parse<T: FromStr>(&self, name: &str, what: &str) -> Result<T, Self::Error> {
        let text = self.get_ref(name).ok().and_then(|v| v.as_str().ok());
        text.and_then(|s| s.parse().ok())
            .ok_or_else(|| Self::corrupt(what))
    }
}

impl Columns for tokio_postgres::Row {
    type Error = crate::postgres::error::Failure;
    fn get<T: Value>(&self, name: &str) -> Result<T, Self::Error> {
        self.try_get(name).map_err(|_| Self::corrupt(name))
    }
    fn corrupt(name: &str) -> Self::Error {
        crate::postgres::error::corrupt(name)
    }
    fn parse<T: FromStr>(&self, name: &str, what: &str) -> Result<T, Self::Error> {
        let text = self.try_get::<_, &str>(name).ok();
        text.and_then(|s| s.parse().ok())
            .ok_or_else(|| Self::corrupt(what))
    }
}
