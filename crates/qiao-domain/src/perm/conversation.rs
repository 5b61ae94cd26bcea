//! Conversation rules: who may see, read, join, post, react, pin, invite, remove, manage,
//! archive, and mention everyone, for each kind of conversation and each role.
//!
//! Rules that refuse a non-member of a conversation they cannot see must be answered like a
//! conversation that does not exist (the service returns `not_found`), so a private channel's
//! existence never leaks.

use super::Actor;
use crate::conversation::{ConversationKind as Kind, MemberRole};

/// What the rules need to know about one conversation and the actor's place in it.
#[derive(Clone, Copy, Debug)]
pub struct ConversationFacts {
    pub kind: Kind,
    pub archived: bool,
    /// The actor's membership, if any.
    pub member: Option<MemberFacts>,
}

#[derive(Clone, Copy, Debug)]
pub struct MemberFacts {
    pub role: MemberRole,
    pub direct: bool,
    pub via_department: bool,
}

impl ConversationFacts {
    fn role(&self) -> Option<MemberRole> {
        self.member.map(|m| m.role)
    }

    fn is_channel_admin(&self) -> bool {
        self.role() == Some(MemberRole::Admin)
    }

    fn is_member(&self) -> bool {
        self.member.is_some()
    }
}

/// Whether the actor may know the conversation exists.
pub fn can_see(actor: &Actor, c: &ConversationFacts) -> bool {
    c.is_member() || (c.kind == Kind::Public && !actor.is_guest())
}

/// Reading history: members, and staff previewing a public channel.
pub fn can_read(actor: &Actor, c: &ConversationFacts) -> bool {
    can_see(actor, c)
}

/// Joining without an invitation: staff, public channels, not archived.
pub fn can_join(actor: &Actor, c: &ConversationFacts) -> bool {
    c.kind == Kind::Public && !actor.is_guest() && !c.archived && !c.is_member()
}

/// Posting a message.
pub fn can_post(_actor: &Actor, c: &ConversationFacts) -> bool {
    if c.archived || !c.is_member() {
        return false;
    }
    match c.kind {
        Kind::Announcement => matches!(c.role(), Some(MemberRole::Admin | MemberRole::Poster)),
        _ => true,
    }
}

/// Adding or removing one's own reaction. Everyone in an announcement channel may react.
pub fn can_react(_actor: &Actor, c: &ConversationFacts) -> bool {
    !c.archived && c.is_member()
}

/// Pinning and unpinning messages.
pub fn can_pin(_actor: &Actor, c: &ConversationFacts) -> bool {
    if c.archived || !c.is_member() {
        return false;
    }
    match c.kind {
        Kind::Announcement => matches!(c.role(), Some(MemberRole::Admin | MemberRole::Poster)),
        _ => true,
    }
}

/// Adding people.
pub fn can_invite(actor: &Actor, c: &ConversationFacts) -> bool {
    if c.archived || actor.is_guest() {
        return false;
    }
    match c.kind {
        Kind::Dm | Kind::Department => false,
        Kind::Group => c.is_member(),
        Kind::Public | Kind::Private | Kind::Project => {
            c.is_member() || (actor.is_org_admin() && c.kind != Kind::Private)
        }
        Kind::Announcement => c.is_channel_admin() || actor.is_org_admin(),
    }
}

/// Removing someone else.
pub fn can_remove_member(actor: &Actor, c: &ConversationFacts) -> bool {
    !c.kind.is_direct() && !c.archived && administers(actor, c)
}

/// Leaving. People who are members through a department stay while that holds; a 1:1 DM
/// cannot be left (only hidden by clients).
pub fn can_leave(_actor: &Actor, c: &ConversationFacts) -> bool {
    match c.member {
        Some(m) => c.kind != Kind::Dm && m.direct && !m.via_department,
        None => false,
    }
}

