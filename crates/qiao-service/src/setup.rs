//! First start: the organisation, and its first owner (by one-time link or command line).

use qiao_domain::event::{Audience, EventData};
use qiao_domain::org::{self, Department, Org};
use qiao_domain::session::{self, SessionKind};
use qiao_domain::user::{self, Role, User};
use qiao_domain::{DepartmentId, Error, ErrorCode, Result, UserId};
use qiao_store::users::NewUser;
use qiao_store::{Tx, audit, org as org_store, users};
use serde_json::json;

use crate::auth::{PendingSession, SignedIn};
use crate::crypto::{random_token, token_hash};
use crate::{Origin, Services, audit_entry, emit_user, millis, now};

/// What start-up found or created.
#[derive(Debug)]
pub struct Bootstrap {
    pub org: Org,
    /// While no owner exists: a fresh one-time token for the setup link.
    pub setup_token: Option<String>,
}

/// The first owner's account.
#[derive(Clone, Debug)]
pub struct OwnerInput {
    pub username: String,
    pub email: Option<String>,
    pub display_name: String,
    pub password: String,
    /// Renames the organisation when given.
    pub org_name: Option<String>,
}

struct ValidOwner {
    username: String,
    email: Option<String>,
    display_name: String,
    org_name: Option<String>,
}

fn validate(input: &OwnerInput) -> Result<ValidOwner> {
    let username = user::new_username(&input.username)?;
    user::validate_password("password", &input.password, Some(&username))?;
    Ok(ValidOwner {
        email: input.email.as_deref().map(user::optional_email).transpose()?.flatten(),
        display_name: user::validate_display_name(&input.display_name)?,
        org_name: input.org_name.as_deref().map(org::validate_org_name).transpose()?,
        username,
    })
}

/// Inserts an owner in the root department; marks setup complete; announces it.
async fn insert_owner(tx: &mut Tx, owner: &ValidOwner, id: UserId, hash: &str, at: i64) -> Result<User> {
    let organisation = org_store::get(tx).await?.ok_or_else(|| Error::internal("the organisation is missing"))?;
    crate::users::ensure_unique(tx, &owner.username, owner.email.as_deref(), None).await?;
    let user = users::insert(
        tx,
        &NewUser {
            id,
            username: owner.username.clone(),
            email: owner.email.clone(),
            display_name: owner.display_name.clone(),
            title: String::new(),
            role: Role::Owner,
            primary_department_id: organisation.root_department_id,
            secondary_department_ids: vec![],
            managed_department_ids: vec![],
            password_hash: hash.to_owned(),
            must_change_password: false,
            now: at,
        },
    )
    .await?;
    crate::membership::sync_person(tx, user.id, &[organisation.root_department_id], at).await?;
    org_store::mark_setup_complete(tx).await?;
    emit_user(tx, &user, true, at).await?;
    match &owner.org_name {
        // The root department and its channel carry the name too.
        Some(name) => {
            crate::org::rename_everywhere(tx, name, at).await?;
        }
        None => {
            let organisation =
                org_store::get(tx).await?.ok_or_else(|| Error::internal("the organisation is missing"))?;
            tx.append_event(Audience::Everyone, None, &EventData::OrgUpdated { org: organisation }, at).await?;
        }
    }
    Ok(user)
}

/// Longest setup token accepted, in bytes (issued ones are much shorter).
pub const SETUP_TOKEN_MAX: usize = 128;

impl Services {
    /// Creates the organisation on an empty database and, while it has no owner, issues a
    /// fresh setup token (earlier ones stop working).
    pub async fn bootstrap(&self, org_name: &str) -> Result<Bootstrap> {
        let at = now();
        let name = org::validate_org_name(org_name)?;
        let root =
            Department { id: DepartmentId::new(), parent_id: None, name: name.clone(), created_at: at, updated_at: at };
        let token = random_token(24)?;
        let (hash, expires_at) = (token_hash(&token), at + millis(self.config.setup_token_ttl));
        let entry = audit_entry(at, None, "org.create", None, &Origin::cli(), json!({ "name": name }));
        let org = self
            .store
            .write(move |tx| {
                let (name, root, hash, entry) = (name.clone(), root.clone(), hash.clone(), entry.clone());
                Box::pin(async move {
                    let org = match org_store::get(tx).await? {
                        Some(org) => org,
                        None => {
                            let org = org_store::create(tx, &name, &root).await?;
                            audit::record(tx, &entry).await?;
                            org
                        }
                    };
                    // Departments from before channels existed get theirs.
                    crate::membership::ensure_department_channels(tx, at).await?;
                    if !org.setup_complete {
                        org_store::clear_setup_tokens(tx).await?;
                        org_store::add_setup_token(tx, &hash, at, expires_at).await?;
                    }
                    Ok(org)
                })
            })
            .await?;
        let setup_token = (!org.setup_complete).then_some(token);
        Ok(Bootstrap { org, setup_token })
    }

