//! Who is in which conversation, their role and read position.

use qiao_domain::conversation::{ConversationKind, Member, MemberRole};
use qiao_domain::{ConversationId, DepartmentId, Error, MessageId, Millis, Result, UserId};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::conn::{Db, exec, placeholders, q};

type Row = (Uuid, String, bool, bool, i64, i64);

fn from_row((user_id, role, direct, via_department, joined_at, read_seq): Row) -> Result<(Member, i64)> {
    Ok((
        Member {
            user_id: UserId(user_id),
            role: MemberRole::parse(&role).ok_or_else(|| Error::internal("unknown member role"))?,
            direct,
            via_department,
            joined_at,
        },
        read_seq,
    ))
}

/// One membership and its read position.
pub async fn get(db: &mut dyn Db, conversation: ConversationId, user: UserId) -> Result<Option<(Member, i64)>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, Row>(
            "SELECT user_id, role, direct, via_department, joined_at, read_seq FROM members \
             WHERE conversation_id = $1 AND user_id = $2"
        )
        .bind(conversation.0)
        .bind(user.0)
    )?;
    row.map(from_row).transpose()
}

/// Members ordered by user id, after `after`.
pub async fn list(
    db: &mut dyn Db,
    conversation: ConversationId,
    after: Option<UserId>,
    limit: u32,
) -> Result<Vec<Member>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, Row>(
            "SELECT user_id, role, direct, via_department, joined_at, read_seq FROM members \
             WHERE conversation_id = $1 AND user_id > $2 ORDER BY user_id LIMIT $3"
        )
        .bind(conversation.0)
        .bind(after.map_or(Uuid::nil(), |u| u.0))
        .bind(i64::from(limit))
    )?;
    rows.into_iter().map(|r| from_row(r).map(|(m, _)| m)).collect()
}

/// Every member's id.
pub async fn user_ids(db: &mut dyn Db, conversation: ConversationId) -> Result<Vec<UserId>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid,)>("SELECT user_id FROM members WHERE conversation_id = $1 ORDER BY user_id")
            .bind(conversation.0)
    )?;
    Ok(rows.into_iter().map(|(u,)| UserId(u)).collect())
}

