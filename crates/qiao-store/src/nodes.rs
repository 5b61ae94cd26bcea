//! The registry of nodes serving this database (see migration 0007).

use qiao_domain::{Millis, Result};

use crate::conn::{Db, exec, q};

/// One node as it registered itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub host: String,
    pub data_dir: String,
    /// Whether it is connected to the cluster's event bus.
    pub bus: bool,
    /// Whether its file storage is shared (S3 or a shared directory) rather than its own.
    pub shared_files: bool,
    /// The build it runs (package version and schema; empty for builds before this column).
    pub version: String,
    pub started_at: Millis,
    pub seen_at: Millis,
}

type Row = (String, String, String, bool, bool, String, i64, i64);

/// Registers (or re-registers) a node.
pub async fn register(db: &mut dyn Db, n: &Node) -> Result<()> {
    exec!(
        db,
        sqlx::query(
            "INSERT INTO nodes (id, host, data_dir, bus, shared_files, version, started_at, seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at"
        )
        .bind(&n.id)
        .bind(&n.host)
        .bind(&n.data_dir)
        .bind(n.bus)
        .bind(n.shared_files)
        .bind(&n.version)
        .bind(n.started_at)
        .bind(n.seen_at)
    )?;
    Ok(())
}

/// Refreshes a node's `seen_at`; false if it is not registered (it was swept: register again).
pub async fn heartbeat(db: &mut dyn Db, id: &str, now: Millis) -> Result<bool> {
    Ok(exec!(db, sqlx::query("UPDATE nodes SET seen_at = $2 WHERE id = $1").bind(id).bind(now))? > 0)
}

/// Removes a node (it stopped), and any not seen since `stale` (they died).
pub async fn remove(db: &mut dyn Db, id: &str, stale: Millis) -> Result<()> {
    exec!(db, sqlx::query("DELETE FROM nodes WHERE id = $1 OR seen_at < $2").bind(id).bind(stale))?;
    Ok(())
}

/// Nodes seen at or after `since`, oldest first.
pub async fn live(db: &mut dyn Db, since: Millis) -> Result<Vec<Node>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, Row>(
            "SELECT id, host, data_dir, bus, shared_files, version, started_at, seen_at FROM nodes \
             WHERE seen_at >= $1 ORDER BY started_at, id"
        )
        .bind(since)
    )?;
    Ok(rows
        .into_iter()
        .map(|(id, host, data_dir, bus, shared_files, version, started_at, seen_at)| Node {
            id,
            host,
            data_dir,
            bus,
            shared_files,
            version,
            started_at,
            seen_at,
        })
        .collect())
}
