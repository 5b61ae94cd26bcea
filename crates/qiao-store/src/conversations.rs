//! Conversations: settings, linked departments, sequence numbers, listings.

use std::collections::HashMap;

use qiao_domain::conversation::{Conversation, ConversationKind, LinkedDepartment, MemberRole, MyState, search_key};
use qiao_domain::{ConversationId, DepartmentId, Error, Millis, Result, UserId, fold, text};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::conn::{Db, exec, placeholders, q};

macro_rules! columns {
    () => {
        "c.id, c.kind, c.name, c.topic, c.description, c.department_id, c.created_by, c.archived_at, c.last_seq, \
         c.last_message_at, c.member_count, c.created_at, c.updated_at"
    };
}

pub(crate) type Row =
    (Uuid, String, String, String, String, Option<Uuid>, Option<Uuid>, Option<i64>, i64, Option<i64>, i64, i64, i64);

fn from_row(r: Row) -> Result<Conversation> {
    let (
        id,
        kind,
        name,
        topic,
        description,
        department_id,
        created_by,
        archived_at,
        last_seq,
        last_message_at,
        member_count,
        created_at,
        updated_at,
    ) = r;
    Ok(Conversation {
        id: ConversationId(id),
        kind: ConversationKind::parse(&kind)
            .ok_or_else(|| Error::internal(format!("unknown conversation kind {kind:?}")))?,
        name,
        topic,
        description,
        department_id: department_id.map(DepartmentId),
        linked_departments: Vec::new(),
        participant_ids: Vec::new(),
        created_by: created_by.map(UserId),
        archived_at,
        last_seq,
        last_message_at,
        member_count,
        created_at,
        updated_at,
    })
}

/// Fills in linked departments and, for DMs and group DMs, the participants.
pub(crate) async fn hydrate(db: &mut dyn Db, rows: Vec<Row>) -> Result<Vec<Conversation>> {
    let mut convs = rows.into_iter().map(from_row).collect::<Result<Vec<_>>>()?;
    if convs.is_empty() {
        return Ok(convs);
    }
    let mut links: HashMap<Uuid, Vec<LinkedDepartment>> = HashMap::new();
    let linkable: Vec<Uuid> = convs
        .iter()
        .filter(|c| {
            matches!(c.kind, ConversationKind::Department | ConversationKind::Project | ConversationKind::Announcement)
        })
        .map(|c| c.id.0)
        .collect();
    for chunk in linkable.chunks(500) {
        let sql = format!(
            "SELECT conversation_id, department_id, include_subdepartments FROM conversation_departments \
             WHERE conversation_id IN ({}) ORDER BY conversation_id, department_id",
            placeholders(0, chunk.len())
        );
        let rows = q!(db, fetch_all, {
            let mut query = sqlx::query_as::<_, (Uuid, Uuid, bool)>(AssertSqlSafe(sql.clone()));
            for id in chunk {
                query = query.bind(*id);
            }
            query
        })?;
        for (c, d, sub) in rows {
            links
                .entry(c)
                .or_default()
                .push(LinkedDepartment { department_id: DepartmentId(d), include_subdepartments: sub });
        }
    }
    let mut participants: HashMap<Uuid, Vec<UserId>> = HashMap::new();
    let direct: Vec<Uuid> = convs.iter().filter(|c| c.kind.is_direct()).map(|c| c.id.0).collect();
    for chunk in direct.chunks(500) {
        let sql = format!(
            "SELECT conversation_id, user_id FROM members WHERE conversation_id IN ({}) ORDER BY conversation_id, joined_at, user_id",
            placeholders(0, chunk.len())
        );
        let rows = q!(db, fetch_all, {
            let mut query = sqlx::query_as::<_, (Uuid, Uuid)>(AssertSqlSafe(sql.clone()));
            for id in chunk {
                query = query.bind(*id);
            }
            query
        })?;
        for (c, u) in rows {
            participants.entry(c).or_default().push(UserId(u));
        }
    }
    for c in &mut convs {
        c.linked_departments = links.remove(&c.id.0).unwrap_or_default();
        c.participant_ids = participants.remove(&c.id.0).unwrap_or_default();
    }
    Ok(convs)
}

/// A new conversation (members are added separately).
#[derive(Clone, Debug)]
pub struct NewConversation {
    pub id: ConversationId,
    pub kind: ConversationKind,
    pub name: String,
    pub topic: String,
    pub description: String,
    pub department_id: Option<DepartmentId>,
    /// For 1:1 DMs: [`qiao_domain::conversation::dm_key`].
    pub dm_key: Option<String>,
    pub created_by: Option<UserId>,
    pub at: Millis,
}