pub async fn insert(db: &mut dyn Db, conversation: ConversationId, m: &Member, read_seq: i64) -> Result<()> {
    exec!(
        db,
        sqlx::query(
            "INSERT INTO members (conversation_id, user_id, role, direct, via_department, joined_at, read_seq) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(conversation.0)
        .bind(m.user_id.0)
        .bind(m.role.as_str())
        .bind(m.direct)
        .bind(m.via_department)
        .bind(m.joined_at)
        .bind(read_seq)
    )?;
    Ok(())
}

/// Writes role and how the person belongs.
pub async fn update(db: &mut dyn Db, conversation: ConversationId, m: &Member) -> Result<()> {
    exec!(
        db,
        sqlx::query(
            "UPDATE members SET role = $3, direct = $4, via_department = $5 WHERE conversation_id = $1 AND user_id = $2"
        )
        .bind(conversation.0)
        .bind(m.user_id.0)
        .bind(m.role.as_str())
        .bind(m.direct)
        .bind(m.via_department)
    )?;
    Ok(())
}

/// Removes a membership, the drafts the person had started there (nobody may read them any
/// more, not even they) and the threads they followed there (rejoining starts afresh, as the
/// conversation's own read position does). `None` if there was no membership; otherwise the
/// roots of the threads the person stopped following, for the caller to tell their devices.
pub async fn delete(db: &mut dyn Db, conversation: ConversationId, user: UserId) -> Result<Option<Vec<MessageId>>> {
    let n = exec!(
        db,
        sqlx::query("DELETE FROM members WHERE conversation_id = $1 AND user_id = $2")
            .bind(conversation.0)
            .bind(user.0)
    )?;
    crate::drafts::delete_in(db, user, conversation).await?;
    let unfollowed = crate::threads::unfollow_in(db, user, conversation).await?;
    Ok((n > 0).then_some(unfollowed))
}

/// Moves a read position (callers decide whether it may move backwards).
pub async fn set_read(db: &mut dyn Db, conversation: ConversationId, user: UserId, seq: i64) -> Result<()> {
    exec!(
        db,
        sqlx::query("UPDATE members SET read_seq = $3 WHERE conversation_id = $1 AND user_id = $2")
            .bind(conversation.0)
            .bind(user.0)
            .bind(seq)
    )?;
    Ok(())
}

/// Active staff (not guests) whose primary or secondary department is one of `departments`.
pub async fn staff_in_departments(db: &mut dyn Db, departments: &[DepartmentId]) -> Result<Vec<UserId>> {
    let mut out = Vec::new();
    for chunk in departments.chunks(400) {
        let list = placeholders(0, chunk.len());
        let sql = format!(
            "SELECT id FROM users WHERE status = 'active' AND role <> 'guest' AND (primary_department_id IN ({list}) \
             OR id IN (SELECT user_id FROM user_departments WHERE department_id IN ({list})))"
        );
        let rows = q!(db, fetch_all, {
            let mut query = sqlx::query_as::<_, (Uuid,)>(AssertSqlSafe(sql.clone()));
            for d in chunk {
                query = query.bind(d.0);
            }
            query
        })?;
        out.extend(rows.into_iter().map(|(u,)| UserId(u)));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Members of `conversation` whose primary or secondary department is one of
/// `departments` (for department mentions).
pub async fn members_in_departments(
    db: &mut dyn Db,
    conversation: ConversationId,
    departments: &[DepartmentId],
) -> Result<Vec<UserId>> {
    let mut out = Vec::new();
    for chunk in departments.chunks(400) {
        let list = placeholders(1, chunk.len());
        let sql = format!(
            "SELECT m.user_id FROM members m JOIN users u ON u.id = m.user_id WHERE m.conversation_id = $1 \
             AND (u.primary_department_id IN ({list}) \
                  OR m.user_id IN (SELECT user_id FROM user_departments WHERE department_id IN ({list})))"
        );
        let rows = q!(db, fetch_all, {
            let mut query = sqlx::query_as::<_, (Uuid,)>(AssertSqlSafe(sql.clone())).bind(conversation.0);
            for d in chunk {
                query = query.bind(d.0);
            }
            query
        })?;
        out.extend(rows.into_iter().map(|(u,)| UserId(u)));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Members present through a linked department, with whether they are also direct.
pub async fn via_department(db: &mut dyn Db, conversation: ConversationId) -> Result<Vec<Member>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, Row>(
            "SELECT user_id, role, direct, via_department, joined_at, read_seq FROM members \
             WHERE conversation_id = $1 AND via_department ORDER BY user_id"
        )
        .bind(conversation.0)
    )?;
    rows.into_iter().map(|r| from_row(r).map(|(m, _)| m)).collect()
}

/// Members of `conversation` other than `user`, and how many of them are admins who can act
/// as such (active staff: a guest or a disabled person with the role cannot).
pub async fn others_and_admins(db: &mut dyn Db, conversation: ConversationId, user: UserId) -> Result<(i64, i64)> {
    let (others, admins) = q!(
        db,
        fetch_one,
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT COUNT(*), \
                 COALESCE(SUM(CASE WHEN m.role = 'admin' AND u.status = 'active' AND u.role <> 'guest' \
                     THEN 1 ELSE 0 END), 0) \
             FROM members m JOIN users u ON u.id = m.user_id \
             WHERE m.conversation_id = $1 AND m.user_id <> $2"
        )
        .bind(conversation.0)
        .bind(user.0)
    )?;
    Ok((others, admins))
}

/// The conversations in which `user` holds the admin role, with their kinds.
pub async fn admin_roles(db: &mut dyn Db, user: UserId) -> Result<Vec<(ConversationId, ConversationKind)>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid, String)>(
            "SELECT m.conversation_id, c.kind FROM members m JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.user_id = $1 AND m.role = 'admin' ORDER BY m.conversation_id"
        )
        .bind(user.0)
    )?;
    rows.into_iter()
        .map(|(id, kind)| {
            let kind = ConversationKind::parse(&kind).ok_or_else(|| Error::internal(format!("unknown kind {kind}")))?;
            Ok((ConversationId(id), kind))
        })
        .collect()
}

/// The member of `conversation` other than `user` who has been in it longest among those
/// who could act as its admin (active staff): the one to hand it to.
pub async fn successor(db: &mut dyn Db, conversation: ConversationId, user: UserId) -> Result<Option<Member>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, Row>(
            "SELECT m.user_id, m.role, m.direct, m.via_department, m.joined_at, m.read_seq \
             FROM members m JOIN users u ON u.id = m.user_id \
             WHERE m.conversation_id = $1 AND m.user_id <> $2 AND u.status = 'active' AND u.role <> 'guest' \
             ORDER BY m.joined_at, m.user_id LIMIT 1"
        )
        .bind(conversation.0)
        .bind(user.0)
    )?;
    Ok(row.map(from_row).transpose()?.map(|(m, _)| m))
}

