//! Signing in and out, authenticating requests, managing one's own sessions and password.

use qiao_domain::event::{Audience, EventData};
use qiao_domain::perm::Actor;
use qiao_domain::session::{self, Session, SessionKind};
use qiao_domain::user::{self, User, UserStatus};
use qiao_domain::{Error, ErrorCode, Millis, Result, SessionId, UserId};
use qiao_store::sessions::{NewSession, SessionAuth};
use qiao_store::{Tx, audit, sessions, users};
use serde_json::json;

use crate::crypto::{new_session_token, random_token, token_hash};
use crate::{Origin, Services, audit_entry, millis, now};

/// A request's verified identity.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub actor: Actor,
    pub user: User,
    pub session: SessionAuth,
}

impl Authenticated {
    pub fn user_id(&self) -> UserId {
        self.user.id
    }
}

pub struct SignIn {
    /// Username or e-mail address.
    pub login: String,
    pub password: String,
    pub device_name: Option<String>,
    pub kind: SessionKind,
}

/// A new session. `token` is shown once and never stored.
#[derive(Debug)]
pub struct SignedIn {
    pub token: String,
    pub csrf_token: String,
    pub session: Session,
    pub user: User,
}

/// Everything needed to write a new session; the secrets are made before the write so that
/// a replayed write stores the same ones.
pub(crate) struct PendingSession {
    pub token: String,
    pub record: NewSession,
}

impl PendingSession {
    pub(crate) fn new(
        services: &Services,
        user_id: UserId,
        kind: SessionKind,
        device: Option<&str>,
        origin: &Origin,
        at: Millis,
    ) -> Result<PendingSession> {
        let token = new_session_token()?;
        let record = NewSession {
            id: SessionId::new(),
            user_id,
            token_hash: token_hash(&token),
            csrf_token: random_token(24)?,
            kind,
            device_name: session::device_label(device, origin.user_agent.as_deref()),
            ip: origin.ip.clone(),
            now: at,
            expires_at: at + millis(services.config.session_idle_ttl),
        };
        Ok(PendingSession { token, record })
    }

    /// Writes the session and ends the user's oldest ones beyond the per-user limit.
    pub(crate) async fn write(&self, tx: &mut Tx, max_per_user: usize) -> Result<()> {
        sessions::insert(tx, &self.record).await?;
        let pruned = sessions::prune_oldest(tx, self.record.user_id, max_per_user.max(1)).await?;
        announce_revoked(tx, self.record.user_id, &pruned, self.record.now).await
    }

    pub(crate) fn finish(self, user: User) -> SignedIn {
        let r = self.record;
        SignedIn {
            token: self.token,
            csrf_token: r.csrf_token,
            session: Session {
                id: r.id,
                kind: r.kind,
                device_name: r.device_name,
                ip: r.ip,
                created_at: r.now,
                last_used_at: r.now,
                expires_at: r.expires_at,
                current: true,
            },
            user,
        }
    }
}

/// Refuses with `stale` unless the account's stored password hash is still `verified`, the one
/// a password was just checked against outside the transaction (hashing takes tens of
/// milliseconds, and the password may change meanwhile).
async fn password_unchanged(tx: &mut Tx, user: UserId, verified: &str, stale: Error) -> Result<()> {
    match users::credentials(tx, user).await? {
        Some(now) if now.password_hash == verified => Ok(()),
        _ => Err(stale),
    }
}

/// How many times a password is checked against a stored hash that changed meanwhile (another
/// sign-in rehashed it after a change of the hashing parameters) before giving up.
const VERIFY_ATTEMPTS: u32 = 3;

/// Tells the owner's devices that these sessions ended.
pub(crate) async fn announce_revoked(tx: &mut Tx, user: UserId, ended: &[SessionId], at: Millis) -> Result<()> {
    for id in ended {
        tx.append_event(Audience::User(user), None, &EventData::SessionRevoked { session_id: *id }, at).await?;
    }
    Ok(())
}