/// Renaming, changing topic and description, setting member roles and linked departments.
/// Group DMs may be renamed by anyone in them.
pub fn can_manage(actor: &Actor, c: &ConversationFacts) -> bool {
    if c.archived {
        return false;
    }
    match c.kind {
        Kind::Dm => false,
        Kind::Group => c.is_member(),
        _ => administers(actor, c),
    }
}

/// A channel's admin, or an organisation admin who may see it. Never a guest, even one given
/// a channel's admin role (or demoted to guest while holding it): managing a channel links
/// departments and removes people, which would reach beyond what a guest may see.
fn administers(actor: &Actor, c: &ConversationFacts) -> bool {
    !actor.is_guest() && (c.is_channel_admin() || (actor.is_org_admin() && can_see(actor, c)))
}

/// Archiving and unarchiving (channels only).
pub fn can_archive(actor: &Actor, c: &ConversationFacts) -> bool {
    match c.kind {
        Kind::Dm | Kind::Group => false,
        Kind::Department => actor.is_org_admin(),
        _ => administers(actor, c),
    }
}

/// Linking a department (`path`: root first, the department last) to a channel, with its
/// subdepartments or not: its people come in and may not leave, so those who administer it
/// (organisation admins, a department admin over it) may; its own people (`own`: the actor's
/// departments) may link it alone — not the departments below theirs, and not the root,
/// whose people are the whole organisation where departments are not set up; never guests.
pub fn can_link_department(
    actor: &Actor,
    path: &[crate::DepartmentId],
    own: &[crate::DepartmentId],
    include_subdepartments: bool,
) -> bool {
    if actor.is_guest() {
        return false;
    }
    if actor.manages(path) {
        return true;
    }
    !include_subdepartments && path.len() > 1 && path.last().is_some_and(|d| own.contains(d))
}

/// Mentioning everyone (`@channel`): channel admins and organisation admins; anyone in a
/// DM or group DM; never guests.
pub fn can_mention_everyone(actor: &Actor, c: &ConversationFacts) -> bool {
    if actor.is_guest() {
        return false;
    }
    c.kind.is_direct() || c.is_channel_admin() || actor.is_org_admin()
}

/// People in a conversation whom anyone but a guest may reach with department mentions in
/// one message: as many as one may name one by one. Beyond it a department mention is as loud
/// as `@channel` and follows its rule.
pub const DEPARTMENT_MENTION_OPEN_REACH: usize = crate::message::MENTIONS_MAX;

/// Mentioning departments (`<@&id>`) that reach `reach` people in the conversation: never
/// guests, who do not see the organisation; up to [`DEPARTMENT_MENTION_OPEN_REACH`] people
/// anyone else; more only for those who may mention everyone. Refused mentions stay plain
/// text, as `@channel` does.
pub fn can_mention_departments(actor: &Actor, c: &ConversationFacts, reach: usize) -> bool {
    if actor.is_guest() {
        return false;
    }
    reach <= DEPARTMENT_MENTION_OPEN_REACH || can_mention_everyone(actor, c)
}

/// Creating a channel of `kind` (DMs and group DMs have their own rules; department
/// channels are created with their department).
pub fn can_create_channel(actor: &Actor, kind: Kind) -> bool {
    match kind {
        Kind::Public | Kind::Private | Kind::Project => !actor.is_guest(),
        Kind::Announcement => actor.is_org_admin() || actor.role == crate::user::Role::DepartmentAdmin,
        Kind::Dm | Kind::Group | Kind::Department => false,
    }
}

/// Editing a message: its author only, while they may still post there (in an announcement
/// channel, a poster set back to member may not rewrite what they announced).
pub fn can_edit_message(actor: &Actor, c: &ConversationFacts, sender: crate::UserId) -> bool {
    actor.user_id == sender && can_post(actor, c)
}

/// Deleting a message: its author, a channel admin, or an organisation admin.
pub fn can_delete_message(actor: &Actor, c: &ConversationFacts, sender: crate::UserId) -> bool {
    if c.archived {
        return false;
    }
    (c.is_member() && actor.user_id == sender) || (!c.kind.is_direct() && administers(actor, c))
}

