//! People: the directory, self-service profile, and administration.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use qiao_domain::perm::{self, Actor, TargetUser};
use qiao_domain::user::{self, Role, User, UserStatus};
use qiao_domain::{DepartmentId, Error, ErrorCode, Result, UserId};
use qiao_store::users::{NewUser, UserQuery};
use qiao_store::{Db, audit, departments, members, org as org_store, users};
use serde_json::json;

use crate::auth::{Authenticated, end_sessions};
use crate::crypto::temporary_password;
use crate::membership::sync_person;
use crate::{Origin, Services, audit_entry, emit_user, now};

/// A new account, as an administrator describes it.
#[derive(Clone, Debug, Default)]
pub struct CreateUser {
    pub username: String,
    pub email: Option<String>,
    pub display_name: String,
    pub title: Option<String>,
    pub role: Option<Role>,
    /// Defaults to the organisation's root (or, for a department admin, the first
    /// department they manage).
    pub primary_department_id: Option<DepartmentId>,
    pub secondary_department_ids: Vec<DepartmentId>,
    /// Only for department admins; defaults to the primary department.
    pub managed_department_ids: Vec<DepartmentId>,
    /// When absent, a temporary password is generated and must be changed at first sign-in.
    pub password: Option<String>,
}

#[derive(Debug)]
pub struct CreatedUser {
    pub user: User,
    /// Shown once to the administrator when the server chose the password.
    pub temporary_password: Option<String>,
}

/// Changes an administrator makes to a person; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    pub username: Option<String>,
    /// `Some(None)` removes the e-mail address.
    pub email: Option<Option<String>>,
    pub display_name: Option<String>,
    pub title: Option<String>,
    pub role: Option<Role>,
    pub primary_department_id: Option<DepartmentId>,
    pub secondary_department_ids: Option<Vec<DepartmentId>>,
    pub managed_department_ids: Option<Vec<DepartmentId>>,
}

/// Changes a person makes to their own profile.
#[derive(Clone, Debug, Default)]
pub struct ProfilePatch {
    pub display_name: Option<String>,
    pub title: Option<String>,
}

/// A directory query from the API.
#[derive(Clone, Debug, Default)]
pub struct DirectoryQuery {
    pub search: Option<String>,
    pub department_id: Option<DepartmentId>,
    pub recursive: bool,
    pub include_disabled: bool,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// One page of results and the cursor for the next, if any.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

pub const PAGE_DEFAULT: u32 = 50;
pub const PAGE_MAX: u32 = 200;
pub const SEARCH_MAX: usize = 100;

/// A directory search's text, trimmed (`None` when blank). Its length counts the text as
/// sent, as the API document's `maxLength` does.
pub(crate) fn search_text(q: Option<String>) -> Result<Option<String>> {
    if q.as_ref().is_some_and(|s| s.chars().count() > SEARCH_MAX) {
        return Err(Error::new(ErrorCode::InvalidParameter)
            .with_field("q")
            .with_message(format!("The search text is too long (at most {SEARCH_MAX} characters).")));
    }
    // NUL matches nothing (and PostgreSQL refuses it in text).
    Ok(q.map(|s| s.replace('\0', "").trim().to_owned()).filter(|s| !s.is_empty()))
}

/// An opaque keyset cursor: a list's sort key and id, as base64url JSON.
pub(crate) fn encode_keyset<K: serde::Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

/// Longest cursor accepted, in bytes: those this server makes are far shorter.
pub const CURSOR_MAX: usize = 1024;

/// A cursor made by [`encode_keyset`]; `invalid_parameter` (field `cursor`) otherwise.
pub(crate) fn decode_keyset<K: serde::de::DeserializeOwned>(s: &str) -> Result<K> {
    if s.len() > CURSOR_MAX {
        return Err(bad_cursor());
    }
    let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad_cursor())?;
    serde_json::from_slice(&bytes).map_err(|_| bad_cursor())
}

fn bad_cursor() -> Error {
    Error::new(ErrorCode::InvalidParameter)
        .with_field("cursor")
        .with_message("The cursor is invalid; start again without it.")
}

/// An opaque keyset cursor over (name, id).
pub(crate) fn encode_name_cursor(name: &str, id: uuid::Uuid) -> String {
    encode_keyset(&(name, id))
}