/// Ends every session of `user` except `keep`, announcing each.
pub(crate) async fn end_sessions(tx: &mut Tx, user: UserId, keep: Option<SessionId>, at: Millis) -> Result<usize> {
    let ended = sessions::delete_for_user(tx, user, keep).await?;
    announce_revoked(tx, user, &ended, at).await?;
    Ok(ended.len())
}

/// The normalised form of a sign-in name, or `None` if it cannot name any account.
fn normalize_login(login: &str) -> Option<String> {
    // (A full-width or small `＠`/`﹫` is an e-mail address's `@` once normalised.)
    if login.contains(['@', '＠', '﹫']) {
        user::normalize_email(login).ok()
    } else {
        user::normalize_username(login).ok()
    }
}

pub(crate) fn actor_of(user: &User) -> Actor {
    Actor { user_id: user.id, role: user.role, managed_department_ids: user.managed_department_ids.clone() }
}

/// How often a session's last-use time is written (not on every request).
const TOUCH_EVERY: Millis = 60_000;

impl Services {
    /// Counts a failed password check here and, through the bus, on every other node.
    fn sign_in_failed(&self, account: &str, address: &str, at: Millis) {
        self.throttle.failure(account, address, at);
        let node = self.hub.node();
        self.hub.signal(qiao_bus::Signal::SignInFailed {
            node,
            account: account.to_owned(),
            address: address.to_owned(),
            at,
        });
    }

    /// After a write refused because the password hash it checked was no longer stored: the
    /// hash to try the write again with, `None` to give up. Another sign-in may have rehashed
    /// the same password meanwhile (then the stored hash, if `password` matches it), or the
    /// refusal met a change its own batch of writes had not committed yet, or rolled back
    /// (then, once the writer has settled, the stored hash may be `checked` again). A real
    /// change of password, or an account gone, gives up.
    async fn hash_to_check_again(&self, user: UserId, password: &str, checked: &str) -> Result<Option<String>> {
        self.store.settled().await?;
        let stored = users::credentials(&mut self.store.reader().await?, user).await?;
        match stored {
            Some(c) if c.password_hash == checked => Ok(Some(c.password_hash)),
            Some(c) if self.passwords.verify(password, &c.password_hash).await? => Ok(Some(c.password_hash)),
            _ => Ok(None),
        }
    }

