//! One SQL text, two engines. Store functions take `&mut dyn Db` and run each query through
//! [`q!`], which expands to a two-arm match so the same query builder is compiled once for
//! SQLite and once for PostgreSQL. Both engines accept `$1..$n` placeholders, `RETURNING`
//! and `ON CONFLICT`, so almost every statement is shared; the few that differ branch on
//! [`Db::dialect`].

use qiao_domain::{Error, ErrorCode};
use sqlx::{PgConnection, SqliteConnection};

/// A borrowed connection of either engine.
pub enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Pg(&'a mut PgConnection),
}

/// Which SQL dialect a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Anything store functions can run queries on: a pooled read connection or the writer's
/// transaction.
pub trait Db: Send {
    fn conn(&mut self) -> Conn<'_>;

    fn dialect(&mut self) -> Dialect {
        match self.conn() {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Pg(_) => Dialect::Postgres,
        }
    }
}

/// Runs `$query.$method(conn)` on whichever engine `$db` holds, mapping errors.
macro_rules! q {
    ($db:expr, $method:ident, $query:expr) => {
        match $crate::conn::Db::conn($db) {
            $crate::conn::Conn::Sqlite(c) => $query.$method(c).await,
            $crate::conn::Conn::Pg(c) => $query.$method(c).await,
        }
        .map_err($crate::conn::db_err)
    };
}
pub(crate) use q;

/// Runs a statement on whichever engine `$db` holds; evaluates to the rows affected.
macro_rules! exec {
    ($db:expr, $query:expr) => {
        match $crate::conn::Db::conn($db) {
            $crate::conn::Conn::Sqlite(c) => $query.execute(c).await.map(|r| r.rows_affected()),
            $crate::conn::Conn::Pg(c) => $query.execute(c).await.map(|r| r.rows_affected()),
        }
        .map_err($crate::conn::db_err)
    };
}
pub(crate) use exec;

/// Maps a driver error: unique violations become [`ErrorCode::Conflict`] (callers usually
/// check first and return a precise code; this covers races between nodes and requests), as
/// do foreign-key violations (a department or person checked a moment before was deleted
/// before the write), the rest are internal errors carrying the cause for the log.
pub fn db_err(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::new(ErrorCode::Conflict).with_source(e),
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            // Logged here: a 409 is not, and a code path that writes an id it never checked
            // would otherwise fail quietly every time.
            tracing::warn!(error = %e, "a write broke a foreign key (a concurrent delete, or an unchecked id)");
            Error::new(ErrorCode::Conflict)
                .with_message("Something this refers to changed meanwhile; reload and try again.")
                .with_source(e)
        }
        // PostgreSQL refuses NUL in text (SQLite stores it): a request's text, not our fault.
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("22021" | "22P05")) => {
            Error::new(ErrorCode::InvalidInput).with_message("Text may not contain the NUL character.").with_source(e)
        }
        // The server going away under a statement (a restart: 57P01–57P03 as its backends are
        // told to end; class 08, a lost connection; 53300, no connection slot free) is the
        // database being unavailable, as a dropped socket is: 503, worth a retry.
        sqlx::Error::Database(db)
            if db
                .code()
                .as_deref()
                .is_some_and(|c| c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "53300")) =>
        {
            Error::unavailable(e)
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => Error::unavailable(e),
        _ => Error::internal(e),
    }
}

/// `$1, $2, …, $n` starting after `offset` existing parameters: for `IN (…)` lists.
pub(crate) fn placeholders(offset: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 4);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('$');
        s.push_str(&(offset + i + 1).to_string());
    }
    s
}

/// `(…), (…)`: `rows` rows of `width` parameters each, for a multi-row insert that is a
/// query's first statement. Numbered `$n` on PostgreSQL; anonymous `?` on SQLite, which
/// binds them in order: finding a numbered parameter's name there is a linear search, so
/// binding a statement of hundreds of `$n` costs time quadratic in their count.
pub(crate) fn value_rows(dialect: Dialect, rows: usize, width: usize) -> String {
    let mut s = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        s.push_str(if r == 0 { "(" } else { ", (" });
        for k in 0..width {
            if k > 0 {
                s.push_str(", ");
            }
            match dialect {
                Dialect::Sqlite => s.push('?'),
                Dialect::Postgres => {
                    s.push('$');
                    s.push_str(&(r * width + k + 1).to_string());
                }
            }
        }
        s.push(')');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::Dialect;

    #[test]
    fn value_rows_per_dialect() {
        assert_eq!(super::value_rows(Dialect::Postgres, 2, 2), "($1, $2), ($3, $4)");
        assert_eq!(super::value_rows(Dialect::Sqlite, 2, 3), "(?, ?, ?), (?, ?, ?)");
    }

    #[test]
    fn placeholders_continue_numbering() {
        assert_eq!(super::placeholders(0, 3), "$1, $2, $3");
        assert_eq!(super::placeholders(2, 2), "$3, $4");
        assert_eq!(super::placeholders(0, 0), "");
    }

    /// A server error with a SQLSTATE, as the PostgreSQL driver reports one.
    #[derive(Debug)]
    struct Sqlstate(&'static str);

    impl std::fmt::Display for Sqlstate {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SQLSTATE {}", self.0)
        }
    }

    impl std::error::Error for Sqlstate {}

    impl sqlx::error::DatabaseError for Sqlstate {
        fn message(&self) -> &str {
            "server error"
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    #[test]
    fn the_server_going_away_is_unavailable_not_internal() {
        use qiao_domain::ErrorCode;
        let code = |state| super::db_err(sqlx::Error::Database(Box::new(Sqlstate(state)))).code;
        // A restart's "terminating connection due to administrator command", a lost
        // connection, no free connection slot: retry.
        for state in ["57P01", "57P02", "57P03", "08006", "08003", "53300"] {
            assert_eq!(code(state), ErrorCode::Unavailable, "{state}");
        }
        assert_eq!(code("42601"), ErrorCode::Internal, "a syntax error is ours");
        assert_eq!(code("22021"), ErrorCode::InvalidInput);
        assert_eq!(super::db_err(sqlx::Error::Protocol("unexpected eof".into())).code, ErrorCode::Unavailable);
    }
}
