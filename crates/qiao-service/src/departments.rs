//! The department tree: browse, create, rename, move, delete.

use qiao_domain::event::{Audience, EventData};
use qiao_domain::org::{self, DEPARTMENT_DEPTH_MAX, Department};
use qiao_domain::{DepartmentId, Error, ErrorCode, Result, perm};
use qiao_store::{audit, conversations, departments, org as org_store};
use serde_json::json;

use crate::auth::Authenticated;
use crate::membership;
use crate::users::{actor_unchanged, body_department_path};
use crate::{Origin, Services, audit_entry, now};

/// A department with its place in the tree.
#[derive(Clone, Debug)]
pub struct DepartmentDetail {
    pub department: Department,
    /// From the root down to the department's parent.
    pub ancestors: Vec<Department>,
    /// Direct sub-departments, by name.
    pub children: Vec<Department>,
}

fn staff_only(auth: &Authenticated) -> Result<()> {
    if perm::can_browse_directory(&auth.actor) {
        Ok(())
    } else {
        Err(Error::forbidden().with_message("Guests cannot browse the organisation."))
    }
}

impl Services {
    /// The whole tree as a flat list (parents referenced by id).
    pub async fn list_departments(&self, auth: &Authenticated) -> Result<Vec<Department>> {
        staff_only(auth)?;
        departments::list(&mut self.store.reader().await?).await
    }

    pub async fn get_department(&self, auth: &Authenticated, id: DepartmentId) -> Result<DepartmentDetail> {
        staff_only(auth)?;
        let mut r = self.store.reader().await?;
        let department = departments::get(&mut r, id).await?.ok_or_else(Error::not_found)?;
        let path = departments::path(&mut r, id).await?;
        let mut ancestors = Vec::with_capacity(path.len());
        for a in &path[..path.len().saturating_sub(1)] {
            ancestors.extend(departments::get(&mut r, *a).await?);
        }
        let children = departments::children(&mut r, id).await?;
        Ok(DepartmentDetail { department, ancestors, children })
    }

    /// Creates a department under `parent` (the root when `None`).
    pub async fn create_department(
        &self,
        auth: &Authenticated,
        name: &str,
        parent: Option<DepartmentId>,
        origin: &Origin,
    ) -> Result<Department> {
        // Guests are refused before any read: they may not learn which department ids exist.
        staff_only(auth)?;
        let name = org::validate_department_name(name)?;
        let mut r = self.store.reader().await?;
        let parent = match parent {
            Some(p) => p,
            None => {
                org_store::get(&mut r)
                    .await?
                    .ok_or_else(|| Error::internal("the organisation is missing"))?
                    .root_department_id
            }
        };
        let parent_path = body_department_path(&mut r, parent, "parent_id").await?;
        drop(r);
        if !perm::can_create_department(&auth.actor, &parent_path) {
            return Err(Error::forbidden().with_message("You can only create departments inside ones you manage."));
        }
        if parent_path.len() >= DEPARTMENT_DEPTH_MAX {
            return Err(Error::invalid("parent_id", format!("departments nest at most {DEPARTMENT_DEPTH_MAX} deep")));
        }
        let at = now();
        let d = Department { id: DepartmentId::new(), parent_id: Some(parent), name, created_at: at, updated_at: at };
        let entry = audit_entry(
            at,
            Some(auth.actor.user_id),
            "department.create",
            Some(("department", d.id.to_string())),
            origin,
            json!({ "name": d.name, "parent_id": parent }),
        );
        let acting = auth.actor.clone();
        self.store
            .write(move |tx| {
                let (d, entry, acting) = (d.clone(), entry.clone(), acting.clone());
                Box::pin(async move {
                    // Where the parent is now, and who the actor is now: a move or a role
                    // change committed meanwhile may have taken it out of their hands, or
                    // put it deeper.
                    actor_unchanged(tx, &acting).await?;
                    let parent_path = departments::path(tx, parent).await?;
                    if parent_path.is_empty() {
                        return Err(Error::invalid("parent_id", "no such department"));
                    }
                    if !perm::can_create_department(&acting, &parent_path) {
                        return Err(
                            Error::forbidden().with_message("You can only create departments inside ones you manage.")
                        );
                    }
                    if parent_path.len() >= DEPARTMENT_DEPTH_MAX {
                        return Err(Error::invalid(
                            "parent_id",
                            format!("departments nest at most {DEPARTMENT_DEPTH_MAX} deep"),
                        ));
                    }
                    if departments::name_taken(tx, parent, &d.name, None).await? {
                        return Err(Error::new(ErrorCode::DepartmentNameTaken).with_field("name"));
                    }
                    departments::insert(tx, &d).await?;
                    membership::create_department_channel(tx, &d, at).await?;
                    tx.append_event(Audience::Staff, None, &EventData::DepartmentCreated { department: d.clone() }, at)
                        .await?;
                    audit::record(tx, &entry).await?;
                    Ok(d)
                })
            })
            .await
    }

