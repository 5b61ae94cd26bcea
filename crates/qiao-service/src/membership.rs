//! Memberships that follow the department tree, and department channels.
//!
//! A conversation linked to departments (every department channel, and project or
//! announcement channels that chose departments) has the active staff of those departments
//! (and, where asked, their subtrees) as members `via_department`. Whenever people or
//! departments change, the affected conversations are brought back in line inside the same
//! transaction, and the changes are announced like any other membership change.

use std::collections::BTreeSet;

use qiao_domain::conversation::{Conversation, ConversationKind, LinkedDepartment, Member, MemberRole};
use qiao_domain::event::{Audience, EventData};
use qiao_domain::org::Department;
use qiao_domain::user::UserStatus;
use qiao_domain::{ConversationId, DepartmentId, Error, Millis, Result, UserId};
use qiao_store::conversations::NewConversation;
use qiao_store::members::new_member;
use qiao_store::{Db, Tx, conversations, departments, members, users};

/// Takes the conversation's next sequence number and records a conversation event with it.
pub(crate) async fn emit(tx: &mut Tx, id: ConversationId, data: &EventData, at: Millis) -> Result<i64> {
    let seq = conversations::next_seq(tx, id, None).await?;
    tx.append_event(Audience::Conversation(id), Some(seq), data, at).await?;
    Ok(seq)
}

/// Announces a conversation's new settings (taking the sequence number first, so the
/// snapshot carries it).
pub(crate) async fn emit_updated(tx: &mut Tx, id: ConversationId, at: Millis) -> Result<Conversation> {
    let seq = conversations::next_seq(tx, id, None).await?;
    let conversation = conversations::get(tx, id).await?.ok_or_else(Error::not_found)?;
    tx.append_event(
        Audience::Conversation(id),
        Some(seq),
        &EventData::ConversationUpdated { conversation: conversation.clone() },
        at,
    )
    .await?;
    Ok(conversation)
}

/// Removes a membership (with the person's drafts and thread follows there, see
/// [`members::delete`]) and tells the person's devices of each thread they no longer follow,
/// as unfollowing one does: they are no longer a member, and these events are their own.
/// The caller announces the removal itself ([`emit_removed`]). True if there was one.
pub(crate) async fn delete_member(tx: &mut Tx, id: ConversationId, user: UserId, at: Millis) -> Result<bool> {
    let Some(unfollowed) = members::delete(tx, id, user).await? else {
        return Ok(false);
    };
    for root_id in unfollowed {
        let data = EventData::ThreadState { conversation_id: id, root_id, following: false, read_seq: 0 };
        tx.append_event(Audience::User(user), None, &data, at).await?;
    }
    Ok(true)
}

/// Channels whose management rests with their own admins: not DMs and group DMs (which have
/// none), nor department and public channels, which organisation admins manage too.
fn needs_an_admin(kind: ConversationKind) -> bool {
    matches!(kind, ConversationKind::Private | ConversationKind::Project | ConversationKind::Announcement)
}

/// Refuses (`last_channel_admin`) a leave, removal or demotion of `user` that would leave a
/// channel with others in it and no admin who can act: nobody could then rename or archive it,
/// remove someone, or add people to a private one (organisation admins manage only the
/// channels they may see). Checked inside the write, so two admins stepping down at once
/// cannot both go. Only for the kinds [`needs_an_admin`] names.
pub(crate) async fn keeps_an_admin(tx: &mut Tx, id: ConversationId, user: UserId) -> Result<()> {
    let Some((member, _)) = members::get(tx, id, user).await? else { return Ok(()) };
    if member.role != MemberRole::Admin {
        return Ok(());
    }
    // Someone who cannot act as an admin (a guest, a disabled account) is not one to keep.
    let acts = users::get(tx, user).await?.is_some_and(|u| u.status == UserStatus::Active && !u.role.is_guest());
    if !acts {
        return Ok(());
    }
    let kind = conversations::get(tx, id).await?.ok_or_else(Error::not_found)?.kind;
    if !needs_an_admin(kind) {
        return Ok(());
    }
    match members::others_and_admins(tx, id, user).await? {
        (others, 0) if others > 0 => Err(Error::new(qiao_domain::ErrorCode::LastChannelAdmin)),
        _ => Ok(()),
    }
}

