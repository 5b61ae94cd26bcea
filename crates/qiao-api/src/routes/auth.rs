//! Signing in and out.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use qiao_domain::session::{Session, SessionKind};
use qiao_domain::user::User;
use qiao_service::auth::{SignIn, SignedIn};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{AnyAuth, ClientOrigin, JsonBody, cookie_names};
use crate::routes::setup::default_mode;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// Username or e-mail address.
    pub login: String,
    pub password: String,
    /// A label for this device in the sessions list (default: from the User-Agent).
    #[serde(default)]
    pub device_name: Option<String>,
    /// `cookie` (browsers, the default: sets an HttpOnly session cookie and a CSRF cookie)
    /// or `bearer` (API clients: the token is returned once in the body).
    #[serde(default = "default_mode")]
    pub mode: SessionKind,
}

/// A new session.
#[derive(Serialize, ToSchema)]
pub struct SignInResponse {
    pub user: User,
    pub session: Session,
    /// Bearer mode only: the session token. Shown once; send it as `Authorization: Bearer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Cookie mode only: echo this in the `X-CSRF-Token` header of every request that
    /// changes state (it is also in the `qiao_csrf` cookie).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

fn cookie_header(
    state: &AppState,
    name: &str,
    value: &str,
    max_age: i64,
    http_only: bool,
    same_site: &str,
) -> Option<HeaderValue> {
    let secure = if state.config.cookie_secure { "; Secure" } else { "" };
    let http_only = if http_only { "; HttpOnly" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age}; SameSite={same_site}{http_only}{secure}"
    ))
    .ok()
}

/// The response for a fresh session: cookies for browsers, the token for API clients.
pub(crate) fn signed_in_response(state: &AppState, s: SignedIn) -> Response {
    let cookie_mode = s.session.kind == SessionKind::Cookie;
    let max_age = (s.session.expires_at - s.session.created_at) / 1000;
    let body = SignInResponse {
        token: (!cookie_mode).then(|| s.token.clone()),
        csrf_token: cookie_mode.then(|| s.csrf_token.clone()),
        user: s.user,
        session: s.session,
    };
    let mut res = axum::Json(body).into_response();
    if cookie_mode {
        let headers = res.headers_mut();
        for c in [
            cookie_header(state, cookie_names(state.config.cookie_secure).0, &s.token, max_age, true, "Lax"),
            cookie_header(state, cookie_names(state.config.cookie_secure).1, &s.csrf_token, max_age, false, "Strict"),
        ]
        .into_iter()
        .flatten()
        {
            headers.append(header::SET_COOKIE, c);
        }
    }
    res
}

/// Sign in.
///
/// Failed attempts are limited per account and per address; past the limit the answer is
/// `429 rate_limited` with `Retry-After`.
#[utoipa::path(post, path = "/api/v1/auth/sign-in", tag = "auth", security(()),
    request_body = SignInRequest,
    responses(
        (status = 200, body = SignInResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "invalid_credentials"),
        (status = 403, body = ErrorBody, description = "account_disabled"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "rate_limited")))]
pub async fn sign_in(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(req): JsonBody<SignInRequest>,
) -> ApiResult<Response> {
    let signed_in = state
        .services
        .sign_in(
            SignIn { login: req.login, password: req.password, device_name: req.device_name, kind: req.mode },
            &origin,
        )
        .await?;
    Ok(signed_in_response(&state, signed_in))
}

/// Sign out (end this session).
#[utoipa::path(post, path = "/api/v1/auth/sign-out", tag = "auth",
    responses((status = 204, description = "Signed out; cookies cleared"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "csrf_mismatch")))]
pub async fn sign_out(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    AnyAuth(auth): AnyAuth,
) -> ApiResult<Response> {
    state.services.sign_out(&auth, &origin).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    for c in [
        cookie_header(&state, cookie_names(state.config.cookie_secure).0, "", 0, true, "Lax"),
        cookie_header(&state, cookie_names(state.config.cookie_secure).1, "", 0, false, "Strict"),
    ]
    .into_iter()
    .flatten()
    {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(res)
}
