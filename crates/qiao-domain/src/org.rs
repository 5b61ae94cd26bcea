//! The organisation and its department tree.

use serde::{Deserialize, Serialize};

use crate::{DepartmentId, Millis, Result, text};

/// The one organisation this deployment serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Org {
    pub name: String,
    /// The top of the department tree; every department descends from it.
    pub root_department_id: DepartmentId,
    /// False until the first owner has been created.
    pub setup_complete: bool,
    pub created_at: Millis,
}

/// A node of the department tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Department {
    pub id: DepartmentId,
    /// `None` only for the root department.
    pub parent_id: Option<DepartmentId>,
    pub name: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

pub const DEPARTMENT_NAME_MAX: usize = 64;
pub const ORG_NAME_MAX: usize = 64;
/// Deepest allowed nesting; keeps recursive queries and UI trees sane.
pub const DEPARTMENT_DEPTH_MAX: usize = 32;

pub fn validate_department_name(input: &str) -> Result<String> {
    text::single_line("name", input, 1, DEPARTMENT_NAME_MAX)
}

pub fn validate_org_name(input: &str) -> Result<String> {
    text::single_line("name", input, 1, ORG_NAME_MAX)
}

/// Whether moving `dept` under `new_parent` keeps the tree a tree. `new_parent_path` is the
/// chain of ids from the root down to `new_parent`, inclusive.
pub fn move_creates_cycle(dept: DepartmentId, new_parent_path: &[DepartmentId]) -> bool {
    new_parent_path.contains(&dept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_detected_from_the_parent_path() {
        let (root, a, b) = (DepartmentId::new(), DepartmentId::new(), DepartmentId::new());
        // b is a child of a: moving a under b would create a cycle.
        assert!(move_creates_cycle(a, &[root, a, b]));
        assert!(move_creates_cycle(a, &[root, a]));
        assert!(!move_creates_cycle(b, &[root, a]));
    }

    #[test]
    fn names() {
        assert_eq!(validate_department_name(" 上海分公司 ").unwrap(), "上海分公司");
        assert!(validate_department_name("").is_err());
    }
}
