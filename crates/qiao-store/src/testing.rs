//! Throwaway databases for tests of this and other crates: a SQLite file in a fresh
//! temporary directory, or a fresh database on the PostgreSQL server named by
//! `QIAO_TEST_POSTGRES_URL` (which `scripts/test` starts on a loopback port).

use std::path::PathBuf;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// The environment variable naming an admin connection to a disposable PostgreSQL server.
pub const POSTGRES_ENV: &str = "QIAO_TEST_POSTGRES_URL";
/// When set (by CI), a missing PostgreSQL URL is an error instead of a skip.
pub const REQUIRE_POSTGRES_ENV: &str = "QIAO_REQUIRE_POSTGRES";

/// A database that lives as long as this value (PostgreSQL databases live until the test
/// server is thrown away).
pub struct TestDb {
    pub url: String,
    dir: Option<PathBuf>,
}

impl TestDb {
    /// A new SQLite database file in its own temporary directory.
    pub fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("qiao-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        let url = format!("sqlite:{}", dir.join("qiao.db").display());
        TestDb { url, dir: Some(dir) }
    }

    /// The directory holding a SQLite test database.
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_deref()
    }

    /// A new, empty PostgreSQL database, or `None` when no test server is configured.
    ///
    /// Panics when `QIAO_REQUIRE_POSTGRES` is set but the server is missing or refuses.
    pub async fn postgres() -> Option<TestDb> {
        let required = std::env::var_os(REQUIRE_POSTGRES_ENV).is_some();
        let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
            assert!(!required, "{REQUIRE_POSTGRES_ENV} is set but {POSTGRES_ENV} is not");
            return None;
        };
        Some(Self::postgres_on(&admin_url).await.expect("create a database on the PostgreSQL test server"))
    }

    /// A new, empty database on the server an admin URL points to.
    pub async fn postgres_on(admin_url: &str) -> Result<TestDb, sqlx::Error> {
        let name = format!("qiao_t_{}", uuid::Uuid::now_v7().simple());
        let opts = PgConnectOptions::from_str(admin_url)?;
        let mut admin = opts.connect().await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await?;
        let _ = admin.close().await;
        Ok(TestDb { url: with_database(admin_url, &name), dir: None })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{db}?{q}"),
        None => format!("{host_part}/{db}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_are_replaced() {
        use super::with_database;
        assert_eq!(with_database("postgres://u@h:5/postgres", "x"), "postgres://u@h:5/x");
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(with_database("postgres://u@h/p?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
    }
}
