//! Conversations: creating channels, DMs and group DMs; listing and browsing; settings,
//! archiving; joining, leaving, inviting and removing; member roles; linked departments.

use std::collections::BTreeSet;

use qiao_domain::conversation::{
    self, Conversation, ConversationKind, GROUP_MAX, INVITE_BATCH_MAX, LINKED_DEPARTMENTS_MAX, LinkedDepartment,
    Member, MemberRole, MyState,
};
use qiao_domain::event::EventData;
use qiao_domain::perm::{self, Actor, ConversationFacts, MemberFacts};
use qiao_domain::user::UserStatus;
use qiao_domain::{ConversationId, Error, ErrorCode, Result, UserId};
use qiao_store::conversations::{BrowseQuery, NewConversation};
use qiao_store::members::new_member;
use qiao_store::{Db, Tx, audit, conversations, departments, members, users};
use serde_json::json;

use crate::access_cache::Facts;
use crate::auth::Authenticated;
use crate::membership::{delete_member, emit, emit_added, emit_removed, emit_updated, keeps_an_admin, sync_linked};
use crate::users::{Page, page_limit};
use crate::{Origin, Services, audit_entry, now};

/// A conversation and, when the caller is in it, their state there.
#[derive(Clone, Debug)]
pub struct ConversationView {
    pub conversation: Conversation,
    pub me: Option<MyState>,
}

/// A new channel.
#[derive(Clone, Debug, Default)]
pub struct CreateChannel {
    pub kind: Option<ConversationKind>,
    pub name: String,
    pub topic: Option<String>,
    pub description: Option<String>,
    pub member_ids: Vec<UserId>,
    /// Project and announcement channels only.
    pub departments: Vec<LinkedDepartment>,
}

/// Changes to a conversation's settings; `None` leaves a field.
#[derive(Clone, Debug, Default)]
pub struct ConversationPatch {
    pub name: Option<String>,
    pub topic: Option<String>,
    pub description: Option<String>,
}

/// What a caller may do in a conversation, and what the rules were told.
#[derive(Clone, Debug)]
pub(crate) struct Access {
    pub id: ConversationId,
    pub facts: ConversationFacts,
    pub member: Option<Member>,
}

/// Why a member may not write in an archived conversation.
pub(crate) const ARCHIVED: &str = "This conversation is archived: nothing can be written or changed in it.";

impl Access {
    /// The error for an action the rules refused: forbidden for those who may see the
    /// conversation, not-found for those who may not know it exists.
    pub(crate) fn deny(&self, actor: &Actor, message: &'static str) -> Error {
        if !perm::can_see(actor, &self.facts) {
            return Error::not_found();
        }
        // A member refused because the conversation is archived is told so, not sent to
        // join it or to its admins.
        if self.facts.archived && self.member.is_some() {
            return Error::forbidden().with_message(ARCHIVED);
        }
        Error::forbidden().with_message(message)
    }
}

/// Inside a write: the caller may still do what `allowed` says with the conversation as the
/// transaction reads it, and is still who they were authorised as (an organisation admin
/// demoted meanwhile no longer manages public channels). The check before the write only
/// refuses early: an archive, a removal or a role change committed meanwhile must stop the
/// write (`deny`'s error).
async fn still_allowed(
    tx: &mut Tx,
    actor: &Actor,
    id: ConversationId,
    allowed: fn(&Actor, &ConversationFacts) -> bool,
    message: &'static str,
) -> Result<Access> {
    crate::users::actor_unchanged(tx, actor).await?;
    allowed_now(tx, actor, id, allowed, message).await
}

/// [`still_allowed`] for a caller already checked to be unchanged.
async fn allowed_now(
    tx: &mut Tx,
    actor: &Actor,
    id: ConversationId,
    allowed: fn(&Actor, &ConversationFacts) -> bool,
    message: &'static str,
) -> Result<Access> {
    let a = crate::messages::access_now(tx, actor, id).await?;
    if allowed(actor, &a.facts) { Ok(a) } else { Err(a.deny(actor, message)) }
}

/// Inside a write: the department rules of [`check_links`] again, on the caller's role and
/// departments as the transaction reads them (`caller` is brought up to date).
async fn links_allowed_now(
    tx: &mut Tx,
    caller: &mut Authenticated,
    links: &[LinkedDepartment],
    before: &[LinkedDepartment],
) -> Result<()> {
    caller.user = crate::users::actor_unchanged(tx, &caller.actor).await?;
    check_links(tx, caller, links, before).await
}