pub async fn insert(db: &mut dyn Db, n: &NewConversation) -> Result<Conversation> {
    exec!(
        db,
        sqlx::query(
            "INSERT INTO conversations (id, kind, name, name_key, topic, description, department_id, dm_key, created_by, \
             last_seq, member_count, created_at, updated_at, search_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 0, $10, $10, $11)"
        )
        .bind(n.id.0)
        .bind(n.kind.as_str())
        .bind(&n.name)
        .bind(text::fold(&n.name))
        .bind(&n.topic)
        .bind(&n.description)
        .bind(n.department_id.map(|d| d.0))
        .bind(&n.dm_key)
        .bind(n.created_by.map(|u| u.0))
        .bind(n.at)
        .bind(search_key(&n.name))
    )?;
    get(db, n.id).await?.ok_or_else(|| Error::internal("conversation vanished after insert"))
}

pub async fn get(db: &mut dyn Db, id: ConversationId) -> Result<Option<Conversation>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, Row>(concat!("SELECT ", columns!(), " FROM conversations c WHERE c.id = $1")).bind(id.0)
    )?;
    Ok(hydrate(db, row.into_iter().collect()).await?.pop())
}

/// The 1:1 DM for a pair, if it exists.
pub async fn by_dm_key(db: &mut dyn Db, key: &str) -> Result<Option<ConversationId>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (Uuid,)>("SELECT id FROM conversations WHERE dm_key = $1").bind(key)
    )?;
    Ok(row.map(|(id,)| ConversationId(id)))
}

/// A department's channel, if it has one.
pub async fn by_department(db: &mut dyn Db, department: DepartmentId) -> Result<Option<ConversationId>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (Uuid,)>("SELECT id FROM conversations WHERE department_id = $1").bind(department.0)
    )?;
    Ok(row.map(|(id,)| ConversationId(id)))
}

/// Departments that have no channel yet.
pub async fn departments_without_channel(db: &mut dyn Db) -> Result<Vec<DepartmentId>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid,)>(
            "SELECT d.id FROM departments d WHERE NOT EXISTS (SELECT 1 FROM conversations c WHERE c.department_id = d.id) \
             ORDER BY d.id"
        )
    )?;
    Ok(rows.into_iter().map(|(id,)| DepartmentId(id)).collect())
}

/// Writes name, topic, description, archived time, department and update time.
pub async fn update(db: &mut dyn Db, c: &Conversation) -> Result<()> {
    exec!(
        db,
        sqlx::query(
            "UPDATE conversations SET name = $2, name_key = $3, topic = $4, description = $5, archived_at = $6, \
             department_id = $7, updated_at = $8, search_key = $9 WHERE id = $1"
        )
        .bind(c.id.0)
        .bind(&c.name)
        .bind(text::fold(&c.name))
        .bind(&c.topic)
        .bind(&c.description)
        .bind(c.archived_at)
        .bind(c.department_id.map(|d| d.0))
        .bind(c.updated_at)
        .bind(search_key(&c.name))
    )?;
    Ok(())
}

/// Conversations whose stored browsing key is not what [`search_key`] gives now (written
/// before the key existed, or by a version that built it otherwise): (id, the key stored,
/// the key it gives now).
pub async fn stale_search_keys(db: &mut dyn Db) -> Result<Vec<(ConversationId, String, String)>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid, String, String)>("SELECT id, name, search_key FROM conversations")
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, name, stored)| {
            let key = search_key(&name);
            (key != stored).then_some((ConversationId(id), stored, key))
        })
        .collect())
}

/// Sets a conversation's browsing key (`only_if` as in [`crate::users::set_search_key`]).
pub async fn set_search_key(db: &mut dyn Db, id: ConversationId, key: &str, only_if: Option<&str>) -> Result<()> {
    exec!(
        db,
        sqlx::query("UPDATE conversations SET search_key = $2 WHERE id = $1 AND ($3 IS NULL OR search_key = $3)")
            .bind(id.0)
            .bind(key)
            .bind(only_if)
    )?;
    Ok(())
}

/// Takes the conversation's next sequence number (and, for a new message, records its time).
/// Runs in the writer's transaction, so numbers are gap-free and in commit order.
pub async fn next_seq(db: &mut dyn Db, id: ConversationId, message_at: Option<Millis>) -> Result<i64> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (i64,)>(
            "UPDATE conversations SET last_seq = last_seq + 1, last_message_at = COALESCE($2, last_message_at) \
             WHERE id = $1 RETURNING last_seq"
        )
        .bind(id.0)
        .bind(message_at)
    )?;
    row.map(|(s,)| s).ok_or_else(Error::not_found)
}

