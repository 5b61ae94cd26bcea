//! The organisation and its audit log.

use axum::extract::State;
use qiao_domain::audit::AuditEntry;
use qiao_domain::org::Org;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, ClientOrigin, JsonBody, Query};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrg {
    pub name: String,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The organisation.
#[utoipa::path(get, path = "/api/v1/org", tag = "org", responses((status = 200, body = Org), (status = 401, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, Auth(_): Auth) -> ApiResult<axum::Json<Org>> {
    Ok(axum::Json(state.services.org().await?))
}

/// Rename the organisation (owners and admins).
#[utoipa::path(patch, path = "/api/v1/org", tag = "org", request_body = UpdateOrg,
    responses((status = 200, body = Org), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Auth(auth): Auth,
    JsonBody(req): JsonBody<UpdateOrg>,
) -> ApiResult<axum::Json<Org>> {
    Ok(axum::Json(state.services.rename_org(&auth, &req.name, &origin).await?))
}

/// The audit log, newest first (owners and admins).
#[utoipa::path(get, path = "/api/v1/audit", tag = "org", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Query(p): Query<AuditParams>,
) -> ApiResult<axum::Json<AuditPage>> {
    let page = state.services.list_audit(&auth, p.cursor.as_deref(), p.limit).await?;
    Ok(axum::Json(AuditPage { items: page.items, next_cursor: page.next_cursor }))
}