/// Inside a write: `user` is a member who is there only directly (not through a linked
/// department, which may have been linked meanwhile), so removing them keeps the rule that
/// a department's people are in the channels it feeds.
async fn only_direct(tx: &mut Tx, id: ConversationId, user: UserId) -> Result<()> {
    match members::get(tx, id, user).await? {
        Some((m, _)) if m.via_department => {
            Err(Error::forbidden().with_message("This person is in the channel through their department."))
        }
        _ => Ok(()),
    }
}

pub(crate) fn access_from(actor: &Actor, id: ConversationId, (kind, archived_at, member): Facts) -> Result<Access> {
    let facts = ConversationFacts {
        kind,
        archived: archived_at.is_some(),
        member: member.as_ref().map(|m| MemberFacts {
            role: m.role,
            direct: m.direct,
            via_department: m.via_department,
        }),
    };
    if !perm::can_see(actor, &facts) {
        return Err(Error::not_found());
    }
    Ok(Access { id, facts, member })
}

impl Services {
    /// Spends one of the person's repeatable writes on creating or changing conversations
    /// and their members; organisation admins, who set the organisation's channels up in
    /// bulk, have no such budget.
    fn charge_conversation_change(&self, actor: &Actor) -> Result<()> {
        if actor.role.is_org_admin() { Ok(()) } else { self.action_rate.check(actor.user_id) }
    }

    /// Loads what the rules need (from the cache when it can); a conversation the actor may
    /// not see is `not_found`.
    pub(crate) async fn access(&self, db: &mut dyn Db, actor: &Actor, id: ConversationId) -> Result<Access> {
        if let Some(facts) = self.access.get(id, actor.user_id) {
            return access_from(actor, id, facts);
        }
        let epoch = self.access.epoch();
        let facts = conversations::facts(db, id, actor.user_id).await?.ok_or_else(Error::not_found)?;
        self.access.put(id, actor.user_id, facts.clone(), epoch);
        access_from(actor, id, facts)
    }

    /// Like [`Services::access`], taking a read connection only when the cache misses.
    pub(crate) async fn access_cached(&self, actor: &Actor, id: ConversationId) -> Result<Access> {
        match self.access.get(id, actor.user_id) {
            Some(facts) => access_from(actor, id, facts),
            None => self.access(&mut self.store.reader().await?, actor, id).await,
        }
    }
}

/// Active accounts among `ids` (all must exist and be active).
async fn active_people(db: &mut dyn Db, ids: &[UserId], field: &'static str) -> Result<Vec<qiao_domain::user::User>> {
    let unique: Vec<UserId> = ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    let found = users::get_many(db, &unique).await?;
    if found.len() != unique.len() || found.iter().any(|u| u.status != UserStatus::Active) {
        return Err(Error::invalid(field, "every person must be an existing, active account"));
    }
    Ok(found)
}

/// Checks the departments a channel is to link, `before` being those it links now: each
/// must exist, and each link that brings more people in (a new department, or its
/// subdepartments added) must be the caller's to make ([`perm::can_link_department`]).
async fn check_links(
    db: &mut dyn Db,
    auth: &Authenticated,
    links: &[LinkedDepartment],
    before: &[LinkedDepartment],
) -> Result<()> {
    if links.len() > LINKED_DEPARTMENTS_MAX {
        return Err(Error::invalid("departments", format!("at most {LINKED_DEPARTMENTS_MAX} departments")));
    }
    let mut seen = BTreeSet::new();
    if !links.iter().all(|l| seen.insert(l.department_id)) {
        return Err(Error::invalid("departments", "list each department once"));
    }
    let own: Vec<_> = auth.user.department_ids().collect();
    let missing = || Error::invalid("departments", "no such department");
    for l in links {
        let kept = before
            .iter()
            .any(|b| b.department_id == l.department_id && (b.include_subdepartments || !l.include_subdepartments));
        if kept {
            departments::get(db, l.department_id).await?.ok_or_else(missing)?;
            continue;
        }
        // A link added or widened: its department's path (empty when there is none) decides.
        let path = departments::path(db, l.department_id).await?;
        if path.is_empty() {
            return Err(missing());
        }
        if !perm::can_link_department(&auth.actor, &path, &own, l.include_subdepartments) {
            return Err(Error::forbidden().with_field("departments").with_message(
                "You may link your own department (without its subdepartments, and not the top one) \
                 or those you administer.",
            ));
        }
    }
    Ok(())
}