/// Takes the admin role from `user` everywhere, as they stop being able to act as one
/// (disabled, or made a guest), and hands the channels they administer alone to someone who
/// can: in each of the kinds [`needs_an_admin`] names where no other active staff admin
/// remains and someone else is in it, the longest-standing active staff member becomes an
/// admin (announced as `member.updated`). Without it such a channel could never be managed
/// again.
pub(crate) async fn hand_over_channels(tx: &mut Tx, user: UserId, at: Millis) -> Result<()> {
    for (id, kind) in members::admin_roles(tx, user).await? {
        if needs_an_admin(kind) {
            hand_on(tx, id, user, at).await?;
        }
        // The role itself goes too, in every kind: it would still let a guest post in an
        // announcement channel, show a guest as a public channel's admin, and let a disabled
        // account back in as an admin when enabled.
        if let Some((was, _)) = members::get(tx, id, user).await? {
            let member = Member { role: MemberRole::Member, ..was };
            members::update(tx, id, &member).await?;
            emit(tx, id, &EventData::MemberUpdated { conversation_id: id, member }, at).await?;
        }
    }
    Ok(())
}

/// Makes the longest-standing active staff member of channel `id` other than `user` its
/// admin if no other such admin remains and someone else is in it (announced as
/// `member.updated`).
async fn hand_on(tx: &mut Tx, id: ConversationId, user: UserId, at: Millis) -> Result<()> {
    if members::others_and_admins(tx, id, user).await?.1 == 0
        && let Some(next) = members::successor(tx, id, user).await?
    {
        let member = Member { role: MemberRole::Admin, ..next };
        members::update(tx, id, &member).await?;
        emit(tx, id, &EventData::MemberUpdated { conversation_id: id, member }, at).await?;
    }
    Ok(())
}

/// After a department sync took `gone` out of a channel as its admin (no choice of theirs
/// that [`keeps_an_admin`] could refuse: a link removed, a person moved out), the channel is
/// handed on as when an admin is disabled, if it is of a kind that needs one.
async fn hand_on_after_sync(tx: &mut Tx, conv: &Conversation, gone: &Member, at: Millis) -> Result<()> {
    if gone.role == MemberRole::Admin && needs_an_admin(conv.kind) {
        hand_on(tx, conv.id, gone.user_id, at).await?;
    }
    Ok(())
}

/// Announces people added (or whose membership changed to include them); `new` of them
/// were not members before.
pub(crate) async fn emit_added(
    tx: &mut Tx,
    id: ConversationId,
    added: Vec<Member>,
    new: usize,
    at: Millis,
) -> Result<()> {
    if added.is_empty() {
        return Ok(());
    }
    conversations::adjust_member_count(tx, id, i64::try_from(new).unwrap_or(0)).await?;
    let mut conversation = conversations::get(tx, id).await?.ok_or_else(Error::not_found)?;
    // Large additions (a whole department) go out in slices to keep frames small. Each
    // carries the conversation as of its own sequence number (a newcomer seeds its list from
    // it, and checks that what follows is gap-free).
    for chunk in added.chunks(1000) {
        let seq = conversations::next_seq(tx, id, None).await?;
        conversation.last_seq = seq;
        let data = EventData::MembersAdded { conversation: conversation.clone(), members: chunk.to_vec() };
        tx.append_event(Audience::Conversation(id), Some(seq), &data, at).await?;
    }
    Ok(())
}

/// Announces people removed: to those who remain, and to each person removed.
/// A member through a department who was also added directly stays, now only directly (and
/// so may leave): their devices and the caches of permission checks are told.
async fn stays_direct(tx: &mut Tx, id: ConversationId, m: Member, at: Millis) -> Result<()> {
    let member = Member { via_department: false, ..m };
    members::update(tx, id, &member).await?;
    emit(tx, id, &EventData::MemberUpdated { conversation_id: id, member }, at).await?;
    Ok(())
}

pub(crate) async fn emit_removed(tx: &mut Tx, id: ConversationId, removed: Vec<UserId>, at: Millis) -> Result<()> {
    if removed.is_empty() {
        return Ok(());
    }
    conversations::adjust_member_count(tx, id, -i64::try_from(removed.len()).unwrap_or(0)).await?;
    for chunk in removed.chunks(1000) {
        let data = EventData::MembersRemoved { conversation_id: id, user_ids: chunk.to_vec() };
        emit(tx, id, &data, at).await?;
    }
    for user in removed {
        tx.append_event(Audience::User(user), None, &EventData::ConversationRemoved { conversation_id: id }, at)
            .await?;
    }
    Ok(())
}

