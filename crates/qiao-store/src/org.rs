//! The organisation row and the one-time setup tokens for its first owner.

use qiao_domain::org::{Department, Org};
use qiao_domain::{DepartmentId, Error, Millis, Result};
use uuid::Uuid;

use crate::conn::{Db, exec, q};
use crate::departments;

/// The organisation, if it has been created.
pub async fn get(db: &mut dyn Db) -> Result<Option<Org>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (String, Uuid, bool, i64)>(
            "SELECT name, root_department_id, setup_complete, created_at FROM org WHERE id = 1"
        )
    )?;
    Ok(row.map(|(name, root, setup_complete, created_at)| Org {
        name,
        root_department_id: DepartmentId(root),
        setup_complete,
        created_at,
    }))
}

/// Creates the organisation and its root department (once).
pub async fn create(db: &mut dyn Db, name: &str, root: &Department) -> Result<Org> {
    if get(db).await?.is_some() {
        return Err(Error::new(qiao_domain::ErrorCode::Conflict).with_message("The organisation already exists."));
    }
    departments::insert(db, root).await?;
    exec!(
        db,
        sqlx::query(
            "INSERT INTO org (id, name, root_department_id, setup_complete, created_at) VALUES (1, $1, $2, FALSE, $3)"
        )
        .bind(name)
        .bind(root.id.0)
        .bind(root.created_at)
    )?;
    Ok(Org { name: name.to_owned(), root_department_id: root.id, setup_complete: false, created_at: root.created_at })
}

pub async fn rename(db: &mut dyn Db, name: &str) -> Result<()> {
    exec!(db, sqlx::query("UPDATE org SET name = $1 WHERE id = 1").bind(name))?;
    Ok(())
}

/// Records that the first owner exists; setup links stop working.
pub async fn mark_setup_complete(db: &mut dyn Db) -> Result<()> {
    exec!(db, sqlx::query("UPDATE org SET setup_complete = TRUE WHERE id = 1"))?;
    exec!(db, sqlx::query("DELETE FROM setup_tokens"))?;
    Ok(())
}

/// Stores the hash of a fresh setup token.
pub async fn add_setup_token(db: &mut dyn Db, token_hash: &[u8], now: Millis, expires_at: Millis) -> Result<()> {
    exec!(
        db,
        sqlx::query("INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)")
            .bind(token_hash)
            .bind(now)
            .bind(expires_at)
    )?;
    Ok(())
}

/// Deletes the token if it exists and has not expired; true if it did.
pub async fn consume_setup_token(db: &mut dyn Db, token_hash: &[u8], now: Millis) -> Result<bool> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (i64,)>("DELETE FROM setup_tokens WHERE token_hash = $1 RETURNING expires_at")
            .bind(token_hash)
    )?;
    Ok(row.is_some_and(|(expires_at,)| expires_at > now))
}

/// Whether a setup token is issued and unexpired (read before the costly work of a setup
/// request; [`consume_setup_token`] decides in the write).
pub async fn setup_token_valid(db: &mut dyn Db, token_hash: &[u8], now: Millis) -> Result<bool> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (i64,)>("SELECT expires_at FROM setup_tokens WHERE token_hash = $1 AND expires_at > $2")
            .bind(token_hash)
            .bind(now)
    )?;
    Ok(row.is_some())
}

/// Forgets every setup token (a new one is issued at each start until setup is done).
pub async fn clear_setup_tokens(db: &mut dyn Db) -> Result<()> {
    exec!(db, sqlx::query("DELETE FROM setup_tokens"))?;
    Ok(())
}