/// Replaces the departments linked to a conversation.
pub async fn set_linked_departments(db: &mut dyn Db, id: ConversationId, links: &[LinkedDepartment]) -> Result<()> {
    exec!(db, sqlx::query("DELETE FROM conversation_departments WHERE conversation_id = $1").bind(id.0))?;
    for l in links {
        exec!(
            db,
            sqlx::query(
                "INSERT INTO conversation_departments (conversation_id, department_id, include_subdepartments) \
                 VALUES ($1, $2, $3)"
            )
            .bind(id.0)
            .bind(l.department_id.0)
            .bind(l.include_subdepartments)
        )?;
    }
    Ok(())
}

/// Conversations linked to any of `departments`.
pub async fn linked_to(db: &mut dyn Db, departments: &[DepartmentId]) -> Result<Vec<ConversationId>> {
    let mut out = Vec::new();
    for chunk in departments.chunks(500) {
        let sql = format!(
            "SELECT DISTINCT conversation_id FROM conversation_departments WHERE department_id IN ({})",
            placeholders(0, chunk.len())
        );
        let rows = q!(db, fetch_all, {
            let mut query = sqlx::query_as::<_, (Uuid,)>(AssertSqlSafe(sql.clone()));
            for d in chunk {
                query = query.bind(d.0);
            }
            query
        })?;
        out.extend(rows.into_iter().map(|(c,)| ConversationId(c)));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Recounts members into `member_count`; returns the count.
pub async fn refresh_member_count(db: &mut dyn Db, id: ConversationId) -> Result<i64> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (i64,)>(
            "UPDATE conversations SET member_count = (SELECT COUNT(*) FROM members WHERE conversation_id = $1) \
             WHERE id = $1 RETURNING member_count"
        )
        .bind(id.0)
    )?;
    row.map(|(n,)| n).ok_or_else(Error::not_found)
}

/// A query over public channels.
#[derive(Clone, Debug, Default)]
pub struct BrowseQuery {
    /// Text in the name, or its pinyin ([`search_key`]): case, width and traditional
    /// characters ignored.
    pub search: Option<String>,
    pub include_archived: bool,
    /// Keyset cursor: continue after this (folded name, id).
    pub after: Option<(String, ConversationId)>,
    pub limit: u32,
}

/// Public channels by name.
pub async fn browse(db: &mut dyn Db, query: &BrowseQuery) -> Result<Vec<Conversation>> {
    // The key holds the folded name and its pinyin; `name_key` (case-folded) still finds a
    // channel whose key is not filled in yet (an upgrade whose refresh failed).
    let pattern = query.search.as_deref().map(|s| format!("%{}%", text::escape_like(&fold::for_matching(s))));
    let plain = query.search.as_deref().map(|s| format!("%{}%", text::escape_like(&text::fold(s))));
    let (after_name, after_id) = match &query.after {
        Some((n, id)) => (Some(n.clone()), id.0),
        None => (None, Uuid::nil()),
    };
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, Row>(concat!(
            "SELECT ",
            columns!(),
            " FROM conversations c WHERE c.kind = 'public' \
               AND ($1 IS NULL OR c.search_key LIKE $1 ESCAPE '\\' OR c.name_key LIKE $6 ESCAPE '\\') \
               AND ($2 OR c.archived_at IS NULL) \
               AND ($3 IS NULL OR c.name_key > $3 OR (c.name_key = $3 AND c.id > $4)) \
             ORDER BY c.name_key, c.id LIMIT $5"
        ))
        .bind(pattern)
        .bind(query.include_archived)
        .bind(after_name)
        .bind(after_id)
        .bind(i64::from(query.limit))
        .bind(plain)
    )?;
    hydrate(db, rows).await
}

/// How far back unread counts look, in sequence numbers: counting is bounded however far
/// behind someone is (clients show large counts as "999+").
pub const UNREAD_WINDOW: i64 = 2000;

type MineRow = (String, bool, bool, i64, i64, i64, i64);

fn my_state((role, direct, via_department, read_seq, unread, mentions, channel_mentions): MineRow) -> Result<MyState> {
    Ok(MyState {
        role: MemberRole::parse(&role).ok_or_else(|| Error::internal("unknown member role"))?,
        direct,
        via_department,
        read_seq,
        unread_count: unread,
        mention_count: mentions + channel_mentions,
    })
}

