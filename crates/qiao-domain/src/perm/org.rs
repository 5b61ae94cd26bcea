//! Organisation rules: departments, people, the directory.
//!
//! A department *path* is the chain of department ids from the root down to a department,
//! inclusive. Department admins manage the subtrees rooted at their managed departments, so
//! "actor manages X" is "one of the actor's managed departments is on X's path".

use crate::user::Role;
use crate::{DepartmentId, UserId};

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
    pub role: Role,
    /// Subtree roots a department admin manages (empty for other roles).
    pub managed_department_ids: Vec<DepartmentId>,
}

impl Actor {
    pub fn is_org_admin(&self) -> bool {
        self.role.is_org_admin()
    }

    pub fn is_guest(&self) -> bool {
        self.role.is_guest()
    }

    /// True if the actor administers the department whose path is given.
    pub fn manages(&self, path: &[DepartmentId]) -> bool {
        match self.role {
            Role::Owner | Role::Admin => true,
            Role::DepartmentAdmin => path.iter().any(|d| self.managed_department_ids.contains(d)),
            Role::Member | Role::Guest => false,
        }
    }

    /// True if the actor administers a department strictly above the last one on `path`,
    /// i.e. may restructure that department itself (move or delete it), not only its contents.
    pub fn manages_strictly_above(&self, path: &[DepartmentId]) -> bool {
        match path.split_last() {
            Some((_, above)) => self.is_org_admin() || self.manages(above),
            None => false,
        }
    }
}

/// The person an administrative action is aimed at.
#[derive(Clone, Debug)]
pub struct TargetUser<'a> {
    pub id: UserId,
    pub role: Role,
    pub primary_department_path: &'a [DepartmentId],
}

/// Listing and searching the staff directory. Guests see only people they share
/// conversations with (granted by later rules), not the directory.
pub fn can_browse_directory(actor: &Actor) -> bool {
    !actor.is_guest()
}

/// Renaming the organisation.
pub fn can_edit_org(actor: &Actor) -> bool {
    actor.is_org_admin()
}

/// Creating a department under the one whose path is `parent_path`.
pub fn can_create_department(actor: &Actor, parent_path: &[DepartmentId]) -> bool {
    actor.manages(parent_path)
}

/// Renaming a department.
pub fn can_rename_department(actor: &Actor, path: &[DepartmentId]) -> bool {
    actor.manages(path)
}

/// Moving a department: the actor must manage it from above, and manage the new parent.
pub fn can_move_department(actor: &Actor, path: &[DepartmentId], new_parent_path: &[DepartmentId]) -> bool {
    actor.manages_strictly_above(path) && actor.manages(new_parent_path)
}

/// Deleting a department (which must also be empty).
pub fn can_delete_department(actor: &Actor, path: &[DepartmentId]) -> bool {
    actor.manages_strictly_above(path)
}

/// Administering another person: edit their profile, departments and role, disable,
/// enable, reset their password.
pub fn can_manage_user(actor: &Actor, target: &TargetUser<'_>) -> bool {
    match actor.role {
        Role::Owner => true,
        Role::Admin => target.role != Role::Owner,
        Role::DepartmentAdmin => {
            matches!(target.role, Role::Member | Role::Guest) && actor.manages(target.primary_department_path)
        }
        Role::Member | Role::Guest => false,
    }
}

/// Giving someone `role` (when creating them or changing their role).
pub fn can_assign_role(actor: &Actor, role: Role) -> bool {
    match actor.role {
        Role::Owner => true,
        Role::Admin => role != Role::Owner,
        Role::DepartmentAdmin => matches!(role, Role::Member | Role::Guest),
        Role::Member | Role::Guest => false,
    }
}

/// Putting a person into a department (as primary or secondary), or creating them there.
pub fn can_place_in_department(actor: &Actor, department_path: &[DepartmentId]) -> bool {
    actor.manages(department_path)
}