    /// The organisation (for the setup screen: whether setup is still needed).
    pub async fn org(&self) -> Result<Org> {
        org_store::get(&mut self.store.reader().await?)
            .await?
            .ok_or_else(|| Error::unavailable("the organisation is not created yet"))
    }

    /// Creates the first owner with the one-time token from the setup link and signs them in.
    pub async fn complete_setup(
        &self,
        token: &str,
        input: &OwnerInput,
        kind: SessionKind,
        device_name: Option<&str>,
        origin: &Origin,
    ) -> Result<SignedIn> {
        let at = now();
        if self.org().await?.setup_complete {
            return Err(Error::new(ErrorCode::SetupAlreadyDone));
        }
        let owner = validate(input)?;
        let device_name = device_name.map(session::validate_device_name).transpose()?;
        // The token is checked before the password is hashed: a wrong one costs a read, not
        // one of the hasher's few permits.
        let token_hash = token_hash(token);
        let invalid_token = || Error::new(ErrorCode::InvalidSetupToken).with_field("token");
        if token.len() > SETUP_TOKEN_MAX
            || !org_store::setup_token_valid(&mut self.store.reader().await?, &token_hash, at).await?
        {
            return Err(invalid_token());
        }
        let hash = self.passwords.hash(&input.password).await?;
        let id = UserId::new();
        let pending = PendingSession::new(self, id, kind, device_name.as_deref(), origin, at)?;
        let record = pending.record.clone();
        let max = self.config.max_sessions_per_user;
        let entry = audit_entry(
            at,
            Some(id),
            "org.setup_complete",
            Some(("user", id.to_string())),
            origin,
            json!({ "username": owner.username, "org_name": owner.org_name }),
        );
        let owner = std::sync::Arc::new(owner);
        let user = self
            .store
            .write(move |tx| {
                let (owner, hash, token_hash, record, entry) =
                    (owner.clone(), hash.clone(), token_hash.clone(), record.clone(), entry.clone());
                Box::pin(async move {
                    if org_store::get(tx).await?.is_some_and(|o| o.setup_complete) {
                        return Err(Error::new(ErrorCode::SetupAlreadyDone));
                    }
                    if !org_store::consume_setup_token(tx, &token_hash, at).await? {
                        return Err(invalid_token());
                    }
                    let user = insert_owner(tx, &owner, id, &hash, at).await?;
                    PendingSession { token: String::new(), record }.write(tx, max).await?;
                    audit::record(tx, &entry).await?;
                    Ok(user)
                })
            })
            .await?;
        Ok(pending.finish(user))
    }

    /// Creates an owner without a setup link (for scripted installs and recovery: whoever
    /// can run the binary on the database already controls it).
    pub async fn create_owner(&self, input: &OwnerInput) -> Result<User> {
        let at = now();
        let owner = std::sync::Arc::new(validate(input)?);
        let hash = self.passwords.hash(&input.password).await?;
        let id = UserId::new();
        let entry = audit_entry(
            at,
            None,
            "user.create_owner",
            Some(("user", id.to_string())),
            &Origin::cli(),
            json!({ "username": owner.username, "org_name": owner.org_name }),
        );
        self.store
            .write(move |tx| {
                let (owner, hash, entry) = (owner.clone(), hash.clone(), entry.clone());
                Box::pin(async move {
                    let user = insert_owner(tx, &owner, id, &hash, at).await?;
                    audit::record(tx, &entry).await?;
                    Ok(user)
                })
            })
            .await
    }
}