/// Every department a set of links covers.
async fn covered(db: &mut dyn Db, links: &[LinkedDepartment]) -> Result<Vec<DepartmentId>> {
    let mut out = BTreeSet::new();
    for l in links {
        if l.include_subdepartments {
            out.extend(departments::subtree(db, l.department_id).await?);
        } else {
            out.insert(l.department_id);
        }
    }
    Ok(out.into_iter().collect())
}

/// Brings a conversation's department-derived members in line with its links.
pub(crate) async fn sync_linked(tx: &mut Tx, id: ConversationId, at: Millis) -> Result<()> {
    let Some(conv) = conversations::get(tx, id).await? else {
        return Ok(());
    };
    let depts = covered(tx, &conv.linked_departments).await?;
    let desired: BTreeSet<UserId> = members::staff_in_departments(tx, &depts).await?.into_iter().collect();
    let current = members::via_department(tx, id).await?;
    let current_ids: BTreeSet<UserId> = current.iter().map(|m| m.user_id).collect();

    let (mut removed, mut admin_gone) = (Vec::new(), None);
    for m in current.into_iter().filter(|m| !desired.contains(&m.user_id)) {
        if m.direct {
            stays_direct(tx, id, m, at).await?;
        } else {
            delete_member(tx, id, m.user_id, at).await?;
            removed.push(m.user_id);
            if m.role == MemberRole::Admin {
                admin_gone = Some(m);
            }
        }
    }
    let (mut added, mut new) = (Vec::new(), 0);
    // An archived channel takes nobody in (its membership may not change); those who lose
    // their department still go. Unarchiving syncs again.
    let joining =
        if conv.archived_at.is_some() { BTreeSet::new() } else { desired.difference(&current_ids).copied().collect() };
    for user in joining {
        match members::get(tx, id, user).await? {
            Some((m, _)) => {
                let m = Member { via_department: true, ..m };
                members::update(tx, id, &m).await?;
                added.push(m);
            }
            None => {
                let m = new_member(user, MemberRole::Member, false, true, at);
                // Newcomers start with the history read, not with thousands of unread.
                members::insert(tx, id, &m, conv.last_seq).await?;
                added.push(m);
                new += 1;
            }
        }
    }
    emit_removed(tx, id, removed, at).await?;
    emit_added(tx, id, added, new, at).await?;
    // Once everyone leaving has gone and everyone joining is in (and announced): not handed
    // to someone about to leave too, and those a new link brings may take it.
    if let Some(gone) = admin_gone {
        hand_on_after_sync(tx, &conv, &gone, at).await?;
    }
    Ok(())
}

/// Every conversation linked to these departments or any department above them.
async fn affected(db: &mut dyn Db, changed: &[DepartmentId]) -> Result<BTreeSet<ConversationId>> {
    let mut all = BTreeSet::new();
    for d in changed {
        all.extend(departments::path(db, *d).await?);
    }
    let all: Vec<DepartmentId> = all.into_iter().collect();
    Ok(conversations::linked_to(db, &all).await?.into_iter().collect())
}

/// Re-syncs conversations whose linked departments cover any of `changed`. For a move,
/// `before` lists the conversations affected before the change (see [`affected_now`]).
pub(crate) async fn sync_for_departments(
    tx: &mut Tx,
    changed: &[DepartmentId],
    before: BTreeSet<ConversationId>,
    at: Millis,
) -> Result<()> {
    let mut targets = affected(tx, changed).await?;
    targets.extend(before);
    for c in targets {
        sync_linked(tx, c, at).await?;
    }
    Ok(())
}

