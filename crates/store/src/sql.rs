//! SQL written once for both backends, with PostgreSQL's `$N` parameters; SQLite's
//! `?N` form is derived from it once, on first use. Statements declared with the
//! `sql!` macro (in the crate root) live in their area's module; only the few that
//! truly differ between the dialects stay in a backend.

use std::sync::OnceLock;

/// One statement of both backends.
pub struct Sql {
    build: fn() -> String,
    /// SQLite's own text (with `$N` parameters), where a construct differs.
    build_sqlite: Option<fn() -> String>,
    pg: OnceLock<String>,
    sqlite: OnceLock<String>,
}

impl Sql {
    /// The statement `build` writes (with `$N` parameters).
    pub(crate) const fn new(build: fn() -> String) -> Sql {
        Sql {
            build,
            build_sqlite: None,
            pg: OnceLock::new(),
            sqlite: OnceLock::new(),
        }
    }

    /// A statement whose dialects differ in a construct (a function's name, say):
    /// `pg` and `sqlite` write it for each, both with `$N` parameters.
    pub(crate) const fn per_dialect(pg: fn() -> String, sqlite: fn() -> String) -> Sql {
        Sql {
            build: pg,
            build_sqlite: Some(sqlite),
            pg: OnceLock::new(),
            sqlite: OnceLock::new(),
        }
    }

    /// PostgreSQL's text.
    pub(crate) fn pg(&self) -> &str {
        self.pg.get_or_init(self.build)
    }

    /// SQLite's text: every `$N` parameter written `?N`.
    pub(crate) fn sqlite(&self) -> &str {
        self.sqlite.get_or_init(|| match self.build_sqlite {
            Some(build) => sqlite_params(&build()),
            None => sqlite_params(self.pg()),
        })
    }
}

/// `text` with each `$` that starts a parameter (a digit follows) made `?`.
pub(crate) fn sqlite_params(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let param = c == '$' && chars.peek().is_some_and(char::is_ascii_digit);
        out.push(if param { '?' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_change_and_nothing_else() {
        assert_eq!(
            sqlite_params("SELECT '$x' FROM t WHERE a = $1 AND b = $12"),
            "SELECT '$x' FROM t WHERE a = ?1 AND b = ?12"
        );
        static S: Sql = Sql::new(|| format!("SELECT {} WHERE id = $1", "id"));
        assert_eq!(S.pg(), "SELECT id WHERE id = $1");
        assert_eq!(S.sqlite(), "SELECT id WHERE id = ?1");
        static D: Sql = Sql::per_dialect(
            || "SELECT strpos(a, $1)".into(),
            || "SELECT instr(a, $1)".into(),
        );
        assert_eq!(D.pg(), "SELECT strpos(a, $1)");
        assert_eq!(D.sqlite(), "SELECT instr(a, ?1)");
    }
}