pub(crate) fn decode_name_cursor(s: &str) -> Result<(String, uuid::Uuid)> {
    let (name, id): (String, uuid::Uuid) = decode_keyset(s)?;
    // No name holds NUL (PostgreSQL refuses it in text): not a cursor this server made.
    if name.contains('\0') {
        return Err(bad_cursor());
    }
    Ok((name, id))
}

fn encode_cursor(u: &User) -> String {
    encode_name_cursor(&u.display_name, u.id.0)
}

fn decode_cursor(s: &str) -> Result<(String, UserId)> {
    decode_name_cursor(s).map(|(n, id)| (n, UserId(id)))
}

pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32> {
    match limit {
        None => Ok(PAGE_DEFAULT),
        Some(n) if (1..=PAGE_MAX).contains(&n) => Ok(n),
        Some(_) => Err(Error::new(ErrorCode::InvalidParameter)
            .with_field("limit")
            .with_message(format!("limit must be between 1 and {PAGE_MAX}"))),
    }
}

/// The root-to-department path of a department named in a request body.
pub(crate) async fn body_department_path(
    db: &mut dyn Db,
    id: DepartmentId,
    field: &'static str,
) -> Result<Vec<DepartmentId>> {
    let path = departments::path(db, id).await?;
    if path.is_empty() {
        return Err(Error::invalid(field, "no such department"));
    }
    Ok(path)
}

/// Fails with `username_taken` / `email_taken` if another account (not `except`) uses them.
pub(crate) async fn ensure_unique(
    db: &mut dyn Db,
    username: &str,
    email: Option<&str>,
    except: Option<UserId>,
) -> Result<()> {
    if users::username_taken(db, username, except).await? {
        return Err(Error::new(ErrorCode::UsernameTaken).with_field("username"));
    }
    if let Some(email) = email
        && users::email_taken(db, email, except).await?
    {
        return Err(Error::new(ErrorCode::EmailTaken).with_field("email"));
    }
    Ok(())
}

fn forbidden(message: &'static str) -> Error {
    Error::forbidden().with_message(message)
}

/// Checks that the actor may put people into each department in `ids`.
async fn check_placeable(db: &mut dyn Db, actor: &Actor, ids: &[DepartmentId], field: &'static str) -> Result<()> {
    // A list is at most the cap; a change between two lists at most twice that.
    if ids.len() > 2 * user::SECONDARY_DEPARTMENTS_MAX {
        return Err(Error::invalid(field, format!("at most {} departments", user::SECONDARY_DEPARTMENTS_MAX)));
    }
    for id in ids {
        let path = body_department_path(db, *id, field).await?;
        if !perm::can_place_in_department(actor, &path) {
            return Err(forbidden("You can only place people in departments you manage."));
        }
    }
    Ok(())
}

/// The departments a department admin is to manage: each must exist, at most
/// [`user::MANAGED_DEPARTMENTS_MAX`].
async fn check_manageable(db: &mut dyn Db, ids: &[DepartmentId]) -> Result<()> {
    let field = "managed_department_ids";
    if ids.len() > user::MANAGED_DEPARTMENTS_MAX {
        return Err(Error::invalid(field, format!("at most {} departments", user::MANAGED_DEPARTMENTS_MAX)));
    }
    for d in ids {
        body_department_path(db, *d, field).await?;
    }
    Ok(())
}

fn symmetric_difference(a: &[DepartmentId], b: &[DepartmentId]) -> Vec<DepartmentId> {
    a.iter().filter(|x| !b.contains(x)).chain(b.iter().filter(|x| !a.contains(x))).copied().collect()
}

impl Services {
    /// Someone's profile. Guests may only see themselves (others look nonexistent).
    pub async fn get_user(&self, auth: &Authenticated, id: UserId) -> Result<User> {
        let mut r = self.store.reader().await?;
        // A guest sees the people it shares a conversation with (their names are on its
        // messages), and nobody else.
        let visible = perm::can_view_user(&auth.actor, id)
            || members::share_a_conversation(&mut r, auth.actor.user_id, id).await?;
        if !visible {
            return Err(Error::not_found());
        }
        users::get(&mut r, id).await?.ok_or_else(Error::not_found)
    }

