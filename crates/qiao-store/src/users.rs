//! People: profile, role, departments, credentials.

use std::collections::HashMap;

use qiao_domain::user::{Role, User, UserStatus, search_key};
use qiao_domain::{DepartmentId, Error, Millis, Result, UserId};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::conn::{Db, exec, placeholders, q};

macro_rules! user_columns {
    () => {
        "id, username, email, display_name, title, role, status, primary_department_id, \
         must_change_password, created_at, updated_at"
    };
}

type Row = (Uuid, String, Option<String>, String, String, String, String, Uuid, bool, i64, i64);

fn from_row(r: Row, secondary: Vec<DepartmentId>, managed: Vec<DepartmentId>) -> Result<User> {
    let (id, username, email, display_name, title, role, status, primary, must_change_password, created_at, updated_at) =
        r;
    Ok(User {
        id: UserId(id),
        username,
        email,
        display_name,
        title,
        role: Role::parse(&role).ok_or_else(|| Error::internal(format!("unknown role {role:?} in database")))?,
        status: UserStatus::parse(&status)
            .ok_or_else(|| Error::internal(format!("unknown status {status:?} in database")))?,
        primary_department_id: DepartmentId(primary),
        secondary_department_ids: secondary,
        managed_department_ids: managed,
        must_change_password,
        created_at,
        updated_at,
    })
}

/// A new account.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: UserId,
    pub username: String,
    pub email: Option<String>,
    pub display_name: String,
    pub title: String,
    pub role: Role,
    pub primary_department_id: DepartmentId,
    pub secondary_department_ids: Vec<DepartmentId>,
    pub managed_department_ids: Vec<DepartmentId>,
    pub password_hash: String,
    pub must_change_password: bool,
    pub now: Millis,
}

/// What sign-in needs to know about an account.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub user_id: UserId,
    pub password_hash: String,
    pub status: UserStatus,
}

