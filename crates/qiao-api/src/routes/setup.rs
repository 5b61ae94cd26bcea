//! First-run setup of the organisation's owner.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use qiao_domain::session::SessionKind;
use qiao_service::setup::OwnerInput;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ClientOrigin, JsonBody};
use crate::routes::auth::{SignInResponse, signed_in_response};

/// Whether the organisation still needs its first owner.
#[derive(Serialize, ToSchema)]
pub struct SetupStatus {
    pub setup_complete: bool,
    pub org_name: String,
}

/// The first owner, created with the one-time token from the setup link.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The token printed by `qiao serve` (the part after `#token=` in the setup link).
    pub token: String,
    /// 2 to 32 characters: letters a-z (case is ignored), digits, `.`, `_`, `-`. `all` and
    /// `channel` are reserved (`@all` and `@channel` mention everyone).
    pub username: String,
    #[serde(default)]
    pub email: Option<String>,
    pub display_name: String,
    pub password: String,
    /// Renames the organisation.
    #[serde(default)]
    pub org_name: Option<String>,
    #[serde(default)]
    pub device_name: Option<String>,
    /// `cookie` (browsers, the default) or `bearer` (API clients: the token is returned).
    #[serde(default = "default_mode")]
    pub mode: SessionKind,
}

pub(crate) fn default_mode() -> SessionKind {
    SessionKind::Cookie
}

/// Setup status.
#[utoipa::path(get, path = "/api/v1/setup", tag = "setup", security(()),
    responses((status = 200, body = SetupStatus)))]
pub async fn status(State(state): State<AppState>) -> ApiResult<axum::Json<SetupStatus>> {
    let org = state.services.org().await?;
    Ok(axum::Json(SetupStatus { setup_complete: org.setup_complete, org_name: org.name }))
}

/// Create the first owner and sign in.
///
/// Works once, with the token from the setup link `qiao serve` prints while the
/// organisation has no owner.
#[utoipa::path(post, path = "/api/v1/setup", tag = "setup", security(()),
    request_body = SetupRequest,
    responses(
        (status = 201, body = SignInResponse, description = "The owner exists and is signed in"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody, description = "invalid_setup_token"),
        (status = 409, body = ErrorBody, description = "setup_already_done, username_taken, email_taken"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn complete(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(req): JsonBody<SetupRequest>,
) -> ApiResult<Response> {
    let input = OwnerInput {
        username: req.username,
        email: req.email,
        display_name: req.display_name,
        password: req.password,
        org_name: req.org_name,
    };
    let signed_in =
        state.services.complete_setup(&req.token, &input, req.mode, req.device_name.as_deref(), &origin).await?;
    let mut res = signed_in_response(&state, signed_in).into_response();
    *res.status_mut() = axum::http::StatusCode::CREATED;
    Ok(res)
}