// Mentions count messages: one that names the reader and also everyone counts once.
macro_rules! my_columns {
    () => {
        "m.role, m.direct, m.via_department, m.read_seq, \
         (SELECT COUNT(*) FROM messages x WHERE x.conversation_id = c.id AND x.seq > m.read_seq \
            AND x.seq > c.last_seq - 2000 AND x.thread_root_id IS NULL AND x.deleted_at IS NULL AND x.sender_id <> m.user_id), \
         (SELECT COUNT(*) FROM mentions y WHERE y.user_id = m.user_id AND y.conversation_id = c.id \
            AND y.seq > m.read_seq AND y.seq > c.last_seq - 2000 AND y.thread_root_id IS NULL), \
         (SELECT COUNT(*) FROM messages z WHERE z.conversation_id = c.id AND z.mentions_channel AND z.seq > m.read_seq \
            AND z.seq > c.last_seq - 2000 AND z.thread_root_id IS NULL AND z.deleted_at IS NULL AND z.sender_id <> m.user_id \
            AND NOT EXISTS (SELECT 1 FROM mentions w WHERE w.user_id = m.user_id AND w.message_id = z.id))"
    };
}

/// Every conversation `user` is in, with their read state and counts, most recently active
/// first.
pub async fn list_for_user(db: &mut dyn Db, user: UserId) -> Result<Vec<(Conversation, MyState)>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid, String, bool, bool, i64, i64, i64, i64)>(concat!(
            "SELECT c.id, ",
            my_columns!(),
            " FROM members m JOIN conversations c ON c.id = m.conversation_id WHERE m.user_id = $1"
        ))
        .bind(user.0)
    )?;
    let mut states = HashMap::new();
    for (id, role, direct, via, read, unread, mentions, channel) in rows {
        states.insert(id, my_state((role, direct, via, read, unread, mentions, channel))?);
    }
    let ids: Vec<Uuid> = states.keys().copied().collect();
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql =
            format!("SELECT {} FROM conversations c WHERE c.id IN ({})", columns!(), placeholders(0, chunk.len()));
        let rows = q!(db, fetch_all, {
            let mut query = sqlx::query_as::<_, Row>(AssertSqlSafe(sql.clone()));
            for id in chunk {
                query = query.bind(*id);
            }
            query
        })?;
        for c in hydrate(db, rows).await? {
            if let Some(state) = states.remove(&c.id.0) {
                out.push((c, state));
            }
        }
    }
    out.sort_by_key(|(c, _)| std::cmp::Reverse((c.last_message_at.unwrap_or(c.created_at), c.id)));
    Ok(out)
}

/// `user`'s state in one conversation, if they are a member.
pub async fn my_state_in(db: &mut dyn Db, id: ConversationId, user: UserId) -> Result<Option<MyState>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, MineRow>(concat!(
            "SELECT ",
            my_columns!(),
            " FROM members m JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.conversation_id = $1 AND m.user_id = $2"
        ))
        .bind(id.0)
        .bind(user.0)
    )?;
    row.map(my_state).transpose()
}

/// What permission checks need, in one query: the conversation's kind and archived time,
/// and `user`'s membership. `None` if the conversation does not exist.
pub async fn facts(
    db: &mut dyn Db,
    id: ConversationId,
    user: UserId,
) -> Result<Option<(ConversationKind, Option<Millis>, Option<qiao_domain::conversation::Member>)>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (String, Option<i64>, Option<String>, Option<bool>, Option<bool>, Option<i64>)>(
            "SELECT c.kind, c.archived_at, m.role, m.direct, m.via_department, m.joined_at FROM conversations c \
             LEFT JOIN members m ON m.conversation_id = c.id AND m.user_id = $2 WHERE c.id = $1"
        )
        .bind(id.0)
        .bind(user.0)
    )?;
    let Some((kind, archived_at, role, direct, via, joined_at)) = row else {
        return Ok(None);
    };
    let kind = ConversationKind::parse(&kind).ok_or_else(|| Error::internal("unknown conversation kind"))?;
    let member = match (role, direct, via, joined_at) {
        (Some(role), Some(direct), Some(via_department), Some(joined_at)) => Some(qiao_domain::conversation::Member {
            user_id: user,
            role: MemberRole::parse(&role).ok_or_else(|| Error::internal("unknown member role"))?,
            direct,
            via_department,
            joined_at,
        }),
        _ => None,
    };
    Ok(Some((kind, archived_at, member)))
}

/// Adds `delta` (negative to subtract) to the member count.
pub async fn adjust_member_count(db: &mut dyn Db, id: ConversationId, delta: i64) -> Result<()> {
    if delta != 0 {
        exec!(
            db,
            sqlx::query("UPDATE conversations SET member_count = member_count + $2 WHERE id = $1")
                .bind(id.0)
                .bind(delta)
        )?;
    }
    Ok(())
}