pub async fn insert(db: &mut dyn Db, u: &NewUser) -> Result<User> {
    let user = User {
        id: u.id,
        username: u.username.clone(),
        email: u.email.clone(),
        display_name: u.display_name.clone(),
        title: u.title.clone(),
        role: u.role,
        status: UserStatus::Active,
        primary_department_id: u.primary_department_id,
        secondary_department_ids: normalized(&u.secondary_department_ids, Some(u.primary_department_id)),
        managed_department_ids: normalized(&u.managed_department_ids, None),
        must_change_password: u.must_change_password,
        created_at: u.now,
        updated_at: u.now,
    };
    exec!(
        db,
        sqlx::query(concat!(
            "INSERT INTO users (",
            user_columns!(),
            ", password_hash, search_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(user.id.0)
        .bind(&user.username)
        .bind(&user.email)
        .bind(&user.display_name)
        .bind(&user.title)
        .bind(user.role.as_str())
        .bind(user.status.as_str())
        .bind(user.primary_department_id.0)
        .bind(user.must_change_password)
        .bind(user.created_at)
        .bind(user.updated_at)
        .bind(&u.password_hash)
        .bind(search_key(&user.username, &user.display_name, user.email.as_deref(), &user.title))
    )?;
    write_departments(db, &user).await?;
    Ok(user)
}

/// Sorted, de-duplicated, without `exclude`.
fn normalized(ids: &[DepartmentId], exclude: Option<DepartmentId>) -> Vec<DepartmentId> {
    let mut v: Vec<DepartmentId> = ids.iter().copied().filter(|d| Some(*d) != exclude).collect();
    v.sort();
    v.dedup();
    v
}

async fn write_departments(db: &mut dyn Db, user: &User) -> Result<()> {
    exec!(db, sqlx::query("DELETE FROM user_departments WHERE user_id = $1").bind(user.id.0))?;
    exec!(db, sqlx::query("DELETE FROM department_admins WHERE user_id = $1").bind(user.id.0))?;
    for d in &user.secondary_department_ids {
        exec!(
            db,
            sqlx::query("INSERT INTO user_departments (user_id, department_id) VALUES ($1, $2)")
                .bind(user.id.0)
                .bind(d.0)
        )?;
    }
    for d in &user.managed_department_ids {
        exec!(
            db,
            sqlx::query("INSERT INTO department_admins (user_id, department_id) VALUES ($1, $2)")
                .bind(user.id.0)
                .bind(d.0)
        )?;
    }
    Ok(())
}

/// Loads secondary and managed departments for `rows` and builds users, keeping order.
async fn with_departments(db: &mut dyn Db, rows: Vec<Row>) -> Result<Vec<User>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    let mut secondary = department_map(db, "user_departments", &ids).await?;
    let mut managed = department_map(db, "department_admins", &ids).await?;
    rows.into_iter()
        .map(|r| {
            let id = r.0;
            from_row(r, secondary.remove(&id).unwrap_or_default(), managed.remove(&id).unwrap_or_default())
        })
        .collect()
}

async fn department_map(
    db: &mut dyn Db,
    table: &'static str,
    users: &[Uuid],
) -> Result<HashMap<Uuid, Vec<DepartmentId>>> {
    let mut map: HashMap<Uuid, Vec<DepartmentId>> = HashMap::new();
    for chunk in users.chunks(500) {
        // Only `table` (a constant) and numbered placeholders are spliced in.
        let sql = format!(
            "SELECT user_id, department_id FROM {table} WHERE user_id IN ({}) ORDER BY user_id, department_id",
            placeholders(0, chunk.len())
        );
        let rows = q!(db, fetch_all, {
            let mut query = sqlx::query_as::<_, (Uuid, Uuid)>(AssertSqlSafe(sql.clone()));
            for id in chunk {
                query = query.bind(*id);
            }
            query
        })?;
        for (user, dept) in rows {
            map.entry(user).or_default().push(DepartmentId(dept));
        }
    }
    Ok(map)
}

pub async fn get(db: &mut dyn Db, id: UserId) -> Result<Option<User>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, Row>(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1")).bind(id.0)
    )?;
    Ok(with_departments(db, row.into_iter().collect()).await?.pop())
}

/// The users among `ids` that exist, in no particular order.
pub async fn get_many(db: &mut dyn Db, ids: &[UserId]) -> Result<Vec<User>> {
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!("SELECT {} FROM users WHERE id IN ({})", user_columns!(), placeholders(0, chunk.len()));
        rows.extend(q!(db, fetch_all, {
            let mut query = sqlx::query_as::<_, Row>(AssertSqlSafe(sql.clone()));
            for id in chunk {
                query = query.bind(id.0);
            }
            query
        })?);
    }
    with_departments(db, rows).await
}

/// Sign-in facts for the account whose username or e-mail is `login` (already normalised).
pub async fn credentials_by_login(db: &mut dyn Db, login: &str) -> Result<Option<Credentials>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (Uuid, String, String)>(
            "SELECT id, password_hash, status FROM users WHERE username = $1 OR email = $1"
        )
        .bind(login)
    )?;
    credentials_from(row)
}

pub async fn credentials(db: &mut dyn Db, id: UserId) -> Result<Option<Credentials>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (Uuid, String, String)>("SELECT id, password_hash, status FROM users WHERE id = $1")
            .bind(id.0)
    )?;
    credentials_from(row)
}

fn credentials_from(row: Option<(Uuid, String, String)>) -> Result<Option<Credentials>> {
    row.map(|(id, password_hash, status)| {
        Ok(Credentials {
            user_id: UserId(id),
            password_hash,
            status: UserStatus::parse(&status).ok_or_else(|| Error::internal("unknown status in database"))?,
        })
    })
    .transpose()
}

pub async fn username_taken(db: &mut dyn Db, username: &str, except: Option<UserId>) -> Result<bool> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (i32,)>("SELECT 1 FROM users WHERE username = $1 AND id <> $2")
            .bind(username)
            .bind(except.map_or(Uuid::nil(), |u| u.0))
    )?;
    Ok(row.is_some())
}