    /// Renames and/or moves a department.
    pub async fn update_department(
        &self,
        auth: &Authenticated,
        id: DepartmentId,
        name: Option<&str>,
        parent: Option<DepartmentId>,
        origin: &Origin,
    ) -> Result<Department> {
        staff_only(auth)?;
        let name = name.map(org::validate_department_name).transpose()?;
        let mut r = self.store.reader().await?;
        let before = departments::get(&mut r, id).await?.ok_or_else(Error::not_found)?;
        let path = departments::path(&mut r, id).await?;
        let moving = parent.filter(|p| Some(*p) != before.parent_id);
        // Whatever the request changes (or nothing), only those who manage it may ask.
        if !perm::can_rename_department(&auth.actor, &path) {
            return Err(Error::forbidden().with_message("You can only change departments you manage."));
        }
        let name = name.filter(|n| *n != before.name);
        // The root carries the organisation's name: renaming it renames the organisation.
        if before.parent_id.is_none() && name.is_some() && !perm::can_edit_org(&auth.actor) {
            return Err(Error::forbidden().with_message("Only administrators can rename the organisation."));
        }
        if name.is_none() && moving.is_none() {
            // Nothing to change: no write, no event, no audit entry.
            return Ok(before);
        }
        if let Some(p) = moving {
            if before.parent_id.is_none() {
                return Err(Error::new(ErrorCode::RootDepartment));
            }
            let new_parent_path = body_department_path(&mut r, p, "parent_id").await?;
            if !perm::can_move_department(&auth.actor, &path, &new_parent_path) {
                return Err(Error::forbidden().with_message("You can only move departments within what you manage."));
            }
        }
        drop(r);
        let at = now();
        let entry = audit_entry(
            at,
            Some(auth.actor.user_id),
            // The root only ever changes its name, which is the organisation's.
            if before.parent_id.is_none() { "org.rename" } else { "department.update" },
            Some(("department", id.to_string())),
            origin,
            json!({ "name": name, "parent_id": moving, "name_before": before.name }),
        );
        let acting = auth.actor.clone();
        self.store
            .write(move |tx| {
                let (name, entry, acting) = (name.clone(), entry.clone(), acting.clone());
                Box::pin(async move {
                    let mut d = departments::get(tx, id).await?.ok_or_else(Error::not_found)?;
                    actor_unchanged(tx, &acting).await?;
                    let path = departments::path(tx, id).await?;
                    if !perm::can_rename_department(&acting, &path) {
                        return Err(Error::forbidden().with_message("You can only change departments you manage."));
                    }
                    if let Some(p) = moving {
                        // Checked inside the transaction so concurrent moves cannot make a loop.
                        let new_parent_path = departments::path(tx, p).await?;
                        if new_parent_path.is_empty() {
                            return Err(Error::invalid("parent_id", "no such department"));
                        }
                        if !perm::can_move_department(&acting, &path, &new_parent_path) {
                            return Err(Error::forbidden()
                                .with_message("You can only move departments within what you manage."));
                        }
                        if org::move_creates_cycle(id, &new_parent_path) {
                            return Err(Error::new(ErrorCode::DepartmentCycle).with_field("parent_id"));
                        }
                        if new_parent_path.len() + 1 + departments::height(tx, id).await? > DEPARTMENT_DEPTH_MAX {
                            return Err(Error::invalid(
                                "parent_id",
                                format!("departments nest at most {DEPARTMENT_DEPTH_MAX} deep"),
                            ));
                        }
                        d.parent_id = Some(p);
                    }
                    if let Some(n) = name {
                        d.name = n;
                    }
                    if let Some(parent) = d.parent_id
                        && departments::name_taken(tx, parent, &d.name, Some(id)).await?
                    {
                        return Err(Error::new(ErrorCode::DepartmentNameTaken).with_field("name"));
                    }
                    d.updated_at = at;
                    if d.parent_id.is_none() {
                        // The root (which never moves) carries the organisation's name: this is
                        // the organisation's rename, department, channel and all.
                        crate::org::rename_everywhere(tx, &d.name, at).await?;
                        audit::record(tx, &entry).await?;
                        return Ok(d);
                    }
                    // The conversations fed by the department's old place, before it moves.
                    let before = match moving {
                        Some(_) => membership::affected_now(tx, &[id]).await?,
                        None => Default::default(),
                    };
                    departments::update(tx, &d).await?;
                    if moving.is_some() {
                        membership::sync_for_departments(tx, &[id], before, at).await?;
                    }
                    membership::rename_department_channel(tx, &d, at).await?;
                    tx.append_event(Audience::Staff, None, &EventData::DepartmentUpdated { department: d.clone() }, at)
                        .await?;
                    audit::record(tx, &entry).await?;
                    Ok(d)
                })
            })
            .await
    }