/// Seeing another person's profile. Staff see everyone; guests see themselves (later rules
/// add the people they share conversations with).
/// Whether the actor sees this person without more ado: staff see everyone, a guest itself
/// (and, checked against the store, the people it shares a conversation with).
pub fn can_view_user(actor: &Actor, target: UserId) -> bool {
    !actor.is_guest() || actor.user_id == target
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tree {
        root: DepartmentId,
        eng: DepartmentId,
        backend: DepartmentId,
        sales: DepartmentId,
    }

    impl Tree {
        fn new() -> Self {
            Tree {
                root: DepartmentId::new(),
                eng: DepartmentId::new(),
                backend: DepartmentId::new(),
                sales: DepartmentId::new(),
            }
        }
        fn eng_path(&self) -> Vec<DepartmentId> {
            vec![self.root, self.eng]
        }
        fn backend_path(&self) -> Vec<DepartmentId> {
            vec![self.root, self.eng, self.backend]
        }
        fn sales_path(&self) -> Vec<DepartmentId> {
            vec![self.root, self.sales]
        }
    }

    fn actor(role: Role, managed: &[DepartmentId]) -> Actor {
        Actor { user_id: UserId::new(), role, managed_department_ids: managed.to_vec() }
    }

    #[test]
    fn org_admins_manage_every_department() {
        let t = Tree::new();
        for role in [Role::Owner, Role::Admin] {
            let a = actor(role, &[]);
            assert!(can_create_department(&a, &[t.root]));
            assert!(can_rename_department(&a, &[t.root]));
            assert!(can_move_department(&a, &t.backend_path(), &t.sales_path()));
            assert!(can_delete_department(&a, &t.eng_path()));
            assert!(can_edit_org(&a));
        }
    }

    #[test]
    fn department_admins_are_scoped_to_their_subtree() {
        let t = Tree::new();
        let a = actor(Role::DepartmentAdmin, &[t.eng]);
        // Inside the subtree.
        assert!(can_create_department(&a, &t.eng_path()));
        assert!(can_create_department(&a, &t.backend_path()));
        assert!(can_rename_department(&a, &t.eng_path()));
        assert!(can_delete_department(&a, &t.backend_path()));
        // Their own anchor can be renamed but not moved or deleted.
        assert!(!can_delete_department(&a, &t.eng_path()));
        assert!(!can_move_department(&a, &t.eng_path(), &t.sales_path()));
        // Outside the subtree.
        assert!(!can_create_department(&a, &[t.root]));
        assert!(!can_create_department(&a, &t.sales_path()));
        assert!(!can_rename_department(&a, &t.sales_path()));
        assert!(!can_move_department(&a, &t.backend_path(), &t.sales_path()));
        assert!(!can_edit_org(&a));
    }

    #[test]
    fn members_and_guests_manage_nothing() {
        let t = Tree::new();
        for role in [Role::Member, Role::Guest] {
            let a = actor(role, &[t.eng]);
            assert!(!can_create_department(&a, &t.eng_path()));
            assert!(!can_rename_department(&a, &t.eng_path()));
            assert!(!can_delete_department(&a, &t.backend_path()));
            let target = TargetUser { id: UserId::new(), role: Role::Member, primary_department_path: &t.eng_path() };
            assert!(!can_manage_user(&a, &target));
            for r in Role::ALL {
                assert!(!can_assign_role(&a, r));
            }
        }
    }

    #[test]
    fn user_management_respects_rank_and_scope() {
        let t = Tree::new();
        let eng = t.eng_path();
        let sales = t.sales_path();
        let backend = t.backend_path();
        let target = |role, path| TargetUser { id: UserId::new(), role, primary_department_path: path };

        let owner = actor(Role::Owner, &[]);
        assert!(can_manage_user(&owner, &target(Role::Owner, &eng)));
        assert!(can_assign_role(&owner, Role::Owner));

        let admin = actor(Role::Admin, &[]);
        assert!(!can_manage_user(&admin, &target(Role::Owner, &eng)));
        assert!(can_manage_user(&admin, &target(Role::Admin, &eng)));
        assert!(!can_assign_role(&admin, Role::Owner));
        assert!(can_assign_role(&admin, Role::DepartmentAdmin));

        let dept_admin = actor(Role::DepartmentAdmin, &[t.eng]);
        assert!(can_manage_user(&dept_admin, &target(Role::Member, &backend)));
        assert!(can_manage_user(&dept_admin, &target(Role::Guest, &eng)));
        assert!(!can_manage_user(&dept_admin, &target(Role::Member, &sales)));
        assert!(!can_manage_user(&dept_admin, &target(Role::DepartmentAdmin, &eng)));
        assert!(!can_manage_user(&dept_admin, &target(Role::Admin, &eng)));
        assert!(can_assign_role(&dept_admin, Role::Member));
        assert!(can_assign_role(&dept_admin, Role::Guest));
        assert!(!can_assign_role(&dept_admin, Role::DepartmentAdmin));
        assert!(can_place_in_department(&dept_admin, &backend));
        assert!(!can_place_in_department(&dept_admin, &sales));
    }

    #[test]
    fn directory_is_for_staff() {
        let guest = actor(Role::Guest, &[]);
        assert!(!can_browse_directory(&guest));
        assert!(can_view_user(&guest, guest.user_id));
        assert!(!can_view_user(&guest, UserId::new()));
        assert!(can_browse_directory(&actor(Role::Member, &[])));
    }
}
