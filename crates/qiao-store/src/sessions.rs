//! Signed-in devices. Tokens are never stored, only their SHA-256.

use qiao_domain::session::{Session, SessionKind};
use qiao_domain::{Error, Millis, Result, SessionId, UserId};
use uuid::Uuid;

use crate::conn::{Db, exec, q};

#[derive(Clone, Debug)]
pub struct NewSession {
    pub id: SessionId,
    pub user_id: UserId,
    pub token_hash: Vec<u8>,
    pub csrf_token: String,
    pub kind: SessionKind,
    pub device_name: String,
    pub ip: String,
    pub now: Millis,
    pub expires_at: Millis,
}

/// What authenticating a request needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionAuth {
    pub id: SessionId,
    pub user_id: UserId,
    pub kind: SessionKind,
    pub csrf_token: String,
    pub last_used_at: Millis,
    pub expires_at: Millis,
}

type AuthRow = (Uuid, Uuid, String, String, i64, i64);

fn auth_from((id, user_id, kind, csrf_token, last_used_at, expires_at): AuthRow) -> Result<SessionAuth> {
    Ok(SessionAuth {
        id: SessionId(id),
        user_id: UserId(user_id),
        kind: SessionKind::parse(&kind).ok_or_else(|| Error::internal("unknown session kind in database"))?,
        csrf_token,
        last_used_at,
        expires_at,
    })
}

pub async fn insert(db: &mut dyn Db, s: &NewSession) -> Result<()> {
    exec!(
        db,
        sqlx::query(
            "INSERT INTO sessions (id, user_id, token_hash, csrf_token, kind, device_name, ip, created_at, \
             last_used_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)"
        )
        .bind(s.id.0)
        .bind(s.user_id.0)
        .bind(&s.token_hash)
        .bind(&s.csrf_token)
        .bind(s.kind.as_str())
        .bind(&s.device_name)
        .bind(&s.ip)
        .bind(s.now)
        .bind(s.expires_at)
    )?;
    Ok(())
}

pub async fn by_token_hash(db: &mut dyn Db, token_hash: &[u8]) -> Result<Option<SessionAuth>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, AuthRow>(
            "SELECT id, user_id, kind, csrf_token, last_used_at, expires_at FROM sessions WHERE token_hash = $1"
        )
        .bind(token_hash)
    )?;
    row.map(auth_from).transpose()
}

pub async fn get(db: &mut dyn Db, id: SessionId) -> Result<Option<SessionAuth>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, AuthRow>(
            "SELECT id, user_id, kind, csrf_token, last_used_at, expires_at FROM sessions WHERE id = $1"
        )
        .bind(id.0)
    )?;
    row.map(auth_from).transpose()
}

/// A user's sessions, most recently used first (`current` is false on all).
pub async fn list_for_user(db: &mut dyn Db, user_id: UserId) -> Result<Vec<Session>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid, String, String, String, i64, i64, i64)>(
            "SELECT id, kind, device_name, ip, created_at, last_used_at, expires_at FROM sessions \
             WHERE user_id = $1 ORDER BY last_used_at DESC, id DESC"
        )
        .bind(user_id.0)
    )?;
    rows.into_iter()
        .map(|(id, kind, device_name, ip, created_at, last_used_at, expires_at)| {
            Ok(Session {
                id: SessionId(id),
                kind: SessionKind::parse(&kind).ok_or_else(|| Error::internal("unknown session kind in database"))?,
                device_name,
                ip,
                created_at,
                last_used_at,
                expires_at,
                current: false,
            })
        })
        .collect()
}

/// Deletes one session; true if it existed.
pub async fn delete(db: &mut dyn Db, id: SessionId) -> Result<bool> {
    let done = exec!(db, sqlx::query("DELETE FROM sessions WHERE id = $1").bind(id.0))?;
    Ok(done > 0)
}

/// Deletes all of a user's sessions except `keep`; returns the ids deleted.
pub async fn delete_for_user(db: &mut dyn Db, user_id: UserId, keep: Option<SessionId>) -> Result<Vec<SessionId>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid,)>("DELETE FROM sessions WHERE user_id = $1 AND id <> $2 RETURNING id")
            .bind(user_id.0)
            .bind(keep.map_or(Uuid::nil(), |k| k.0))
    )?;
    Ok(rows.into_iter().map(|(id,)| SessionId(id)).collect())
}

/// Records use of a session and slides its expiry.
pub async fn touch(db: &mut dyn Db, id: SessionId, now: Millis, expires_at: Millis) -> Result<()> {
    exec!(
        db,
        sqlx::query("UPDATE sessions SET last_used_at = $2, expires_at = $3 WHERE id = $1")
            .bind(id.0)
            .bind(now)
            .bind(expires_at)
    )?;
    Ok(())
}

/// Deletes expired sessions; returns (user, session) pairs deleted.
pub async fn delete_expired(db: &mut dyn Db, now: Millis) -> Result<Vec<(UserId, SessionId)>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid, Uuid)>("DELETE FROM sessions WHERE expires_at <= $1 RETURNING user_id, id")
            .bind(now)
    )?;
    Ok(rows.into_iter().map(|(u, s)| (UserId(u), SessionId(s))).collect())
}

/// Keeps a user's `keep` most recently used sessions and deletes the rest; returns those
/// deleted.
pub async fn prune_oldest(db: &mut dyn Db, user_id: UserId, keep: usize) -> Result<Vec<SessionId>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid,)>("SELECT id FROM sessions WHERE user_id = $1 ORDER BY last_used_at DESC, id DESC")
            .bind(user_id.0)
    )?;
    let mut deleted = Vec::new();
    for (id,) in rows.into_iter().skip(keep) {
        if delete(db, SessionId(id)).await? {
            deleted.push(SessionId(id));
        }
    }
    Ok(deleted)
}
