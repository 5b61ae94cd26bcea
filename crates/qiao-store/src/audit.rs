//! The audit log.

use qiao_domain::audit::AuditEntry;
use qiao_domain::{AuditId, Error, Millis, Result, UserId};
use uuid::Uuid;

use crate::conn::{Db, exec, q};

pub async fn record(db: &mut dyn Db, e: &AuditEntry) -> Result<()> {
    let details = serde_json::to_string(&e.details).map_err(Error::internal)?;
    exec!(
        db,
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor_id, action, target_type, target_id, ip, details) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(e.id.0)
        .bind(e.at)
        .bind(e.actor_id.map(|a| a.0))
        .bind(&e.action)
        .bind(&e.target_type)
        .bind(&e.target_id)
        .bind(&e.ip)
        .bind(details)
    )?;
    Ok(())
}

/// Newest first; `before` continues from an earlier page's last entry.
pub async fn list(db: &mut dyn Db, before: Option<(Millis, AuditId)>, limit: u32) -> Result<Vec<AuditEntry>> {
    let (at, id) = before.map_or((i64::MAX, Uuid::max()), |(at, id)| (at, id.0));
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid, i64, Option<Uuid>, String, Option<String>, Option<String>, Option<String>, String)>(
            "SELECT id, at, actor_id, action, target_type, target_id, ip, details FROM audit_log \
             WHERE at < $1 OR (at = $1 AND id < $2) ORDER BY at DESC, id DESC LIMIT $3"
        )
        .bind(at)
        .bind(id)
        .bind(i64::from(limit))
    )?;
    rows.into_iter()
        .map(|(id, at, actor_id, action, target_type, target_id, ip, details)| {
            Ok(AuditEntry {
                id: AuditId(id),
                at,
                actor_id: actor_id.map(UserId),
                action,
                target_type,
                target_id,
                ip,
                details: serde_json::from_str(&details).map_err(Error::internal)?,
            })
        })
        .collect()
}