pub async fn email_taken(db: &mut dyn Db, email: &str, except: Option<UserId>) -> Result<bool> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (i32,)>("SELECT 1 FROM users WHERE email = $1 AND id <> $2")
            .bind(email)
            .bind(except.map_or(Uuid::nil(), |u| u.0))
    )?;
    Ok(row.is_some())
}

/// Writes every profile field of `user` (not the password), including its departments.
pub async fn update(db: &mut dyn Db, user: &User) -> Result<()> {
    let mut user = user.clone();
    user.secondary_department_ids = normalized(&user.secondary_department_ids, Some(user.primary_department_id));
    user.managed_department_ids = normalized(&user.managed_department_ids, None);
    let done = exec!(
        db,
        sqlx::query(
            "UPDATE users SET username = $2, email = $3, display_name = $4, title = $5, role = $6, status = $7, \
             primary_department_id = $8, must_change_password = $9, updated_at = $10, search_key = $11 \
             WHERE id = $1"
        )
        .bind(user.id.0)
        .bind(&user.username)
        .bind(&user.email)
        .bind(&user.display_name)
        .bind(&user.title)
        .bind(user.role.as_str())
        .bind(user.status.as_str())
        .bind(user.primary_department_id.0)
        .bind(user.must_change_password)
        .bind(user.updated_at)
        .bind(search_key(&user.username, &user.display_name, user.email.as_deref(), &user.title))
    )?;
    if done == 0 {
        return Err(Error::not_found());
    }
    write_departments(db, &user).await
}

pub async fn set_password(
    db: &mut dyn Db,
    id: UserId,
    password_hash: &str,
    must_change: bool,
    now: Millis,
) -> Result<()> {
    exec!(
        db,
        sqlx::query("UPDATE users SET password_hash = $2, must_change_password = $3, updated_at = $4 WHERE id = $1")
            .bind(id.0)
            .bind(password_hash)
            .bind(must_change)
            .bind(now)
    )?;
    Ok(())
}

pub async fn count_active_owners(db: &mut dyn Db) -> Result<i64> {
    let (n,) = q!(
        db,
        fetch_one,
        sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM users WHERE role = 'owner' AND status = 'active'")
    )?;
    Ok(n)
}

pub async fn count(db: &mut dyn Db) -> Result<i64> {
    let (n,) = q!(db, fetch_one, sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM users"))?;
    Ok(n)
}

/// People whose stored directory key is not what [`search_key`] gives now (keys written
/// before its folding changed): (id, the key stored, the key it gives now).
pub async fn stale_search_keys(db: &mut dyn Db) -> Result<Vec<(UserId, String, String)>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid, String, String, Option<String>, String, String)>(
            "SELECT id, username, display_name, email, title, search_key FROM users"
        )
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, username, name, email, title, stored)| {
            let key = search_key(&username, &name, email.as_deref(), &title);
            (key != stored).then_some((UserId(id), stored, key))
        })
        .collect())
}

/// Sets a person's directory key; with `only_if`, only while the stored key is still that
/// one, so a change made meanwhile (which wrote its own key) is not overwritten with a key
/// built from what was there before.
pub async fn set_search_key(db: &mut dyn Db, id: UserId, key: &str, only_if: Option<&str>) -> Result<()> {
    exec!(
        db,
        sqlx::query("UPDATE users SET search_key = $2 WHERE id = $1 AND ($3 IS NULL OR search_key = $3)")
            .bind(id.0)
            .bind(key)
            .bind(only_if)
    )?;
    Ok(())
}

/// A directory query. Results are ordered by display name, then id.
#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    /// Case-insensitive substring of username, name, e-mail or title.
    pub search: Option<String>,
    /// Only people in this department (primary or secondary)…
    pub department_id: Option<DepartmentId>,
    /// …or anywhere in its subtree.
    pub recursive: bool,
    pub include_disabled: bool,
    /// Keyset cursor: continue after this (display name, id).
    pub after: Option<(String, UserId)>,
    pub limit: u32,
}

