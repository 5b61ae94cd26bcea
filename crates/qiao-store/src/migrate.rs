//! Embedded migrations, one folder per dialect with the same versions
//! (`migrations/sqlite`, `migrations/postgres`). Applied migrations are never edited: add a
//! new version to both folders and to both lists below.

use std::borrow::Cow;

use qiao_domain::{Error, Result};
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

type Source = (i64, &'static str, &'static str);

const SQLITE: &[Source] = &[
    (1, "foundation", include_str!("../migrations/sqlite/0001_foundation.sql")),
    (2, "messaging", include_str!("../migrations/sqlite/0002_messaging.sql")),
    (3, "message_seq_trigger", include_str!("../migrations/sqlite/0003_message_seq_trigger.sql")),
    (4, "event_resume_index", include_str!("../migrations/sqlite/0004_event_resume_index.sql")),
    (5, "files", include_str!("../migrations/sqlite/0005_files.sql")),
    (6, "blob_claims", include_str!("../migrations/sqlite/0006_blob_claims.sql")),
    (7, "nodes", include_str!("../migrations/sqlite/0007_nodes.sql")),
    (8, "members_by_user", include_str!("../migrations/sqlite/0008_members_by_user.sql")),
    (9, "unsent_files", include_str!("../migrations/sqlite/0009_unsent_files.sql")),
    (10, "node_versions", include_str!("../migrations/sqlite/0010_node_versions.sql")),
    (11, "drafts", include_str!("../migrations/sqlite/0011_drafts.sql")),
    (12, "conversation_search_key", include_str!("../migrations/sqlite/0012_conversation_search_key.sql")),
    (13, "presence_settings", include_str!("../migrations/sqlite/0013_presence_settings.sql")),
    (14, "blob_removals", include_str!("../migrations/sqlite/0014_blob_removals.sql")),
    (15, "file_order", include_str!("../migrations/sqlite/0015_file_order.sql")),
];

const POSTGRES: &[Source] = &[
    (1, "foundation", include_str!("../migrations/postgres/0001_foundation.sql")),
    (2, "messaging", include_str!("../migrations/postgres/0002_messaging.sql")),
    (3, "message_seq_trigger", include_str!("../migrations/postgres/0003_message_seq_trigger.sql")),
    (4, "event_resume_index", include_str!("../migrations/postgres/0004_event_resume_index.sql")),
    (5, "files", include_str!("../migrations/postgres/0005_files.sql")),
    (6, "blob_claims", include_str!("../migrations/postgres/0006_blob_claims.sql")),
    (7, "nodes", include_str!("../migrations/postgres/0007_nodes.sql")),
    (8, "members_by_user", include_str!("../migrations/postgres/0008_members_by_user.sql")),
    (9, "unsent_files", include_str!("../migrations/postgres/0009_unsent_files.sql")),
    (10, "node_versions", include_str!("../migrations/postgres/0010_node_versions.sql")),
    (11, "drafts", include_str!("../migrations/postgres/0011_drafts.sql")),
    (12, "conversation_search_key", include_str!("../migrations/postgres/0012_conversation_search_key.sql")),
    (13, "presence_settings", include_str!("../migrations/postgres/0013_presence_settings.sql")),
    (14, "blob_removals", include_str!("../migrations/postgres/0014_blob_removals.sql")),
    (15, "file_order", include_str!("../migrations/postgres/0015_file_order.sql")),
];

/// The schema versions this build knows, in order.
pub const MIGRATION_VERSIONS: &[i64] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

fn migrator(sources: &[Source]) -> Migrator {
    let migrations = sources
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(version, Cow::Borrowed(description), MigrationType::Simple, sql.into_sql_str(), false)
        })
        .collect();
    Migrator::with_migrations(migrations)
}

fn migrate_err(e: sqlx::migrate::MigrateError) -> Error {
    Error::unavailable(e).with_message(
        "Applying database migrations failed; the database may be from a newer Qiao or damaged (see the log).",
    )
}

// Migrations run through a one-connection pool: `Migrator::run` on a bare `&mut Connection`
// yields a future the compiler cannot prove `Send` ("Acquire is not general enough").
pub(crate) async fn run_sqlite(options: sqlx::sqlite::SqliteConnectOptions) -> Result<()> {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(Error::unavailable)?;
    let result = migrator(SQLITE).run(&pool).await.map_err(migrate_err);
    pool.close().await;
    result
}

pub(crate) async fn run_postgres(options: sqlx::postgres::PgConnectOptions) -> Result<()> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(Error::unavailable)?;
    // Locking (an advisory lock) lets several nodes start at once against one database.
    let mut m = migrator(POSTGRES);
    m.set_locking(true);
    let result = m.run(&pool).await.map_err(migrate_err);
    pool.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &str) -> Vec<String> {
        let path = format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR"));
        let mut names: Vec<String> =
            std::fs::read_dir(path).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    #[test]
    fn both_dialects_have_the_same_versions() {
        let versions = |s: &[Source]| s.iter().map(|m| (m.0, m.1)).collect::<Vec<_>>();
        assert_eq!(versions(SQLITE), versions(POSTGRES));
        assert_eq!(SQLITE.iter().map(|m| m.0).collect::<Vec<_>>(), MIGRATION_VERSIONS);
    }

    #[test]
    fn every_migration_file_is_embedded() {
        for (dir, list) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let expected: Vec<String> = list.iter().map(|(v, d, _)| format!("{v:04}_{d}.sql")).collect();
            assert_eq!(files(dir), expected, "migrations/{dir} and the embedded list differ");
        }
    }
}
