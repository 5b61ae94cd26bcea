//! Reading the committed-event log (appending is [`crate::Tx::append_event`]).

use qiao_domain::{ConversationId, Millis, Result, UserId};
use uuid::Uuid;

use crate::conn::{Db, exec, q};

/// An event as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub pos: i64,
    pub audience: String,
    pub conversation_id: Option<ConversationId>,
    pub user_id: Option<UserId>,
    pub seq: Option<i64>,
    pub kind: String,
    /// The wire frame, exactly as it was sent live.
    pub frame: String,
    pub created_at: Millis,
}

type Row = (i64, String, Option<Uuid>, Option<Uuid>, Option<i64>, String, String, i64);

fn from_row((pos, audience, conversation_id, user_id, seq, kind, frame, created_at): Row) -> StoredEvent {
    StoredEvent {
        pos,
        audience,
        conversation_id: conversation_id.map(ConversationId),
        user_id: user_id.map(UserId),
        seq,
        kind,
        frame,
        created_at,
    }
}

/// The position of the last committed event (0 when there is none).
pub async fn head(db: &mut dyn Db) -> Result<i64> {
    let (pos,) = q!(db, fetch_one, sqlx::query_as::<_, (i64,)>("SELECT pos FROM stream_head WHERE id = 1"))?;
    Ok(pos)
}

/// The oldest position still in the log (None when the log is empty).
pub async fn oldest(db: &mut dyn Db) -> Result<Option<i64>> {
    let (pos,) = q!(db, fetch_one, sqlx::query_as::<_, (Option<i64>,)>("SELECT MIN(pos) FROM events"))?;
    Ok(pos)
}

/// Up to `limit` events after `after`, in order, regardless of audience.
pub async fn range(db: &mut dyn Db, after: i64, limit: i64) -> Result<Vec<StoredEvent>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, Row>(
            "SELECT pos, audience, conversation_id, user_id, seq, kind, frame, created_at FROM events \
             WHERE pos > $1 ORDER BY pos LIMIT $2"
        )
        .bind(after)
        .bind(limit)
    )?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Drops up to `limit` of the oldest events committed before `before` (clients further
/// behind refetch); returns how many were dropped. The log is in commit order, so the old
/// events are its first ones: where they end is found by walking the primary key from the
/// oldest (nothing else of the log is read, and nothing at all when none is old), and at
/// most `limit` are deleted, so a writer holding the stream's lock is not held up long.
pub async fn prune(db: &mut dyn Db, before: Millis, limit: i64) -> Result<u64> {
    let Some((oldest,)) =
        q!(db, fetch_optional, sqlx::query_as::<_, (i64,)>("SELECT pos FROM events ORDER BY pos LIMIT 1"))?
    else {
        return Ok(0);
    };
    let first_kept = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (i64,)>("SELECT pos FROM events WHERE created_at >= $1 ORDER BY pos LIMIT 1").bind(before)
    )?;
    let end = first_kept.map_or(i64::MAX, |(p,)| p).min(oldest.saturating_add(limit));
    let done = exec!(db, sqlx::query("DELETE FROM events WHERE pos < $1 AND created_at < $2").bind(end).bind(before))?;
    Ok(done)
}

/// The events one person may receive after `after` and up to `upto`, in order (at most
/// `limit`): those of the conversations they are in now, their own, and organisation-wide
/// ones (`staff` ones only for staff). Each part reads its own index.
pub async fn for_user(
    db: &mut dyn Db,
    user: UserId,
    staff: bool,
    after: i64,
    upto: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>> {
    // A short gap (a laptop waking, a phone changing network) is read with one ordered
    // scan of the log, filtering as it goes; a long one merges three index reads, which
    // then means sorting what they found.
    let sql = if upto - after <= SCAN_GAP_MAX {
        "SELECT pos, frame FROM events WHERE pos > $2 AND pos <= $3 AND ( \
             conversation_id IN (SELECT conversation_id FROM members WHERE user_id = $1) \
             OR user_id = $1 OR audience = 'everyone' OR (audience = 'staff' AND $4) \
         ) ORDER BY pos LIMIT $5"
    } else {
        "SELECT pos, frame FROM ( \
             SELECT pos, frame FROM events WHERE conversation_id IN \
                 (SELECT conversation_id FROM members WHERE user_id = $1) AND pos > $2 AND pos <= $3 \
             UNION ALL \
             SELECT pos, frame FROM events WHERE user_id = $1 AND pos > $2 AND pos <= $3 \
             UNION ALL \
             SELECT pos, frame FROM events WHERE audience IN ('staff', 'everyone') \
                 AND (audience = 'everyone' OR $4) AND pos > $2 AND pos <= $3 \
         ) AS e ORDER BY pos LIMIT $5"
    };
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (i64, String)>(sql).bind(user.0).bind(after).bind(upto).bind(staff).bind(limit)
    )?;
    Ok(rows)
}

/// Largest gap in stream positions read by scanning the log rather than the indexes.
pub const SCAN_GAP_MAX: i64 = 5_000;