pub async fn list(db: &mut dyn Db, query: &UserQuery) -> Result<Vec<User>> {
    let pattern = query
        .search
        .as_deref()
        .map(|s| format!("%{}%", qiao_domain::text::escape_like(&qiao_domain::fold::for_matching(s))));
    let (after_name, after_id) = match &query.after {
        Some((name, id)) => (Some(name.clone()), id.0),
        None => (None, Uuid::nil()),
    };
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, Row>(concat!(
            "WITH RECURSIVE sub (id, depth) AS ( \
                 SELECT id, CAST(0 AS BIGINT) FROM departments WHERE id = $1 \
                 UNION ALL \
                 SELECT d.id, sub.depth + 1 FROM departments d JOIN sub ON d.parent_id = sub.id \
                 WHERE $2 AND sub.depth < 64 \
             ) SELECT ",
            user_columns!(),
            " FROM users u \
             WHERE ($1 IS NULL \
                    OR u.primary_department_id IN (SELECT id FROM sub) \
                    OR u.id IN (SELECT ud.user_id FROM user_departments ud WHERE ud.department_id IN (SELECT id FROM sub))) \
               AND ($3 IS NULL OR u.search_key LIKE $3 ESCAPE '\\') \
               AND ($4 OR u.status = 'active') \
               AND ($5 IS NULL OR u.display_name > $5 OR (u.display_name = $5 AND u.id > $6)) \
             ORDER BY u.display_name, u.id LIMIT $7"
        ))
        .bind(query.department_id.map(|d| d.0))
        .bind(query.recursive)
        .bind(pattern)
        .bind(query.include_disabled)
        .bind(after_name)
        .bind(after_id)
        .bind(i64::from(query.limit))
    )?;
    with_departments(db, rows).await
}

/// People whose whole name, or its whole pinyin, is `name` ([`qiao_domain::user::is_named`]),
/// at most `limit`, disabled people included (their messages stay searchable).
pub async fn ids_named(db: &mut dyn Db, name: &str, limit: usize) -> Result<Vec<UserId>> {
    let key = qiao_domain::fold::for_matching(name);
    if key.is_empty() {
        return Ok(Vec::new());
    }
    // The search key holds the folded name and its pinyin, a line each (every line ends in
    // a newline): rows with a whole line equal to the name, then the exact rule decides (the
    // line may be a username, an e-mail or a title).
    let escaped = qiao_domain::text::escape_like(&key);
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid, String)>(
            "SELECT id, display_name FROM users \
             WHERE search_key LIKE $1 ESCAPE '\\' OR search_key LIKE $2 ESCAPE '\\' ORDER BY id LIMIT 2000"
        )
        .bind(format!("{escaped}\n%"))
        .bind(format!("%\n{escaped}\n%"))
    )?;
    Ok(rows
        .into_iter()
        .filter(|(_, display_name)| qiao_domain::user::is_named(display_name, name))
        .map(|(id, _)| UserId(id))
        .take(limit)
        .collect())
}

/// Ids of the accounts with these (normalised) usernames.
pub async fn ids_by_usernames(db: &mut dyn Db, usernames: &[String]) -> Result<Vec<UserId>> {
    let mut out = Vec::new();
    for chunk in usernames.chunks(400) {
        let sql = format!("SELECT id FROM users WHERE username IN ({})", placeholders(0, chunk.len()));
        let rows = q!(db, fetch_all, {
            let mut query = sqlx::query_as::<_, (Uuid,)>(AssertSqlSafe(sql.clone()));
            for u in chunk {
                query = query.bind(u.as_str());
            }
            query
        })?;
        out.extend(rows.into_iter().map(|(u,)| UserId(u)));
    }
    Ok(out)
}