/// Refuses adding `new` people to a group DM of `current` members past its cap.
fn group_fits(current: i64, new: usize) -> Result<()> {
    if usize::try_from(current).unwrap_or(0) + new > GROUP_MAX {
        return Err(Error::invalid("user_ids", format!("a group DM holds at most {GROUP_MAX} people")));
    }
    Ok(())
}

fn with_state(conversation: Conversation, me: Option<MyState>) -> ConversationView {
    ConversationView { conversation, me }
}

impl Services {
    async fn view(&self, db: &mut dyn Db, id: ConversationId, user: UserId) -> Result<ConversationView> {
        let conversation = conversations::get(db, id).await?.ok_or_else(Error::not_found)?;
        let me = conversations::my_state_in(db, id, user).await?;
        Ok(with_state(conversation, me))
    }

    /// Creates a public, private, announcement or project channel; the creator is its admin.
    pub async fn create_channel(&self, auth: &Authenticated, input: CreateChannel) -> Result<ConversationView> {
        let actor = &auth.actor;
        let kind = input.kind.unwrap_or(ConversationKind::Public);
        if matches!(kind, ConversationKind::Dm | ConversationKind::Group | ConversationKind::Department) {
            return Err(Error::invalid(
                "kind",
                "create DMs and group DMs with their own endpoints; department channels come with their department",
            ));
        }
        if !perm::can_create_channel(actor, kind) {
            return Err(Error::forbidden().with_message("You may not create this kind of channel."));
        }
        let name = conversation::validate_name(&input.name)?;
        let topic = conversation::validate_topic(input.topic.as_deref().unwrap_or(""))?;
        let description = conversation::validate_description(input.description.as_deref().unwrap_or(""))?;
        if input.member_ids.len() > INVITE_BATCH_MAX {
            return Err(Error::invalid("member_ids", format!("at most {INVITE_BATCH_MAX} people at once")));
        }
        self.charge_conversation_change(actor)?;
        if !input.departments.is_empty() && !matches!(kind, ConversationKind::Project | ConversationKind::Announcement)
        {
            return Err(Error::invalid("departments", "only project and announcement channels link departments"));
        }
        let mut r = self.store.reader().await?;
        let others: Vec<UserId> = active_people(&mut r, &input.member_ids, "member_ids")
            .await?
            .into_iter()
            .map(|u| u.id)
            .filter(|u| *u != actor.user_id)
            .collect();
        check_links(&mut r, auth, &input.departments, &[]).await?;
        drop(r);

        let (me, at, id) = (actor.user_id, now(), ConversationId::new());
        let links = input.departments;
        let caller = auth.clone();
        self.store
            .write(move |tx| {
                let (name, topic, description, others, links) =
                    (name.clone(), topic.clone(), description.clone(), others.clone(), links.clone());
                let mut caller = caller.clone();
                Box::pin(async move {
                    if !links.is_empty() {
                        links_allowed_now(tx, &mut caller, &links, &[]).await?;
                    }
                    let n = NewConversation {
                        id,
                        kind,
                        name,
                        topic,
                        description,
                        department_id: None,
                        dm_key: None,
                        created_by: Some(me),
                        at,
                    };
                    conversations::insert(tx, &n).await?;
                    let mut initial = vec![new_member(me, MemberRole::Admin, true, false, at)];
                    initial.extend(others.iter().map(|u| new_member(*u, MemberRole::Member, true, false, at)));
                    for m in &initial {
                        members::insert(tx, id, m, 0).await?;
                    }
                    conversations::set_linked_departments(tx, id, &links).await?;
                    conversations::refresh_member_count(tx, id).await?;
                    let seq = conversations::next_seq(tx, id, None).await?;
                    let conversation = conversations::get(tx, id).await?.ok_or_else(Error::not_found)?;
                    let data = EventData::ConversationCreated { conversation, members: initial };
                    tx.append_event(qiao_domain::event::Audience::Conversation(id), Some(seq), &data, at).await?;
                    sync_linked(tx, id, at).await?;
                    Ok(())
                })
            })
            .await?;
        self.view(&mut self.store.reader().await?, id, me).await
    }