    /// Deletes an empty department.
    pub async fn delete_department(&self, auth: &Authenticated, id: DepartmentId, origin: &Origin) -> Result<()> {
        staff_only(auth)?;
        let mut r = self.store.reader().await?;
        let path = departments::path(&mut r, id).await?;
        drop(r);
        if path.is_empty() {
            return Err(Error::not_found());
        }
        if path.len() == 1 {
            return Err(Error::new(ErrorCode::RootDepartment));
        }
        if !perm::can_delete_department(&auth.actor, &path) {
            return Err(Error::forbidden().with_message("You can only delete departments below ones you manage."));
        }
        let at = now();
        let entry = audit_entry(
            at,
            Some(auth.actor.user_id),
            "department.delete",
            Some(("department", id.to_string())),
            origin,
            json!({}),
        );
        let acting = auth.actor.clone();
        self.store
            .write(move |tx| {
                let (entry, acting) = (entry.clone(), acting.clone());
                Box::pin(async move {
                    if departments::get(tx, id).await?.is_none() {
                        return Err(Error::not_found());
                    }
                    actor_unchanged(tx, &acting).await?;
                    if !perm::can_delete_department(&acting, &departments::path(tx, id).await?) {
                        return Err(
                            Error::forbidden().with_message("You can only delete departments below ones you manage.")
                        );
                    }
                    if departments::occupancy(tx, id).await? > 0 {
                        return Err(Error::new(ErrorCode::DepartmentNotEmpty));
                    }
                    membership::archive_department_channel(tx, id, at).await?;
                    // Project and announcement channels that link the department lose the link
                    // with it (its rows go with the department): their members are told, as
                    // when a channel's departments are changed. Being empty, it brought nobody,
                    // so no membership changes.
                    let linked = conversations::linked_to(tx, &[id]).await?;
                    departments::delete(tx, id).await?;
                    for c in linked {
                        membership::emit_updated(tx, c, at).await?;
                    }
                    tx.append_event(Audience::Staff, None, &EventData::DepartmentDeleted { department_id: id }, at)
                        .await?;
                    audit::record(tx, &entry).await
                })
            })
            .await
    }
}
