//! The caller's own account: profile, password, sessions.

use axum::extract::State;
use axum::http::StatusCode;
use qiao_domain::SessionId;
use qiao_domain::message::Draft;
use qiao_domain::session::{Session, SessionKind};
use qiao_domain::user::User;
use qiao_service::users::ProfilePatch;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{AnyAuth, Auth, ClientOrigin, JsonBody, Path};

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub org_name: String,
    pub session_id: SessionId,
    /// Cookie sessions: the CSRF token to echo in `X-CSRF-Token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfile {
    #[serde(default)]
    pub display_name: Option<String>,
    /// Job title; empty clears it.
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub items: Vec<Session>,
}

#[derive(Serialize, ToSchema)]
pub struct DraftList {
    pub items: Vec<Draft>,
}

#[derive(Serialize, ToSchema)]
pub struct RevokedCount {
    pub revoked: usize,
}

/// Who am I.
///
/// Also answers when the password must be changed first (`user.must_change_password`).
#[utoipa::path(get, path = "/api/v1/me", tag = "me",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, AnyAuth(auth): AnyAuth) -> ApiResult<axum::Json<Me>> {
    let org = state.services.org().await?;
    let csrf_token = (auth.session.kind == SessionKind::Cookie).then(|| auth.session.csrf_token.clone());
    Ok(axum::Json(Me { session_id: auth.session.id, user: auth.user, org_name: org.name, csrf_token }))
}

/// Edit my display name or title.
#[utoipa::path(patch, path = "/api/v1/me", tag = "me", request_body = UpdateProfile,
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Auth(auth): Auth,
    JsonBody(req): JsonBody<UpdateProfile>,
) -> ApiResult<axum::Json<User>> {
    let patch = ProfilePatch { display_name: req.display_name, title: req.title };
    Ok(axum::Json(state.services.update_profile(&auth, patch, &origin).await?))
}

/// Change my password.
///
/// Ends my other sessions. Wrong current passwords count towards the sign-in lockout.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", request_body = ChangePassword,
    responses((status = 204, description = "Changed"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "wrong_password, csrf_mismatch"), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    AnyAuth(auth): AnyAuth,
    JsonBody(req): JsonBody<ChangePassword>,
) -> ApiResult<StatusCode> {
    state.services.change_password(&auth, &req.current_password, &req.new_password, &origin).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// My drafts (unsent text) in the conversations I am in, most recently changed first; at
/// most 1,000, which is as many as anyone may keep.
#[utoipa::path(get, path = "/api/v1/me/drafts", tag = "me",
    responses((status = 200, body = DraftList), (status = 401, body = ErrorBody)))]
pub async fn drafts(State(state): State<AppState>, Auth(auth): Auth) -> ApiResult<axum::Json<DraftList>> {
    Ok(axum::Json(DraftList { items: state.services.drafts(&auth).await? }))
}

/// My sessions (devices), most recently used first.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "me",
    responses((status = 200, body = SessionList), (status = 401, body = ErrorBody)))]
pub async fn sessions(State(state): State<AppState>, Auth(auth): Auth) -> ApiResult<axum::Json<SessionList>> {
    Ok(axum::Json(SessionList { items: state.services.list_sessions(&auth).await? }))
}

/// End one of my sessions.
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "me",
    params(("id" = SessionId, Path, description = "Session id")),
    responses((status = 204, description = "Ended"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Auth(auth): Auth,
    Path(id): Path<SessionId>,
) -> ApiResult<StatusCode> {
    state.services.revoke_session(&auth, id, &origin).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End all my sessions except this one.
#[utoipa::path(post, path = "/api/v1/me/sessions/revoke-others", tag = "me",
    responses((status = 200, body = RevokedCount), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn revoke_others(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Auth(auth): Auth,
) -> ApiResult<axum::Json<RevokedCount>> {
    Ok(axum::Json(RevokedCount { revoked: state.services.revoke_other_sessions(&auth, &origin).await? }))
}