    /// Lists or searches the directory.
    pub async fn list_users(&self, auth: &Authenticated, q: DirectoryQuery) -> Result<Page<User>> {
        if !perm::can_browse_directory(&auth.actor) {
            return Err(forbidden("Guests cannot browse the directory."));
        }
        let limit = page_limit(q.limit)?;
        let search = search_text(q.search)?;
        let after = q.cursor.as_deref().filter(|c| !c.is_empty()).map(decode_cursor).transpose()?;
        let mut r = self.store.reader().await?;
        if let Some(d) = q.department_id
            && departments::get(&mut r, d).await?.is_none()
        {
            return Err(Error::not_found().with_message("No such department."));
        }
        let mut items = users::list(
            &mut r,
            &UserQuery {
                search,
                department_id: q.department_id,
                recursive: q.recursive,
                include_disabled: q.include_disabled,
                after,
                limit: limit + 1,
            },
        )
        .await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(encode_cursor)
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Edits the caller's own display name and title.
    pub async fn update_profile(&self, auth: &Authenticated, patch: ProfilePatch, origin: &Origin) -> Result<User> {
        let display_name = patch.display_name.as_deref().map(user::validate_display_name).transpose()?;
        let title = patch.title.as_deref().map(user::validate_title).transpose()?;
        let id = auth.user.id;
        let current = users::get(&mut self.store.reader().await?, id).await?;
        let current = current.ok_or_else(|| Error::new(ErrorCode::Unauthenticated))?;
        if display_name.as_ref().is_none_or(|n| *n == current.display_name)
            && title.as_ref().is_none_or(|t| *t == current.title)
        {
            // Nothing changes: no write, no event to everyone, no audit entry.
            return Ok(current);
        }
        self.action_rate.check(id)?;
        let at = now();
        let entry = audit_entry(at, Some(id), "user.update_profile", Some(("user", id.to_string())), origin, json!({}));
        self.store
            .write(move |tx| {
                let (display_name, title, entry) = (display_name.clone(), title.clone(), entry.clone());
                Box::pin(async move {
                    let mut user = users::get(tx, id).await?.ok_or_else(|| Error::new(ErrorCode::Unauthenticated))?;
                    if let Some(n) = display_name {
                        user.display_name = n;
                    }
                    if let Some(t) = title {
                        user.title = t;
                    }
                    user.updated_at = at;
                    users::update(tx, &user).await?;
                    emit_user(tx, &user, false, at).await?;
                    audit::record(tx, &entry).await?;
                    Ok(user)
                })
            })
            .await
    }

    /// Creates an account.
    pub async fn create_user(&self, auth: &Authenticated, input: CreateUser, origin: &Origin) -> Result<CreatedUser> {
        let actor = &auth.actor;
        let role = input.role.unwrap_or(Role::Member);
        if !perm::can_assign_role(actor, role) {
            return Err(forbidden("You may not create people with this role."));
        }
        let username = user::new_username(&input.username)?;
        let email = input.email.as_deref().map(user::optional_email).transpose()?.flatten();
        let display_name = user::validate_display_name(&input.display_name)?;
        let title = user::validate_title(input.title.as_deref().unwrap_or(""))?;
        let (password, temporary) = match input.password {
            Some(p) => {
                user::validate_password("password", &p, Some(&username))?;
                (p, false)
            }
            None => (temporary_password()?, true),
        };

        let mut r = self.store.reader().await?;
        let primary = match input.primary_department_id {
            Some(d) => d,
            None => match (actor.role, actor.managed_department_ids.first()) {
                (Role::DepartmentAdmin, Some(d)) => *d,
                _ => {
                    org_store::get(&mut r)
                        .await?
                        .ok_or_else(|| Error::internal("the organisation is missing"))?
                        .root_department_id
                }
            },
        };
        check_placeable(&mut r, actor, &[primary], "primary_department_id").await?;
        if input.secondary_department_ids.len() > user::SECONDARY_DEPARTMENTS_MAX {
            let max = user::SECONDARY_DEPARTMENTS_MAX;
            return Err(Error::invalid("secondary_department_ids", format!("at most {max} departments")));
        }
        check_placeable(&mut r, actor, &input.secondary_department_ids, "secondary_department_ids").await?;
        let managed = match role {
            Role::DepartmentAdmin if input.managed_department_ids.is_empty() => vec![primary],
            Role::DepartmentAdmin => {
                check_manageable(&mut r, &input.managed_department_ids).await?;
                input.managed_department_ids.clone()
            }
            _ if !input.managed_department_ids.is_empty() => {
                return Err(Error::invalid("managed_department_ids", "only department admins manage departments"));
            }
            _ => vec![],
        };
        drop(r);

        let hash = self.passwords.hash(&password).await?;
        let at = now();
        let new = NewUser {
            id: UserId::new(),
            username,
            email,
            display_name,
            title,
            role,
            primary_department_id: primary,
            secondary_department_ids: input.secondary_department_ids,
            managed_department_ids: managed,
            password_hash: hash,
            must_change_password: temporary,
            now: at,
        };
        let entry = audit_entry(
            at,
            Some(actor.user_id),
            "user.create",
            Some(("user", new.id.to_string())),
            origin,
            json!({ "username": new.username, "role": role.as_str() }),
        );
        let acting = actor.clone();
        let user = self
            .store
            .write(move |tx| {
                let (new, entry, acting) = (new.clone(), entry.clone(), acting.clone());
                Box::pin(async move {
                    actor_unchanged(tx, &acting).await?;
                    ensure_unique(tx, &new.username, new.email.as_deref(), None).await?;
                    let user = users::insert(tx, &new).await?;
                    sync_person(tx, user.id, &user.department_ids().collect::<Vec<_>>(), at).await?;
                    emit_user(tx, &user, true, at).await?;
                    audit::record(tx, &entry).await?;
                    Ok(user)
                })
            })
            .await?;
        Ok(CreatedUser { user, temporary_password: temporary.then_some(password) })
    }

    /// Edits a person's profile, role or departments.
    pub async fn update_user(
        &self,
        auth: &Authenticated,
        id: UserId,
        patch: UserPatch,
        origin: &Origin,
    ) -> Result<User> {
        let actor = &auth.actor;
        let mut r = self.store.reader().await?;
        let before = managed_target(&mut r, actor, id).await?;
        let mut after = before.clone();
        if let Some(u) = &patch.username {
            // Only a new name must not be reserved (an older account may hold one).
            let name = user::normalize_username(u)?;
            after.username = if name == before.username { name } else { user::new_username(u)? };
        }
        if let Some(e) = &patch.email {
            after.email = e.as_deref().map(user::optional_email).transpose()?.flatten();
        }
        if let Some(n) = &patch.display_name {
            after.display_name = user::validate_display_name(n)?;
        }
        if let Some(t) = &patch.title {
            after.title = user::validate_title(t)?;
        }
        if let Some(role) = patch.role.filter(|r| *r != before.role) {
            if id == actor.user_id {
                return Err(forbidden("You cannot change your own role."));
            }
            if !perm::can_assign_role(actor, role) {
                return Err(forbidden("You may not give this role."));
            }
            after.role = role;
        }
        if let Some(p) = patch.primary_department_id.filter(|p| *p != before.primary_department_id) {
            check_placeable(&mut r, actor, &[p], "primary_department_id").await?;
            after.primary_department_id = p;
        }
        if let Some(s) = &patch.secondary_department_ids {
            // The whole list is capped, not just the change (only the change is checked for
            // permission: departments already held may be out of the actor's reach).
            if s.len() > user::SECONDARY_DEPARTMENTS_MAX && *s != before.secondary_department_ids {
                let max = user::SECONDARY_DEPARTMENTS_MAX;
                return Err(Error::invalid("secondary_department_ids", format!("at most {max} departments")));
            }
            let changed = symmetric_difference(&before.secondary_department_ids, s);
            check_placeable(&mut r, actor, &changed, "secondary_department_ids").await?;
            after.secondary_department_ids = s.clone();
        }
        if after.role == Role::DepartmentAdmin {
            if let Some(m) = &patch.managed_department_ids {
                if *m != before.managed_department_ids && !perm::can_assign_role(actor, Role::DepartmentAdmin) {
                    return Err(forbidden("You may not change which departments someone manages."));
                }
                if *m != before.managed_department_ids {
                    check_manageable(&mut r, m).await?;
                }
                after.managed_department_ids = m.clone();
            }
            if after.managed_department_ids.is_empty() {
                after.managed_department_ids = vec![after.primary_department_id];
            }
        } else if patch.managed_department_ids.as_ref().is_some_and(|m| !m.is_empty()) {
            return Err(Error::invalid("managed_department_ids", "only department admins manage departments"));
        } else {
            after.managed_department_ids.clear();
        }
        drop(r);

        let at = now();
        after.updated_at = at;
        // Department-derived memberships follow departments, role (guests are never derived
        // members) and status.
        let departments_before: BTreeSet<DepartmentId> = before.department_ids().collect();
        let departments_after: BTreeSet<DepartmentId> = after.department_ids().collect();
        let resync = (departments_before != departments_after || before.role.is_guest() != after.role.is_guest())
            .then(|| departments_before.union(&departments_after).copied().collect::<Vec<_>>());
        let demotes_owner =
            before.role == Role::Owner && after.role != Role::Owner && before.status == UserStatus::Active;
        let entry = audit_entry(
            at,
            Some(actor.user_id),
            "user.update",
            Some(("user", id.to_string())),
            origin,
            json!({ "role": after.role.as_str(), "role_before": before.role.as_str() }),
        );
        let editor = actor.clone();
        self.store
            .write(move |tx| {
                let (before, after, entry, resync) = (before.clone(), after.clone(), entry.clone(), resync.clone());
                let editor = editor.clone();
                Box::pin(async move {
                    // The whole row is written: if anything changed it since it was read (a
                    // disable, a role change, a password reset), this edit would undo it. And
                    // the person must still be the actor's to administer (their department
                    // moved out of a department admin's subtree meanwhile).
                    if managed_target(tx, &editor, after.id).await? != before {
                        return Err(Error::new(ErrorCode::Conflict)
                            .with_message("This person was changed meanwhile; reload and try again."));
                    }
                    if demotes_owner && users::count_active_owners(tx).await? <= 1 {
                        return Err(Error::new(ErrorCode::LastOwner));
                    }
                    ensure_unique(tx, &after.username, after.email.as_deref(), Some(after.id)).await?;
                    users::update(tx, &after).await?;
                    if after.role.is_guest() && !before.role.is_guest() {
                        // Before their memberships through departments go with the sync.
                        crate::membership::hand_over_channels(tx, after.id, at).await?;
                    }
                    if let Some(depts) = &resync {
                        sync_person(tx, after.id, depts, at).await?;
                    }
                    let user = users::get(tx, after.id).await?.ok_or_else(Error::not_found)?;
                    emit_user(tx, &user, false, at).await?;
                    audit::record(tx, &entry).await?;
                    Ok(user)
                })
            })
            .await
    }

    /// Disables an account and ends all of its sessions at once.
    pub async fn disable_user(&self, auth: &Authenticated, id: UserId, origin: &Origin) -> Result<User> {
        if id == auth.actor.user_id {
            return Err(forbidden("You cannot disable your own account."));
        }
        let target = managed_target(&mut self.store.reader().await?, &auth.actor, id).await?;
        self.set_status(auth, target, UserStatus::Disabled, origin).await
    }

    /// Re-enables a disabled account.
    pub async fn enable_user(&self, auth: &Authenticated, id: UserId, origin: &Origin) -> Result<User> {
        let target = managed_target(&mut self.store.reader().await?, &auth.actor, id).await?;
        self.set_status(auth, target, UserStatus::Active, origin).await
    }

    async fn set_status(
        &self,
        auth: &Authenticated,
        target: User,
        status: UserStatus,
        origin: &Origin,
    ) -> Result<User> {
        let at = now();
        let action = if status == UserStatus::Disabled { "user.disable" } else { "user.enable" };
        let entry =
            audit_entry(at, Some(auth.actor.user_id), action, Some(("user", target.id.to_string())), origin, json!({}));
        let actor = auth.actor.clone();
        self.store
            .write(move |tx| {
                let (entry, actor) = (entry.clone(), actor.clone());
                let id = target.id;
                Box::pin(async move {
                    let mut user = managed_target(tx, &actor, id).await?;
                    if user.status == status {
                        return Ok(user);
                    }
                    if status == UserStatus::Disabled
                        && user.role == Role::Owner
                        && users::count_active_owners(tx).await? <= 1
                    {
                        return Err(Error::new(ErrorCode::LastOwner));
                    }
                    user.status = status;
                    user.updated_at = at;
                    users::update(tx, &user).await?;
                    if status == UserStatus::Disabled {
                        // Before their memberships through departments go with the sync.
                        crate::membership::hand_over_channels(tx, id, at).await?;
                    }
                    sync_person(tx, user.id, &user.department_ids().collect::<Vec<_>>(), at).await?;
                    if status == UserStatus::Disabled {
                        end_sessions(tx, id, None, at).await?;
                    }
                    emit_user(tx, &user, false, at).await?;
                    audit::record(tx, &entry).await?;
                    Ok(user)
                })
            })
            .await
    }

    /// Replaces a person's password with a temporary one they must change, and ends their
    /// sessions. Returns the temporary password (shown once).
    pub async fn reset_password(&self, auth: &Authenticated, id: UserId, origin: &Origin) -> Result<String> {
        if id == auth.actor.user_id {
            return Err(forbidden("Change your own password instead of resetting it."));
        }
        managed_target(&mut self.store.reader().await?, &auth.actor, id).await?;
        let password = temporary_password()?;
        let hash = self.passwords.hash(&password).await?;
        let at = now();
        let entry = audit_entry(
            at,
            Some(auth.actor.user_id),
            "user.reset_password",
            Some(("user", id.to_string())),
            origin,
            json!({}),
        );
        let actor = auth.actor.clone();
        self.store
            .write(move |tx| {
                let (hash, entry, actor) = (hash.clone(), entry.clone(), actor.clone());
                Box::pin(async move {
                    managed_target(tx, &actor, id).await?;
                    users::set_password(tx, id, &hash, true, at).await?;
                    end_sessions(tx, id, None, at).await?;
                    let user = users::get(tx, id).await?.ok_or_else(Error::not_found)?;
                    emit_user(tx, &user, false, at).await?;
                    audit::record(tx, &entry).await
                })
            })
            .await?;
        Ok(password)
    }
}

/// Loads a person the actor wants to administer and checks they may. Writes that act on
/// the answer check again inside their transaction: a role or department change committed
/// in between (an owner promoting the person) must not let a department admin through.
async fn managed_target(db: &mut dyn Db, actor: &Actor, id: UserId) -> Result<User> {
    actor_unchanged(db, actor).await?;
    let target = users::get(db, id).await?.filter(|_| perm::can_view_user(actor, id)).ok_or_else(Error::not_found)?;
    let path = departments::path(db, target.primary_department_id).await?;
    let t = TargetUser { id, role: target.role, primary_department_path: &path };
    if !perm::can_manage_user(actor, &t) {
        return Err(forbidden("You may not administer this person."));
    }
    Ok(target)
}

/// Refuses (`forbidden`) unless the acting person is, inside this transaction, still active
/// with the role and managed departments their request was authorised with. A request is
/// authorised from the session cache at its start; an administrator demoted or disabled
/// while their request ran (a password reset hashing, say) must not act with the old role,
/// nor, in a cluster, with what another node's cache still says. Returns the person as the
/// transaction reads them.
pub(crate) async fn actor_unchanged(db: &mut dyn Db, actor: &Actor) -> Result<User> {
    let same = |u: &User| {
        let (mut was, mut is) = (actor.managed_department_ids.clone(), u.managed_department_ids.clone());
        was.sort_unstable();
        is.sort_unstable();
        u.status == UserStatus::Active && u.role == actor.role && was == is
    };
    match users::get(db, actor.user_id).await? {
        Some(u) if same(&u) => Ok(u),
        _ => Err(forbidden("Your role changed while this was being done; try again.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let u = User {
            id: UserId::new(),
            username: "a".into(),
            email: None,
            display_name: "张三".into(),
            title: String::new(),
            role: Role::Member,
            status: UserStatus::Active,
            primary_department_id: DepartmentId::new(),
            secondary_department_ids: vec![],
            managed_department_ids: vec![],
            must_change_password: false,
            created_at: 0,
            updated_at: 0,
        };
        assert_eq!(decode_cursor(&encode_cursor(&u)).unwrap(), ("张三".to_owned(), u.id));
        assert_eq!(decode_cursor("!!!").unwrap_err().code, ErrorCode::InvalidParameter);
        assert_eq!(decode_cursor("e30").unwrap_err().code, ErrorCode::InvalidParameter);
    }

    #[test]
    fn limits() {
        assert_eq!(page_limit(None).unwrap(), PAGE_DEFAULT);
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(PAGE_MAX + 1)).is_err());
    }
}