/// Whether two people are both in some conversation.
pub async fn share_a_conversation(db: &mut dyn Db, a: UserId, b: UserId) -> Result<bool> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (i32,)>(
            "SELECT 1 FROM members x JOIN members y ON y.conversation_id = x.conversation_id \
             WHERE x.user_id = $1 AND y.user_id = $2 LIMIT 1"
        )
        .bind(a.0)
        .bind(b.0)
    )?;
    Ok(row.is_some())
}

/// A new membership record (helper for callers building members).
pub fn new_member(user_id: UserId, role: MemberRole, direct: bool, via_department: bool, at: Millis) -> Member {
    Member { user_id, role, direct, via_department, joined_at: at }
}

/// The ones among `users` who are members of `conversation`.
pub async fn filter_members(db: &mut dyn Db, conversation: ConversationId, users: &[UserId]) -> Result<Vec<UserId>> {
    let mut out = Vec::new();
    for chunk in users.chunks(400) {
        let sql = format!(
            "SELECT user_id FROM members WHERE conversation_id = $1 AND user_id IN ({})",
            placeholders(1, chunk.len())
        );
        let rows = q!(db, fetch_all, {
            let mut query = sqlx::query_as::<_, (Uuid,)>(AssertSqlSafe(sql.clone())).bind(conversation.0);
            for u in chunk {
                query = query.bind(u.0);
            }
            query
        })?;
        out.extend(rows.into_iter().map(|(u,)| UserId(u)));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The conversations a person may search with this name (compared case-folded, as
/// `name_key` stores it, or also width- and traditional-folded, as the first line of
/// `search_key` holds it: `in:會議室` finds 会议室), or this id:
/// those they are in and, for `staff`, public channels (see [`searchable_ids`]).
pub async fn conversation_ids_named(
    db: &mut dyn Db,
    user: UserId,
    staff: bool,
    name: &str,
) -> Result<Vec<ConversationId>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid,)>(
            "SELECT c.id FROM conversations c JOIN members m ON m.conversation_id = c.id \
             WHERE m.user_id = $1 AND (c.name_key = $3 OR c.search_key LIKE $4 ESCAPE '\\') \
             UNION SELECT id FROM conversations WHERE $2 AND kind = 'public' \
               AND (name_key = $3 OR search_key LIKE $4 ESCAPE '\\')"
        )
        .bind(user.0)
        .bind(staff)
        .bind(qiao_domain::text::fold(name))
        .bind(format!("{}\n%", qiao_domain::text::escape_like(&qiao_domain::fold::for_matching(name))))
    )?;
    let mut out: Vec<ConversationId> = rows.into_iter().map(|(id,)| ConversationId(id)).collect();
    if out.is_empty()
        && let Ok(id) = name.parse::<ConversationId>()
        && searchable_ids(db, user, staff).await?.contains(&id)
    {
        out.push(id);
    }
    out.sort();
    Ok(out)
}

/// The conversations a person may search: those they are in and, for `staff`, every public
/// channel (staff may read one without joining it).
pub async fn searchable_ids(db: &mut dyn Db, user: UserId, staff: bool) -> Result<Vec<ConversationId>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid,)>(
            "SELECT conversation_id FROM members WHERE user_id = $1 \
             UNION SELECT id FROM conversations WHERE $2 AND kind = 'public'"
        )
        .bind(user.0)
        .bind(staff)
    )?;
    Ok(rows.into_iter().map(|(c,)| ConversationId(c)).collect())
}

/// The conversations a person is in.
pub async fn conversation_ids_of(db: &mut dyn Db, user: UserId) -> Result<Vec<ConversationId>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid,)>("SELECT conversation_id FROM members WHERE user_id = $1").bind(user.0)
    )?;
    Ok(rows.into_iter().map(|(c,)| ConversationId(c)).collect())
}

/// The ones among `candidates` who share at least one conversation with `user`.
pub async fn sharing_with(db: &mut dyn Db, user: UserId, candidates: &[UserId]) -> Result<Vec<UserId>> {
    let mut out = Vec::new();
    for chunk in candidates.chunks(400) {
        let sql = format!(
            "SELECT DISTINCT y.user_id FROM members x JOIN members y ON y.conversation_id = x.conversation_id \
             WHERE x.user_id = $1 AND y.user_id IN ({})",
            placeholders(1, chunk.len())
        );
        let rows = q!(db, fetch_all, {
            let mut query = sqlx::query_as::<_, (Uuid,)>(AssertSqlSafe(sql.clone())).bind(user.0);
            for u in chunk {
                query = query.bind(u.0);
            }
            query
        })?;
        out.extend(rows.into_iter().map(|(u,)| UserId(u)));
    }
    out.sort();
    out.dedup();
    Ok(out)
}