    /// The 1:1 DM with `other`, created on first use. Returns it and whether it is new.
    pub async fn open_dm(&self, auth: &Authenticated, other: UserId) -> Result<(ConversationView, bool)> {
        let me = auth.actor.user_id;
        let key = conversation::dm_key(me, other);
        let mut r = self.store.reader().await?;
        if let Some(id) = conversations::by_dm_key(&mut r, &key).await? {
            return Ok((self.view(&mut r, id, me).await?, false));
        }
        if other != me {
            users::get(&mut r, other)
                .await?
                .filter(|u| u.status == UserStatus::Active)
                .ok_or_else(|| Error::invalid("user_id", "no such active person"))?;
            // Guests may only start DMs with people they already work with.
            if auth.actor.is_guest() && !members::share_a_conversation(&mut r, me, other).await? {
                return Err(Error::invalid("user_id", "no such active person"));
            }
        }
        drop(r);
        // Opening an existing DM is free; starting one is a repeatable write like a channel.
        if !auth.actor.role.is_org_admin() {
            self.action_rate.check(me)?;
        }
        let at = now();
        let id = ConversationId::new();
        let created = self
            .store
            .write(move |tx| {
                let key = key.clone();
                Box::pin(async move {
                    // Someone may have opened it meanwhile.
                    if let Some(existing) = conversations::by_dm_key(tx, &key).await? {
                        return Ok((existing, false));
                    }
                    let n = NewConversation {
                        id,
                        kind: ConversationKind::Dm,
                        name: String::new(),
                        topic: String::new(),
                        description: String::new(),
                        department_id: None,
                        dm_key: Some(key),
                        created_by: Some(me),
                        at,
                    };
                    conversations::insert(tx, &n).await?;
                    let people: BTreeSet<UserId> = [me, other].into_iter().collect();
                    let initial: Vec<Member> =
                        people.iter().map(|u| new_member(*u, MemberRole::Member, true, false, at)).collect();
                    for m in &initial {
                        members::insert(tx, id, m, 0).await?;
                    }
                    conversations::refresh_member_count(tx, id).await?;
                    let seq = conversations::next_seq(tx, id, None).await?;
                    let conversation = conversations::get(tx, id).await?.ok_or_else(Error::not_found)?;
                    let data = EventData::ConversationCreated { conversation, members: initial };
                    tx.append_event(qiao_domain::event::Audience::Conversation(id), Some(seq), &data, at).await?;
                    Ok((id, true))
                })
            })
            .await?;
        Ok((self.view(&mut self.store.reader().await?, created.0, me).await?, created.1))
    }

    /// Creates a group DM of the caller and `people` (3 to 50 people in all).
    pub async fn create_group(
        &self,
        auth: &Authenticated,
        people: Vec<UserId>,
        name: Option<String>,
    ) -> Result<ConversationView> {
        let me = auth.actor.user_id;
        let name = conversation::validate_group_name(name.as_deref().unwrap_or_default())?;
        let mut everyone: BTreeSet<UserId> = people.iter().copied().collect();
        everyone.insert(me);
        if everyone.len() < 3 {
            return Err(Error::invalid("user_ids", "a group DM needs at least two other people; use a DM for one"));
        }
        if everyone.len() > GROUP_MAX || people.len() >= GROUP_MAX {
            return Err(Error::invalid("user_ids", format!("a group DM holds at most {GROUP_MAX} people")));
        }
        if !auth.actor.role.is_org_admin() {
            self.action_rate.check(me)?;
        }
        let mut r = self.store.reader().await?;
        let others: Vec<UserId> = everyone.iter().copied().filter(|u| *u != me).collect();
        active_people(&mut r, &others, "user_ids").await?;
        if auth.actor.is_guest() {
            for o in &others {
                if !members::share_a_conversation(&mut r, me, *o).await? {
                    return Err(Error::invalid("user_ids", "every person must be an existing, active account"));
                }
            }
        }
        drop(r);
        let (at, id) = (now(), ConversationId::new());
        let everyone: Vec<UserId> = everyone.into_iter().collect();
        self.store
            .write(move |tx| {
                let (name, everyone) = (name.clone(), everyone.clone());
                Box::pin(async move {
                    let n = NewConversation {
                        id,
                        kind: ConversationKind::Group,
                        name,
                        topic: String::new(),
                        description: String::new(),
                        department_id: None,
                        dm_key: None,
                        created_by: Some(me),
                        at,
                    };
                    conversations::insert(tx, &n).await?;
                    let initial: Vec<Member> =
                        everyone.iter().map(|u| new_member(*u, MemberRole::Member, true, false, at)).collect();
                    for m in &initial {
                        members::insert(tx, id, m, 0).await?;
                    }
                    conversations::refresh_member_count(tx, id).await?;
                    let seq = conversations::next_seq(tx, id, None).await?;
                    let conversation = conversations::get(tx, id).await?.ok_or_else(Error::not_found)?;
                    let data = EventData::ConversationCreated { conversation, members: initial };
                    tx.append_event(qiao_domain::event::Audience::Conversation(id), Some(seq), &data, at).await
                })
            })
            .await?;
        self.view(&mut self.store.reader().await?, id, me).await
    }

