//! The organisation's settings and its audit log.

use qiao_domain::audit::AuditEntry;
use qiao_domain::event::{Audience, EventData};
use qiao_domain::org::{self, Org};
use qiao_domain::{AuditId, Error, Millis, Result, perm};
use qiao_store::{Tx, audit, departments, org as org_store};
use serde_json::json;

use crate::auth::Authenticated;
use crate::users::{Page, page_limit};
use crate::{Origin, Services, audit_entry, now};

impl Services {
    /// Renames the organisation (and its root department, which carries the name).
    pub async fn rename_org(&self, auth: &Authenticated, name: &str, origin: &Origin) -> Result<Org> {
        if !perm::can_edit_org(&auth.actor) {
            return Err(Error::forbidden().with_message("Only administrators can rename the organisation."));
        }
        let name = org::validate_org_name(name)?;
        let at = now();
        let entry = audit_entry(at, Some(auth.actor.user_id), "org.rename", None, origin, json!({ "name": name }));
        self.store
            .write(move |tx| {
                let (name, entry) = (name.clone(), entry.clone());
                Box::pin(async move {
                    let o = rename_everywhere(tx, &name, at).await?;
                    audit::record(tx, &entry).await?;
                    Ok(o)
                })
            })
            .await
    }

    /// The audit log, newest first. Organisation administrators only.
    pub async fn list_audit(
        &self,
        auth: &Authenticated,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<AuditEntry>> {
        if !auth.actor.is_org_admin() {
            return Err(Error::forbidden().with_message("Only administrators can read the audit log."));
        }
        let limit = page_limit(limit)?;
        let before = cursor.filter(|c| !c.is_empty()).map(parse_audit_cursor).transpose()?;
        let mut items = audit::list(&mut self.store.reader().await?, before, limit + 1).await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|e| format!("{}.{}", e.at, e.id))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}

fn parse_audit_cursor(s: &str) -> Result<(Millis, AuditId)> {
    let bad = || {
        Error::new(qiao_domain::ErrorCode::InvalidParameter)
            .with_field("cursor")
            .with_message("The cursor is invalid; start again without it.")
    };
    if s.len() > crate::users::CURSOR_MAX {
        return Err(bad());
    }
    let (at, id) = s.split_once('.').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.parse().map_err(|_| bad())?))
}

/// Renames the organisation, its root department (which carries its name) and the root's
/// channel, and tells everyone.
pub(crate) async fn rename_everywhere(tx: &mut Tx, name: &str, at: Millis) -> Result<Org> {
    let o = org_store::get(tx).await?.ok_or_else(|| Error::internal("the organisation is missing"))?;
    org_store::rename(tx, name).await?;
    if let Some(mut root) = departments::get(tx, o.root_department_id).await? {
        root.name = name.to_owned();
        root.updated_at = at;
        departments::update(tx, &root).await?;
        crate::membership::rename_department_channel(tx, &root, at).await?;
        let data = EventData::DepartmentUpdated { department: root };
        tx.append_event(Audience::Staff, None, &data, at).await?;
    }
    let o = Org { name: name.to_owned(), ..o };
    tx.append_event(Audience::Everyone, None, &EventData::OrgUpdated { org: o.clone() }, at).await?;
    Ok(o)
}