/// Reading a file: those who may read its conversation, once a message carries it; before
/// that (uploaded, not yet sent) only its uploader.
pub fn can_read_file(actor: &Actor, c: &ConversationFacts, uploader: crate::UserId, sent: bool) -> bool {
    can_read(actor, c) && (sent || actor.user_id == uploader)
}

/// Deleting a file: as for deleting a message — its uploader, a channel admin, or an
/// organisation admin who can see the conversation.
pub fn can_delete_file(actor: &Actor, c: &ConversationFacts, uploader: crate::UserId) -> bool {
    can_delete_message(actor, c, uploader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserId;
    use crate::user::Role;

    fn actor(role: Role) -> Actor {
        Actor { user_id: UserId::new(), role, managed_department_ids: vec![] }
    }

    fn facts(kind: Kind, member: Option<MemberRole>) -> ConversationFacts {
        ConversationFacts {
            kind,
            archived: false,
            member: member.map(|role| MemberFacts { role, direct: true, via_department: false }),
        }
    }

    #[test]
    fn departments_are_linked_by_their_people_or_their_admins() {
        use crate::DepartmentId;
        let (root, eng, backend, sales) =
            (DepartmentId::new(), DepartmentId::new(), DepartmentId::new(), DepartmentId::new());
        let backend_path = [root, eng, backend];
        let member = actor(Role::Member);
        assert!(perm_link(&member, &backend_path, &[backend], false), "one's own department");
        assert!(!perm_link(&member, &backend_path, &[backend], true), "not the ones below it");
        assert!(!perm_link(&member, &[root, eng], &[backend], false), "not the one above it");
        assert!(!perm_link(&member, &[root, sales], &[backend], false));
        assert!(!perm_link(&member, &[root], &[root], false), "not the root: the whole organisation");
        let eng_admin = Actor { managed_department_ids: vec![eng], ..actor(Role::DepartmentAdmin) };
        assert!(perm_link(&eng_admin, &backend_path, &[], true), "inside the subtree administered");
        assert!(perm_link(&eng_admin, &[root, eng], &[], true));
        assert!(!perm_link(&eng_admin, &[root, sales], &[], false));
        assert!(!perm_link(&eng_admin, &[root], &[root], false));
        assert!(perm_link(&actor(Role::Admin), &[root], &[], true), "organisation admins: any");
        assert!(!perm_link(&actor(Role::Guest), &backend_path, &[backend], false), "never guests");
    }

    fn perm_link(a: &Actor, path: &[crate::DepartmentId], own: &[crate::DepartmentId], sub: bool) -> bool {
        can_link_department(a, path, own, sub)
    }

    const M: Option<MemberRole> = Some(MemberRole::Member);
    const ADMIN: Option<MemberRole> = Some(MemberRole::Admin);
    const POSTER: Option<MemberRole> = Some(MemberRole::Poster);

    #[test]
    fn visibility_by_kind_and_role() {
        let member = actor(Role::Member);
        let guest = actor(Role::Guest);
        let owner = actor(Role::Owner);
        for kind in Kind::ALL {
            // Members always see their conversations.
            assert!(can_see(&guest, &facts(kind, M)), "{kind:?}");
            let outside = facts(kind, None);
            assert_eq!(can_see(&member, &outside), kind == Kind::Public, "{kind:?}");
            assert!(!can_see(&guest, &outside), "guests see only what they are in: {kind:?}");
            // Organisation admins do not see into private conversations either.
            assert_eq!(can_see(&owner, &outside), kind == Kind::Public, "{kind:?}");
        }
        assert!(can_join(&member, &facts(Kind::Public, None)));
        assert!(!can_join(&guest, &facts(Kind::Public, None)));
        assert!(!can_join(&member, &facts(Kind::Private, None)));
        let mut archived = facts(Kind::Public, None);
        archived.archived = true;
        assert!(!can_join(&member, &archived));
    }

    #[test]
    fn posting_and_reacting() {
        let a = actor(Role::Member);
        assert!(can_post(&a, &facts(Kind::Public, M)));
        assert!(!can_post(&a, &facts(Kind::Public, None)), "join first");
        assert!(!can_post(&a, &facts(Kind::Announcement, M)));
        assert!(can_post(&a, &facts(Kind::Announcement, POSTER)));
        assert!(can_post(&a, &facts(Kind::Announcement, ADMIN)));
        assert!(can_react(&a, &facts(Kind::Announcement, M)), "everyone may react to announcements");
        assert!(can_post(&actor(Role::Guest), &facts(Kind::Private, M)), "invited guests take part");
        let mut closed = facts(Kind::Public, ADMIN);
        closed.archived = true;
        assert!(!can_post(&a, &closed));
        assert!(!can_react(&a, &closed));
        assert!(!can_pin(&a, &closed));
        assert!(!can_pin(&a, &facts(Kind::Announcement, M)));
        assert!(can_pin(&a, &facts(Kind::Dm, M)));
    }

    #[test]
    fn inviting_removing_leaving() {
        let member = actor(Role::Member);
        let guest = actor(Role::Guest);
        let admin = actor(Role::Admin);
        assert!(can_invite(&member, &facts(Kind::Private, M)));
        assert!(!can_invite(&guest, &facts(Kind::Private, M)), "guests cannot bring in others");
        assert!(!can_invite(&member, &facts(Kind::Dm, M)));
        assert!(!can_invite(&member, &facts(Kind::Department, M)));
        assert!(can_invite(&member, &facts(Kind::Group, M)));
        assert!(!can_invite(&member, &facts(Kind::Announcement, M)));
        assert!(can_invite(&member, &facts(Kind::Announcement, ADMIN)));
        assert!(can_invite(&admin, &facts(Kind::Public, None)));
        assert!(!can_invite(&admin, &facts(Kind::Private, None)));

        assert!(!can_remove_member(&member, &facts(Kind::Public, M)));
        assert!(can_remove_member(&member, &facts(Kind::Public, ADMIN)));
        assert!(can_remove_member(&admin, &facts(Kind::Public, None)));
        assert!(!can_remove_member(&admin, &facts(Kind::Private, None)));
        assert!(!can_remove_member(&member, &facts(Kind::Group, ADMIN)));
        // A guest holding a channel's admin role still does not manage it.
        for kind in [Kind::Private, Kind::Project, Kind::Announcement] {
            assert!(!can_remove_member(&guest, &facts(kind, ADMIN)), "{kind:?}");
            assert!(!can_manage(&guest, &facts(kind, ADMIN)), "{kind:?}");
            assert!(!can_archive(&guest, &facts(kind, ADMIN)), "{kind:?}");
        }
        assert!(can_manage(&guest, &facts(Kind::Group, M)), "a group DM is anyone's to rename");
        let someone = actor(Role::Member).user_id;
        assert!(!can_delete_message(&guest, &facts(Kind::Private, ADMIN), someone), "nor moderate");
        assert!(can_delete_message(&member, &facts(Kind::Private, ADMIN), someone));

        assert!(can_leave(&member, &facts(Kind::Private, M)));
        assert!(!can_leave(&member, &facts(Kind::Dm, M)));
        assert!(can_leave(&member, &facts(Kind::Group, M)));
        let via_dept = ConversationFacts {
            kind: Kind::Department,
            archived: false,
            member: Some(MemberFacts { role: MemberRole::Member, direct: false, via_department: true }),
        };
        assert!(!can_leave(&member, &via_dept));
    }

    #[test]
    fn managing_archiving_mentioning() {
        let member = actor(Role::Member);
        let owner = actor(Role::Owner);
        let guest = actor(Role::Guest);
        assert!(!can_manage(&member, &facts(Kind::Public, M)));
        assert!(can_manage(&member, &facts(Kind::Public, ADMIN)));
        assert!(can_manage(&member, &facts(Kind::Group, M)));
        assert!(!can_manage(&member, &facts(Kind::Dm, M)));
        assert!(can_manage(&owner, &facts(Kind::Public, None)));
        assert!(!can_archive(&member, &facts(Kind::Dm, ADMIN)));
        assert!(!can_archive(&member, &facts(Kind::Department, ADMIN)));
        assert!(can_archive(&owner, &facts(Kind::Department, M)));
        assert!(can_archive(&member, &facts(Kind::Project, ADMIN)));

        assert!(!can_mention_everyone(&member, &facts(Kind::Public, M)));
        assert!(can_mention_everyone(&member, &facts(Kind::Public, ADMIN)));
        assert!(can_mention_everyone(&member, &facts(Kind::Group, M)));
        assert!(can_mention_everyone(&owner, &facts(Kind::Public, M)));
        assert!(!can_mention_everyone(&guest, &facts(Kind::Group, ADMIN)));
        let open = DEPARTMENT_MENTION_OPEN_REACH;
        assert!(can_mention_departments(&member, &facts(Kind::Public, M), open));
        assert!(!can_mention_departments(&member, &facts(Kind::Public, M), open + 1));
        assert!(can_mention_departments(&member, &facts(Kind::Public, ADMIN), open + 1));
        assert!(can_mention_departments(&owner, &facts(Kind::Public, M), 5_000));
        assert!(!can_mention_departments(&guest, &facts(Kind::Group, ADMIN), 0));
    }

    #[test]
    fn creating_and_message_authorship() {
        let member = actor(Role::Member);
        let guest = actor(Role::Guest);
        assert!(can_create_channel(&member, Kind::Private));
        assert!(!can_create_channel(&guest, Kind::Public));
        assert!(!can_create_channel(&member, Kind::Announcement));
        assert!(can_create_channel(&actor(Role::DepartmentAdmin), Kind::Announcement));
        assert!(!can_create_channel(&actor(Role::Owner), Kind::Department));

        let c = facts(Kind::Public, M);
        assert!(can_edit_message(&member, &c, member.user_id));
        assert!(!can_edit_message(&member, &c, UserId::new()));
        let announcement = |role| facts(Kind::Announcement, role);
        assert!(can_edit_message(&member, &announcement(POSTER), member.user_id));
        assert!(!can_edit_message(&member, &announcement(M), member.user_id), "a poster set back to member");
        assert!(can_delete_message(&member, &c, member.user_id));
        assert!(!can_delete_message(&member, &c, UserId::new()));
        assert!(can_delete_message(&member, &facts(Kind::Public, ADMIN), UserId::new()));
        assert!(!can_delete_message(&member, &facts(Kind::Dm, ADMIN), UserId::new()), "no moderators in DMs");
    }

    #[test]
    fn files_follow_their_conversation() {
        let member = actor(Role::Member);
        let other = actor(Role::Member);
        let guest = actor(Role::Guest);
        let open = facts(Kind::Private, Some(MemberRole::Member));
        let outside = facts(Kind::Private, None);
        assert!(can_read_file(&member, &open, other.user_id, true));
        assert!(!can_read_file(&member, &open, other.user_id, false), "unsent uploads are the uploader's");
        assert!(can_read_file(&member, &open, member.user_id, false));
        assert!(!can_read_file(&member, &outside, member.user_id, true), "after leaving, no access");
        assert!(can_read_file(&guest, &open, other.user_id, true));
        assert!(can_delete_file(&member, &open, member.user_id));
        assert!(!can_delete_file(&member, &open, other.user_id));
        assert!(can_delete_file(&other, &facts(Kind::Private, Some(MemberRole::Admin)), member.user_id));
    }
}