/// Brings one person's department-derived memberships in line after they changed (joined,
/// moved between departments, changed role or status): only the conversations linked to
/// `departments` (their departments before and after) or above them are looked at, and only
/// this person's membership in each. The tree itself did not change.
pub(crate) async fn sync_person(tx: &mut Tx, user: UserId, departments: &[DepartmentId], at: Millis) -> Result<()> {
    let targets = affected(tx, departments).await?;
    if targets.is_empty() {
        return Ok(());
    }
    let person = users::get(tx, user).await?;
    // The paths from the root to each of the person's departments: a link covers the person
    // when its department is on one of them (with subdepartments) or is one of them.
    let mut paths = Vec::new();
    if let Some(p) = person.as_ref().filter(|p| p.status == UserStatus::Active && !p.role.is_guest()) {
        for d in p.department_ids() {
            paths.push(departments::path(tx, d).await?);
        }
    }
    for id in targets {
        let Some(conv) = conversations::get(tx, id).await? else { continue };
        let wanted = conv.linked_departments.iter().any(|l| {
            paths.iter().any(|path| {
                if l.include_subdepartments {
                    path.contains(&l.department_id)
                } else {
                    path.last() == Some(&l.department_id)
                }
            })
        });
        // An archived channel takes nobody in; those who leave its departments still go.
        let open = conv.archived_at.is_none();
        match (members::get(tx, id, user).await?, wanted) {
            (Some((m, _)), true) if open && !m.via_department => {
                let m = Member { via_department: true, ..m };
                members::update(tx, id, &m).await?;
                emit_added(tx, id, vec![m], 0, at).await?;
            }
            (None, true) if open => {
                let m = new_member(user, MemberRole::Member, false, true, at);
                members::insert(tx, id, &m, conv.last_seq).await?;
                emit_added(tx, id, vec![m], 1, at).await?;
            }
            (Some((m, _)), false) if m.via_department && m.direct => {
                stays_direct(tx, id, m, at).await?;
            }
            (Some((m, _)), false) if m.via_department => {
                delete_member(tx, id, user, at).await?;
                hand_on_after_sync(tx, &conv, &m, at).await?;
                emit_removed(tx, id, vec![user], at).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The conversations `changed` departments currently feed (call before moving people or
/// departments, and pass to [`sync_for_departments`] after).
pub(crate) async fn affected_now(tx: &mut Tx, changed: &[DepartmentId]) -> Result<BTreeSet<ConversationId>> {
    affected(tx, changed).await
}

/// Creates a department's channel and fills it.
pub(crate) async fn create_department_channel(tx: &mut Tx, dept: &Department, at: Millis) -> Result<Conversation> {
    let id = ConversationId::new();
    let n = NewConversation {
        id,
        kind: ConversationKind::Department,
        name: dept.name.clone(),
        topic: String::new(),
        description: String::new(),
        department_id: Some(dept.id),
        dm_key: None,
        created_by: None,
        at,
    };
    conversations::insert(tx, &n).await?;
    conversations::set_linked_departments(
        tx,
        id,
        &[LinkedDepartment { department_id: dept.id, include_subdepartments: true }],
    )
    .await?;
    sync_linked(tx, id, at).await?;
    conversations::get(tx, id).await?.ok_or_else(Error::not_found)
}

/// Renames a department's channel to follow the department.
pub(crate) async fn rename_department_channel(tx: &mut Tx, dept: &Department, at: Millis) -> Result<()> {
    let Some(id) = conversations::by_department(tx, dept.id).await? else {
        return Ok(());
    };
    let Some(mut c) = conversations::get(tx, id).await? else {
        return Ok(());
    };
    if c.name != dept.name {
        c.name = dept.name.clone();
        c.updated_at = at;
        conversations::update(tx, &c).await?;
        emit_updated(tx, id, at).await?;
    }
    Ok(())
}

/// Archives a deleted department's channel (its history stays readable by its members).
pub(crate) async fn archive_department_channel(tx: &mut Tx, dept: DepartmentId, at: Millis) -> Result<()> {
    let Some(id) = conversations::by_department(tx, dept).await? else {
        return Ok(());
    };
    let Some(mut c) = conversations::get(tx, id).await? else {
        return Ok(());
    };
    c.archived_at = Some(at);
    c.department_id = None;
    c.updated_at = at;
    conversations::update(tx, &c).await?;
    conversations::set_linked_departments(tx, id, &[]).await?;
    emit_updated(tx, id, at).await?;
    Ok(())
}

/// Gives every department without a channel its channel (at start-up: departments created
/// before channels existed).
pub(crate) async fn ensure_department_channels(tx: &mut Tx, at: Millis) -> Result<usize> {
    let missing = conversations::departments_without_channel(tx).await?;
    for d in &missing {
        if let Some(dept) = departments::get(tx, *d).await? {
            create_department_channel(tx, &dept, at).await?;
        }
    }
    Ok(missing.len())
}
