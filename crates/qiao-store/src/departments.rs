//! The department tree.

use qiao_domain::org::{DEPARTMENT_DEPTH_MAX, Department};
use qiao_domain::{DepartmentId, Result, text};
use uuid::Uuid;

use crate::conn::{Db, exec, q};

type Row = (Uuid, Option<Uuid>, String, i64, i64);

fn from_row((id, parent, name, created_at, updated_at): Row) -> Department {
    Department { id: DepartmentId(id), parent_id: parent.map(DepartmentId), name, created_at, updated_at }
}

pub async fn insert(db: &mut dyn Db, d: &Department) -> Result<()> {
    exec!(
        db,
        sqlx::query(
            "INSERT INTO departments (id, parent_id, name, name_key, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(d.id.0)
        .bind(d.parent_id.map(|p| p.0))
        .bind(&d.name)
        .bind(text::fold(&d.name))
        .bind(d.created_at)
        .bind(d.updated_at)
    )?;
    Ok(())
}

pub async fn get(db: &mut dyn Db, id: DepartmentId) -> Result<Option<Department>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, Row>("SELECT id, parent_id, name, created_at, updated_at FROM departments WHERE id = $1")
            .bind(id.0)
    )?;
    Ok(row.map(from_row))
}

/// Every department, ordered by name (the tree is small enough to ship whole).
pub async fn list(db: &mut dyn Db) -> Result<Vec<Department>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, Row>(
            "SELECT id, parent_id, name, created_at, updated_at FROM departments ORDER BY name, id"
        )
    )?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Direct sub-departments, ordered by name.
pub async fn children(db: &mut dyn Db, id: DepartmentId) -> Result<Vec<Department>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, Row>(
            "SELECT id, parent_id, name, created_at, updated_at FROM departments \
             WHERE parent_id = $1 ORDER BY name, id"
        )
        .bind(id.0)
    )?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// The ids from the root down to `id`, inclusive; empty if `id` does not exist.
pub async fn path(db: &mut dyn Db, id: DepartmentId) -> Result<Vec<DepartmentId>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid, i64)>(
            "WITH RECURSIVE up (id, parent_id, depth) AS ( \
                 SELECT id, parent_id, CAST(0 AS BIGINT) FROM departments WHERE id = $1 \
                 UNION ALL \
                 SELECT d.id, d.parent_id, up.depth + 1 FROM departments d JOIN up ON d.id = up.parent_id \
                 WHERE up.depth < $2 \
             ) SELECT id, depth FROM up ORDER BY depth DESC"
        )
        .bind(id.0)
        .bind(DEPARTMENT_DEPTH_MAX as i64 * 2)
    )?;
    Ok(rows.into_iter().map(|(id, _)| DepartmentId(id)).collect())
}

/// `id` and every department below it.
pub async fn subtree(db: &mut dyn Db, id: DepartmentId) -> Result<Vec<DepartmentId>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid,)>(
            "WITH RECURSIVE down (id, depth) AS ( \
                 SELECT id, CAST(0 AS BIGINT) FROM departments WHERE id = $1 \
                 UNION ALL \
                 SELECT d.id, down.depth + 1 FROM departments d JOIN down ON d.parent_id = down.id \
                 WHERE down.depth < $2 \
             ) SELECT id FROM down"
        )
        .bind(id.0)
        .bind(DEPARTMENT_DEPTH_MAX as i64 * 2)
    )?;
    Ok(rows.into_iter().map(|(id,)| DepartmentId(id)).collect())
}

/// How many levels lie below `id` (0 for a leaf).
pub async fn height(db: &mut dyn Db, id: DepartmentId) -> Result<usize> {
    let (h,) = q!(
        db,
        fetch_one,
        sqlx::query_as::<_, (i64,)>(
            "WITH RECURSIVE down (id, depth) AS ( \
                 SELECT id, CAST(0 AS BIGINT) FROM departments WHERE id = $1 \
                 UNION ALL \
                 SELECT d.id, down.depth + 1 FROM departments d JOIN down ON d.parent_id = down.id \
                 WHERE down.depth < $2 \
             ) SELECT COALESCE(MAX(depth), 0) FROM down"
        )
        .bind(id.0)
        .bind(DEPARTMENT_DEPTH_MAX as i64 * 2)
    )?;
    Ok(usize::try_from(h).unwrap_or(0))
}

/// Writes the name, parent and update time of `d`.
pub async fn update(db: &mut dyn Db, d: &Department) -> Result<()> {
    exec!(
        db,
        sqlx::query("UPDATE departments SET parent_id = $2, name = $3, name_key = $4, updated_at = $5 WHERE id = $1")
            .bind(d.id.0)
            .bind(d.parent_id.map(|p| p.0))
            .bind(&d.name)
            .bind(text::fold(&d.name))
            .bind(d.updated_at)
    )?;
    Ok(())
}

pub async fn delete(db: &mut dyn Db, id: DepartmentId) -> Result<()> {
    exec!(db, sqlx::query("DELETE FROM departments WHERE id = $1").bind(id.0))?;
    Ok(())
}

/// Whether a child of `parent` other than `except` already uses `name` (case-insensitive).
pub async fn name_taken(
    db: &mut dyn Db,
    parent: DepartmentId,
    name: &str,
    except: Option<DepartmentId>,
) -> Result<bool> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (i32,)>("SELECT 1 FROM departments WHERE parent_id = $1 AND name_key = $2 AND id <> $3")
            .bind(parent.0)
            .bind(text::fold(name))
            .bind(except.map_or(Uuid::nil(), |e| e.0))
    )?;
    Ok(row.is_some())
}

/// Sub-departments plus people (primary or secondary) in `id` plus those who manage it; a
/// department can be deleted only when this is zero (a department admin whose department
/// went would be left managing nothing, or, after an edit, the root).
pub async fn occupancy(db: &mut dyn Db, id: DepartmentId) -> Result<i64> {
    let (n,) = q!(
        db,
        fetch_one,
        sqlx::query_as::<_, (i64,)>(
            "SELECT (SELECT COUNT(*) FROM departments WHERE parent_id = $1) \
                  + (SELECT COUNT(*) FROM users WHERE primary_department_id = $1) \
                  + (SELECT COUNT(*) FROM user_departments WHERE department_id = $1) \
                  + (SELECT COUNT(*) FROM department_admins WHERE department_id = $1)"
        )
        .bind(id.0)
    )?;
    Ok(n)
}