    /// The caller's conversations with unread and mention counts, most recently active first.
    pub async fn my_conversations(&self, auth: &Authenticated) -> Result<Vec<ConversationView>> {
        let list = conversations::list_for_user(&mut self.store.reader().await?, auth.actor.user_id).await?;
        Ok(list.into_iter().map(|(c, me)| with_state(c, Some(me))).collect())
    }

    /// Browses and searches public channels (staff only).
    pub async fn browse_channels(
        &self,
        auth: &Authenticated,
        search: Option<String>,
        include_archived: bool,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<ConversationView>> {
        if auth.actor.is_guest() {
            return Err(Error::forbidden().with_message("Guests cannot browse channels."));
        }
        let limit = page_limit(limit)?;
        let search = crate::users::search_text(search)?;
        let after = cursor
            .filter(|c| !c.is_empty())
            .map(crate::users::decode_name_cursor)
            .transpose()?
            .map(|(n, id)| (n, ConversationId(id)));
        let mut r = self.store.reader().await?;
        let mut found =
            conversations::browse(&mut r, &BrowseQuery { search, include_archived, after, limit: limit + 1 }).await?;
        let next_cursor = if found.len() > limit as usize {
            found.truncate(limit as usize);
            found.last().map(|c| crate::users::encode_name_cursor(&qiao_domain::text::fold(&c.name), c.id.0))
        } else {
            None
        };
        let mut items = Vec::with_capacity(found.len());
        for c in found {
            let me = conversations::my_state_in(&mut r, c.id, auth.actor.user_id).await?;
            items.push(with_state(c, me));
        }
        Ok(Page { items, next_cursor })
    }

    /// One conversation the caller may see.
    pub async fn get_conversation(&self, auth: &Authenticated, id: ConversationId) -> Result<ConversationView> {
        let mut r = self.store.reader().await?;
        self.access(&mut r, &auth.actor, id).await?;
        self.view(&mut r, id, auth.actor.user_id).await
    }

    /// Renames a conversation or changes its topic or description.
    pub async fn update_conversation(
        &self,
        auth: &Authenticated,
        id: ConversationId,
        patch: ConversationPatch,
    ) -> Result<Conversation> {
        let a = self.access(&mut self.store.reader().await?, &auth.actor, id).await?;
        if !perm::can_manage(&auth.actor, &a.facts) {
            return Err(a.deny(&auth.actor, "Only the channel's admins can change it."));
        }
        if patch.name.is_some() && matches!(a.facts.kind, ConversationKind::Department | ConversationKind::Dm) {
            return Err(Error::invalid("name", "this conversation's name cannot be changed here"));
        }
        // A group DM's name follows the rule it was created by: blank clears it.
        let name = match patch.name.as_deref() {
            Some(n) if a.facts.kind == ConversationKind::Group => Some(conversation::validate_group_name(n)?),
            Some(n) => Some(conversation::validate_name(n)?),
            None => None,
        };
        let topic = patch.topic.as_deref().map(conversation::validate_topic).transpose()?;
        let description = patch.description.as_deref().map(conversation::validate_description).transpose()?;
        // Asking for what is so already costs nothing (the write checks again, for races).
        let current = conversations::get(&mut self.store.reader().await?, id).await?.ok_or_else(Error::not_found)?;
        let same = |new: &Option<String>, old: &str| new.as_deref().is_none_or(|n| n == old);
        if same(&name, &current.name) && same(&topic, &current.topic) && same(&description, &current.description) {
            return Ok(current);
        }
        self.charge_conversation_change(&auth.actor)?;
        let at = now();
        self.store
            .write(move |tx| {
                let (name, topic, description) = (name.clone(), topic.clone(), description.clone());
                Box::pin(async move {
                    let mut c = conversations::get(tx, id).await?.ok_or_else(Error::not_found)?;
                    if c.is_archived() {
                        return Err(Error::new(ErrorCode::Conflict).with_message("The conversation is archived."));
                    }
                    let before = c.clone();
                    if let Some(n) = name {
                        c.name = n;
                    }
                    if let Some(t) = topic {
                        c.topic = t;
                    }
                    if let Some(d) = description {
                        c.description = d;
                    }
                    // Nothing to change: no write, and members are not told.
                    if c == before {
                        return Ok(c);
                    }
                    c.updated_at = at;
                    conversations::update(tx, &c).await?;
                    emit_updated(tx, id, at).await
                })
            })
            .await
    }

    /// Archives (`true`) or unarchives a channel.
    pub async fn set_archived(
        &self,
        auth: &Authenticated,
        id: ConversationId,
        archived: bool,
        origin: &Origin,
    ) -> Result<Conversation> {
        let a = self.access(&mut self.store.reader().await?, &auth.actor, id).await?;
        self.charge_conversation_change(&auth.actor)?;
        if !perm::can_archive(&auth.actor, &a.facts) {
            return Err(if perm::can_see(&auth.actor, &a.facts) {
                Error::forbidden().with_message("Only the channel's admins can archive or unarchive it.")
            } else {
                Error::not_found()
            });
        }
        let at = now();
        let action = if archived { "conversation.archive" } else { "conversation.unarchive" };
        let entry = audit_entry(
            at,
            Some(auth.actor.user_id),
            action,
            Some(("conversation", id.to_string())),
            origin,
            json!({}),
        );
        self.store
            .write(move |tx| {
                let entry = entry.clone();
                Box::pin(async move {
                    let mut c = conversations::get(tx, id).await?.ok_or_else(Error::not_found)?;
                    if c.is_archived() == archived {
                        return Ok(c);
                    }
                    if !archived && c.kind == ConversationKind::Department && c.department_id.is_none() {
                        return Err(Error::new(ErrorCode::Conflict).with_message("Its department was deleted."));
                    }
                    c.archived_at = archived.then_some(at);
                    c.updated_at = at;
                    conversations::update(tx, &c).await?;
                    audit::record(tx, &entry).await?;
                    let updated = emit_updated(tx, id, at).await?;
                    if !archived {
                        // People who came into its linked departments while it was archived.
                        sync_linked(tx, id, at).await?;
                        return Ok(conversations::get(tx, id).await?.unwrap_or(updated));
                    }
                    Ok(updated)
                })
            })
            .await
    }

    /// Joins a public channel.
    pub async fn join(&self, auth: &Authenticated, id: ConversationId) -> Result<ConversationView> {
        let me = auth.actor.user_id;
        let a = self.access(&mut self.store.reader().await?, &auth.actor, id).await?;
        self.charge_conversation_change(&auth.actor)?;
        if a.member.is_some() {
            return self.view(&mut self.store.reader().await?, id, me).await;
        }
        if !perm::can_join(&auth.actor, &a.facts) {
            return Err(a.deny(&auth.actor, "This conversation cannot be joined; ask to be invited."));
        }
        let at = now();
        let actor = auth.actor.clone();
        self.store
            .write(move |tx| {
                let actor = actor.clone();
                Box::pin(async move {
                    let c = conversations::get(tx, id).await?.ok_or_else(Error::not_found)?;
                    if members::get(tx, id, me).await?.is_some() {
                        return Ok(());
                    }
                    still_allowed(tx, &actor, id, perm::can_join, "This conversation cannot be joined now.").await?;
                    let m = new_member(me, MemberRole::Member, true, false, at);
                    members::insert(tx, id, &m, c.last_seq).await?;
                    emit_added(tx, id, vec![m], 1, at).await
                })
            })
            .await?;
        self.view(&mut self.store.reader().await?, id, me).await
    }

    /// Leaves a conversation.
    pub async fn leave(&self, auth: &Authenticated, id: ConversationId) -> Result<()> {
        let me = auth.actor.user_id;
        let a = self.access(&mut self.store.reader().await?, &auth.actor, id).await?;
        self.charge_conversation_change(&auth.actor)?;
        if a.member.is_none() {
            return Err(Error::not_found().with_message("You are not in this conversation."));
        }
        if !perm::can_leave(&auth.actor, &a.facts) {
            return Err(Error::forbidden().with_message(if a.facts.kind == ConversationKind::Dm {
                "A DM cannot be left."
            } else {
                "You are in this conversation through your department."
            }));
        }
        let at = now();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    only_direct(tx, id, me).await?;
                    keeps_an_admin(tx, id, me).await?;
                    if delete_member(tx, id, me, at).await? {
                        emit_removed(tx, id, vec![me], at).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Adds people (as members, or with `role` when a channel admin gives one).
    pub async fn add_members(
        &self,
        auth: &Authenticated,
        id: ConversationId,
        people: Vec<UserId>,
        role: Option<MemberRole>,
    ) -> Result<Vec<Member>> {
        let mut r = self.store.reader().await?;
        let a = self.access(&mut r, &auth.actor, id).await?;
        self.charge_conversation_change(&auth.actor)?;
        if !perm::can_invite(&auth.actor, &a.facts) {
            return Err(a.deny(&auth.actor, "You may not add people to this conversation."));
        }
        if people.is_empty() || people.len() > INVITE_BATCH_MAX {
            return Err(Error::invalid("user_ids", format!("add 1 to {INVITE_BATCH_MAX} people at a time")));
        }
        let manage = perm::can_manage(&auth.actor, &a.facts);
        // Only a role given by someone who manages roles changes an existing member's: adding
        // an admin again must not demote them.
        let given = role.filter(|_| manage);
        let role = role.unwrap_or(MemberRole::Member);
        if role != MemberRole::Member && !manage {
            return Err(Error::forbidden().with_message("Only the channel's admins can give roles."));
        }
        if role != MemberRole::Member && a.facts.kind.is_direct() {
            return Err(Error::invalid("role", "DMs and group DMs have no roles"));
        }
        if role == MemberRole::Poster && a.facts.kind != ConversationKind::Announcement {
            return Err(Error::invalid("role", "posters exist only in announcement channels"));
        }
        let people: Vec<UserId> = active_people(&mut r, &people, "user_ids").await?.into_iter().map(|u| u.id).collect();
        // Checked here to refuse early, and again in the write: two additions at once may
        // each fit alone.
        if a.facts.kind == ConversationKind::Group {
            let current = conversations::get(&mut r, id).await?.map_or(0, |c| c.member_count);
            let new = people.len() - members::filter_members(&mut r, id, &people).await?.len();
            group_fits(current, new)?;
        }
        drop(r);
        let at = now();
        let actor = auth.actor.clone();
        self.store
            .write(move |tx| {
                let (people, actor) = (people.clone(), actor.clone());
                Box::pin(async move {
                    let now =
                        still_allowed(tx, &actor, id, perm::can_invite, "You may not add people to this conversation.")
                            .await?;
                    if (given.is_some() || role != MemberRole::Member) && !perm::can_manage(&actor, &now.facts) {
                        return Err(now.deny(&actor, "Only the channel's admins can give roles."));
                    }
                    let c = conversations::get(tx, id).await?.ok_or_else(Error::not_found)?;
                    if c.kind == ConversationKind::Group {
                        // (`member_count` is kept by every write that adds or removes people.)
                        let new = people.len() - members::filter_members(tx, id, &people).await?.len();
                        group_fits(c.member_count, new)?;
                    }
                    let (mut added, mut new) = (Vec::new(), 0);
                    for u in people {
                        match members::get(tx, id, u).await? {
                            Some((m, _)) if m.direct && given.is_none_or(|r| r == m.role) => {}
                            Some((m, _)) => {
                                if given.is_some_and(|r| r != MemberRole::Admin) {
                                    keeps_an_admin(tx, id, u).await?;
                                }
                                let m = Member { direct: true, role: given.unwrap_or(m.role), ..m };
                                members::update(tx, id, &m).await?;
                                added.push(m);
                            }
                            None => {
                                let m = new_member(u, role, true, false, at);
                                // What was said before they came is history, not unread.
                                members::insert(tx, id, &m, c.last_seq).await?;
                                added.push(m);
                                new += 1;
                            }
                        }
                    }
                    emit_added(tx, id, added.clone(), new, at).await?;
                    Ok(added)
                })
            })
            .await
    }

    /// Removes someone (for oneself, see [`Services::leave`]).
    pub async fn remove_member(
        &self,
        auth: &Authenticated,
        id: ConversationId,
        user: UserId,
        origin: &Origin,
    ) -> Result<()> {
        if user == auth.actor.user_id {
            return self.leave(auth, id).await;
        }
        let mut r = self.store.reader().await?;
        let a = self.access(&mut r, &auth.actor, id).await?;
        self.charge_conversation_change(&auth.actor)?;
        if !perm::can_remove_member(&auth.actor, &a.facts) {
            return Err(a.deny(&auth.actor, "Only the channel's admins can remove people."));
        }
        let (target, _) =
            members::get(&mut r, id, user).await?.ok_or_else(|| Error::not_found().with_message("Not a member."))?;
        if target.via_department {
            return Err(Error::forbidden().with_message("This person is in the channel through their department."));
        }
        drop(r);
        let at = now();
        let entry = audit_entry(
            at,
            Some(auth.actor.user_id),
            "conversation.remove_member",
            Some(("conversation", id.to_string())),
            origin,
            json!({ "user_id": user }),
        );
        let actor = auth.actor.clone();
        self.store
            .write(move |tx| {
                let (entry, actor) = (entry.clone(), actor.clone());
                Box::pin(async move {
                    still_allowed(
                        tx,
                        &actor,
                        id,
                        perm::can_remove_member,
                        "Only the channel's admins can remove people.",
                    )
                    .await?;
                    only_direct(tx, id, user).await?;
                    keeps_an_admin(tx, id, user).await?;
                    if delete_member(tx, id, user, at).await? {
                        emit_removed(tx, id, vec![user], at).await?;
                        audit::record(tx, &entry).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Makes someone a channel admin, a poster (announcement channels) or a plain member.
    pub async fn set_member_role(
        &self,
        auth: &Authenticated,
        id: ConversationId,
        user: UserId,
        role: MemberRole,
    ) -> Result<Member> {
        let mut r = self.store.reader().await?;
        let a = self.access(&mut r, &auth.actor, id).await?;
        self.charge_conversation_change(&auth.actor)?;
        if !perm::can_manage(&auth.actor, &a.facts) || a.facts.kind.is_direct() {
            return Err(a.deny(&auth.actor, "Only the channel's admins can change roles."));
        }
        if role == MemberRole::Poster && a.facts.kind != ConversationKind::Announcement {
            return Err(Error::invalid("role", "posters exist only in announcement channels"));
        }
        members::get(&mut r, id, user).await?.ok_or_else(|| Error::not_found().with_message("Not a member."))?;
        drop(r);
        let at = now();
        let actor = auth.actor.clone();
        self.store
            .write(move |tx| {
                let actor = actor.clone();
                Box::pin(async move {
                    still_allowed(tx, &actor, id, perm::can_manage, "Only the channel's admins can change roles.")
                        .await?;
                    let (m, _) = members::get(tx, id, user).await?.ok_or_else(Error::not_found)?;
                    if role != MemberRole::Admin {
                        keeps_an_admin(tx, id, user).await?;
                    }
                    let m = Member { role, ..m };
                    members::update(tx, id, &m).await?;
                    emit(tx, id, &EventData::MemberUpdated { conversation_id: id, member: m.clone() }, at).await?;
                    Ok(m)
                })
            })
            .await
    }

    /// Members of a conversation the caller may read, by user id.
    pub async fn list_members(
        &self,
        auth: &Authenticated,
        id: ConversationId,
        after: Option<UserId>,
        limit: Option<u32>,
    ) -> Result<Page<Member>> {
        let limit = page_limit(limit)?;
        let mut r = self.store.reader().await?;
        self.access(&mut r, &auth.actor, id).await?;
        let mut items = members::list(&mut r, id, after, limit + 1).await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|m| m.user_id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Replaces the departments whose people belong to a project or announcement channel.
    pub async fn set_linked_departments(
        &self,
        auth: &Authenticated,
        id: ConversationId,
        links: Vec<LinkedDepartment>,
    ) -> Result<Conversation> {
        let mut r = self.store.reader().await?;
        let a = self.access(&mut r, &auth.actor, id).await?;
        self.charge_conversation_change(&auth.actor)?;
        if !perm::can_manage(&auth.actor, &a.facts) {
            return Err(a.deny(&auth.actor, "Only the channel's admins can change its departments."));
        }
        if !matches!(a.facts.kind, ConversationKind::Project | ConversationKind::Announcement) {
            return Err(Error::invalid("departments", "only project and announcement channels link departments"));
        }
        let before = conversations::get(&mut r, id).await?.map(|c| c.linked_departments).unwrap_or_default();
        check_links(&mut r, auth, &links, &before).await?;
        drop(r);
        let at = now();
        let caller = auth.clone();
        self.store
            .write(move |tx| {
                let (links, mut caller) = (links.clone(), caller.clone());
                Box::pin(async move {
                    let before = conversations::get(tx, id).await?.ok_or_else(Error::not_found)?.linked_departments;
                    // (Checks that the caller is unchanged, and so stands for still_allowed's.)
                    links_allowed_now(tx, &mut caller, &links, &before).await?;
                    let message = "Only the channel's admins can change its departments.";
                    allowed_now(tx, &caller.actor, id, perm::can_manage, message).await?;
                    conversations::set_linked_departments(tx, id, &links).await?;
                    sync_linked(tx, id, at).await?;
                    emit_updated(tx, id, at).await
                })
            })
            .await
    }
}