    /// Runs `write` with the password hash `checked` (the one `password` was verified
    /// against); when it is refused with `stale` (the hash it checked is no longer stored),
    /// tries again with [`Self::hash_to_check_again`]'s hash, at most [`VERIFY_ATTEMPTS`]
    /// times in all.
    async fn write_while_password_holds<T, F, Fut>(
        &self,
        user: UserId,
        password: &str,
        mut checked: String,
        stale: ErrorCode,
        mut write: F,
    ) -> Result<T>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match write(checked.clone()).await {
                Err(e) if e.code == stale && attempts < VERIFY_ATTEMPTS => {
                    match self.hash_to_check_again(user, password, &checked).await? {
                        Some(now) => checked = now,
                        None => return Err(e),
                    }
                }
                other => return other,
            }
        }
    }

    /// Signs in with a username or e-mail and password, creating a session.
    pub async fn sign_in(&self, req: SignIn, origin: &Origin) -> Result<SignedIn> {
        let at = now();
        // No account has a longer login (usernames and e-mail addresses are shorter): refused
        // before it could become a key in the sign-in throttle or a signal to other nodes.
        // (By length alone: it tells nothing about which accounts exist.)
        if req.login.chars().count() > user::EMAIL_MAX {
            return Err(Error::invalid("login", format!("must be at most {} characters", user::EMAIL_MAX)));
        }
        if req.password.chars().count() > user::PASSWORD_MAX {
            return Err(Error::invalid("password", format!("must be at most {} characters", user::PASSWORD_MAX)));
        }
        let device = req.device_name.as_deref().map(session::validate_device_name).transpose()?;
        let login_key = req.login.trim().to_lowercase();
        let address = crate::ratelimit::address_key(&origin.ip);
        if let Err(wait) = self.throttle.check(&login_key, &address, at) {
            return Err(Error::rate_limited(wait)
                .with_message(format!("Too many failed sign-ins; try again in {wait} seconds.")));
        }
        // Each check costs a password hash (tens of milliseconds of a core): signing in in a
        // loop must not take the server's CPU. Kept per name as typed, for accounts that exist
        // or not alike, so that a refusal tells nothing about which exist.
        self.password_rate.check(login_key.clone())?;
        let creds = match normalize_login(&req.login) {
            Some(login) => {
                let mut r = self.store.reader().await?;
                // An address stored before addresses were NFKC-normalised (lower-cased only)
                // is still found as it was typed then.
                let legacy = req.login.trim().to_lowercase();
                match users::credentials_by_login(&mut r, &login).await? {
                    None if login.contains('@') && legacy != login => {
                        users::credentials_by_login(&mut r, &legacy).await?
                    }
                    found => found,
                }
            }
            None => None,
        };
        let matched = match &creds {
            Some(c) => self.passwords.verify(&req.password, &c.password_hash).await?,
            None => {
                // Same cost as a real check, so response time does not reveal whether the
                // account exists.
                let dummy = self.passwords.dummy_hash().await;
                let _ = self.passwords.verify(&req.password, dummy).await?;
                false
            }
        };
        let Some(creds) = creds.filter(|_| matched) else {
            self.sign_in_failed(&login_key, &address, at);
            metrics::counter!("qiao_sign_in_failures_total").increment(1);
            let entry = audit_entry(
                at,
                None,
                "auth.sign_in_failed",
                None,
                origin,
                json!({ "login": login_key.chars().take(64).collect::<String>() }),
            );
            self.store
                .write(move |tx| {
                    let e = entry.clone();
                    Box::pin(async move { audit::record(tx, &e).await })
                })
                .await?;
            return Err(Error::new(ErrorCode::InvalidCredentials));
        };
        if creds.status == UserStatus::Disabled {
            return Err(Error::new(ErrorCode::AccountDisabled));
        }
        self.throttle.success(&login_key);
        self.hub.signal(qiao_bus::Signal::SignedIn { node: self.hub.node(), account: login_key.clone() });

        let user_id = creds.user_id;
        let pending = PendingSession::new(self, user_id, req.kind, device.as_deref(), origin, at)?;
        let max = self.config.max_sessions_per_user;
        let entry = audit_entry(
            at,
            Some(user_id),
            "auth.sign_in",
            Some(("session", pending.record.id.to_string())),
            origin,
            json!({ "kind": req.kind.as_str(), "device": pending.record.device_name }),
        );
        let (record, password) = (&pending.record, &req.password);
        let user = self
            .write_while_password_holds(
                user_id,
                password,
                creds.password_hash,
                ErrorCode::InvalidCredentials,
                |checked| {
                    let (record, entry) = (record.clone(), entry.clone());
                    async move {
                        let rehash = if self.passwords.needs_rehash(&checked) {
                            Some(self.passwords.hash(password).await?)
                        } else {
                            None
                        };
                        self.store
                            .write(move |tx| {
                                let (record, entry, rehash, checked) =
                                    (record.clone(), entry.clone(), rehash.clone(), checked.clone());
                                Box::pin(async move {
                                    let user = users::get(tx, record.user_id)
                                        .await?
                                        .ok_or_else(|| Error::new(ErrorCode::InvalidCredentials))?;
                                    if user.status == UserStatus::Disabled {
                                        return Err(Error::new(ErrorCode::AccountDisabled));
                                    }
                                    // The password checked is still the account's: a change or an
                                    // admin reset committed during the check ended every session,
                                    // and must not be followed by a new one made with the old
                                    // password (nor the old hash written back).
                                    let stale = Error::new(ErrorCode::InvalidCredentials);
                                    password_unchanged(tx, user.id, &checked, stale).await?;
                                    if let Some(hash) = rehash {
                                        users::set_password(tx, user.id, &hash, user.must_change_password, record.now)
                                            .await?;
                                    }
                                    PendingSession { token: String::new(), record }.write(tx, max).await?;
                                    audit::record(tx, &entry).await?;
                                    Ok(user)
                                })
                            })
                            .await
                    }
                },
            )
            .await?;
        Ok(pending.finish(user))
    }

    /// The session of a token hash and its active account, read from the database (not the
    /// cache); `unauthenticated` when either has ended. Expiry is the caller's to check.
    async fn session_in_store(&self, hash: &[u8]) -> Result<Authenticated> {
        let mut r = self.store.reader().await?;
        let session =
            sessions::by_token_hash(&mut r, hash).await?.ok_or_else(|| Error::new(ErrorCode::Unauthenticated))?;
        let user = users::get(&mut r, session.user_id)
            .await?
            .filter(|u| u.status == UserStatus::Active)
            .ok_or_else(|| Error::new(ErrorCode::Unauthenticated))?;
        Ok(Authenticated { actor: actor_of(&user), user, session })
    }

    /// Resolves a session token to its user. Fails with `unauthenticated` for unknown,
    /// expired or revoked tokens and for disabled accounts.
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated> {
        let at = now();
        let hash = token_hash(token);
        let auth = match self.sessions.get(&hash) {
            Some(auth) => auth,
            None => {
                let epoch = self.sessions.epoch();
                let auth = self.session_in_store(&hash).await?;
                self.sessions.put(hash.clone(), auth.clone(), epoch);
                auth
            }
        };
        if auth.session.expires_at <= at {
            return Err(Error::new(ErrorCode::Unauthenticated));
        }
        if at - auth.session.last_used_at >= TOUCH_EVERY {
            // Slide the expiry in the background: a request should not wait for an fsync
            // just because it was made.
            let store = self.store.clone();
            let (id, expires_at) = (auth.session.id, at + millis(self.config.session_idle_ttl));
            self.sessions.touched(&hash, at, expires_at);
            tokio::spawn(async move {
                if let Err(e) = store.write(move |tx| Box::pin(sessions::touch(tx, id, at, expires_at))).await {
                    tracing::warn!(error = %e, "could not record session use");
                }
            });
        }
        Ok(auth)
    }

    /// Ends the current session.
    pub async fn sign_out(&self, auth: &Authenticated, origin: &Origin) -> Result<()> {
        let at = now();
        let (user, id) = (auth.user.id, auth.session.id);
        let entry = audit_entry(at, Some(user), "auth.sign_out", Some(("session", id.to_string())), origin, json!({}));
        self.store
            .write(move |tx| {
                let entry = entry.clone();
                Box::pin(async move {
                    if sessions::delete(tx, id).await? {
                        announce_revoked(tx, user, &[id], at).await?;
                    }
                    audit::record(tx, &entry).await
                })
            })
            .await
    }

    /// The caller's sessions, the current one marked.
    pub async fn list_sessions(&self, auth: &Authenticated) -> Result<Vec<Session>> {
        let mut list = sessions::list_for_user(&mut self.store.reader().await?, auth.user.id).await?;
        for s in &mut list {
            s.current = s.id == auth.session.id;
        }
        Ok(list)
    }

    /// Ends one of the caller's sessions (another device, or this one).
    pub async fn revoke_session(&self, auth: &Authenticated, id: SessionId, origin: &Origin) -> Result<()> {
        let at = now();
        let user = auth.user.id;
        let entry = audit_entry(at, Some(user), "session.revoke", Some(("session", id.to_string())), origin, json!({}));
        self.store
            .write(move |tx| {
                let entry = entry.clone();
                Box::pin(async move {
                    // Someone else's session id gets the same answer as an unknown one.
                    match sessions::get(tx, id).await? {
                        Some(s) if s.user_id == user => {}
                        _ => return Err(Error::not_found()),
                    }
                    sessions::delete(tx, id).await?;
                    announce_revoked(tx, user, &[id], at).await?;
                    audit::record(tx, &entry).await
                })
            })
            .await
    }

    /// Ends all of the caller's sessions but the current one; returns how many ended.
    pub async fn revoke_other_sessions(&self, auth: &Authenticated, origin: &Origin) -> Result<usize> {
        self.action_rate.check(auth.user.id)?;
        let at = now();
        let (user, keep) = (auth.user.id, auth.session.id);
        let entry = audit_entry(at, Some(user), "session.revoke_others", None, origin, json!({}));
        self.store
            .write(move |tx| {
                let entry = entry.clone();
                Box::pin(async move {
                    let n = end_sessions(tx, user, Some(keep), at).await?;
                    audit::record(tx, &entry).await?;
                    Ok(n)
                })
            })
            .await
    }

    /// Changes the caller's password after checking the current one; ends their other
    /// sessions. Wrong current passwords count towards the sign-in lockout.
    pub async fn change_password(&self, auth: &Authenticated, current: &str, new: &str, origin: &Origin) -> Result<()> {
        let at = now();
        let key = auth.user.username.clone();
        let address = crate::ratelimit::address_key(&origin.ip);
        if let Err(wait) = self.throttle.check(&key, &address, at) {
            return Err(Error::rate_limited(wait));
        }
        user::validate_password("new_password", new, Some(&auth.user.username))?;
        if current.chars().count() > user::PASSWORD_MAX {
            return Err(Error::invalid(
                "current_password",
                format!("must be at most {} characters", user::PASSWORD_MAX),
            ));
        }
        self.password_rate.check(format!("password-change:{}", auth.user.id))?;
        let creds = users::credentials(&mut self.store.reader().await?, auth.user.id)
            .await?
            .ok_or_else(|| Error::new(ErrorCode::Unauthenticated))?;
        if !self.passwords.verify(current, &creds.password_hash).await? {
            self.sign_in_failed(&key, &address, at);
            return Err(Error::new(ErrorCode::WrongPassword).with_field("current_password"));
        }
        if current == new {
            return Err(Error::invalid("new_password", "must differ from the current password"));
        }
        let hash = self.passwords.hash(new).await?;
        let (user, keep, was_required) = (auth.user.id, auth.session.id, auth.user.must_change_password);
        let entry =
            audit_entry(at, Some(user), "auth.password_change", Some(("user", user.to_string())), origin, json!({}));
        // (A sign-in of one's own may have rehashed the same password meanwhile.)
        self.write_while_password_holds(user, current, creds.password_hash, ErrorCode::WrongPassword, |checked| {
            let (hash, entry) = (hash.clone(), entry.clone());
            self.store.write(move |tx| {
                let (hash, entry, checked) = (hash.clone(), entry.clone(), checked.clone());
                Box::pin(async move {
                    // The current password given is still the account's (an admin reset
                    // committed meanwhile is not undone), and this session still exists (a
                    // sign-out or revocation committed meanwhile is not outlived).
                    let wrong = Error::new(ErrorCode::WrongPassword).with_field("current_password");
                    password_unchanged(tx, user, &checked, wrong).await?;
                    if sessions::get(tx, keep).await?.is_none() {
                        return Err(Error::new(ErrorCode::Unauthenticated));
                    }
                    users::set_password(tx, user, &hash, false, at).await?;
                    end_sessions(tx, user, Some(keep), at).await?;
                    if was_required {
                        // `must_change_password` is part of the profile (and of cached sessions).
                        let changed =
                            users::get(tx, user).await?.ok_or_else(|| Error::new(ErrorCode::Unauthenticated))?;
                        crate::emit_user(tx, &changed, false, at).await?;
                    }
                    audit::record(tx, &entry).await
                })
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn logins_normalise_or_name_nobody() {
        assert_eq!(super::normalize_login(" LiLei ").as_deref(), Some("lilei"));
        assert_eq!(super::normalize_login("Li@X.CN").as_deref(), Some("li@x.cn"));
        assert_eq!(super::normalize_login("ｌｉ＠ｘ.cn").as_deref(), Some("li@x.cn"), "typed full-width");
        assert_eq!(super::normalize_login("李雷"), None);
    }
}
