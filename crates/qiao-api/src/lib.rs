//! Qiao's public HTTP API (`/api/v1`), its OpenAPI document, and the operational endpoints.
//!
//! This is the only crate that knows HTTP. Handlers (in `routes`) are thin; request and
//! response types are declared next to them; every failure becomes an [`error::ErrorBody`]
//! through the single status table in [`error::status_of`].

pub mod error;
pub mod extract;
pub mod gateway;
mod limits;
pub mod middleware;
pub mod routes;
mod typescript;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use metrics_exporter_prometheus::PrometheusHandle;
use qiao_service::Services;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::routes::{auth, conversations, departments, files, me, messages, ops, org, search, setup, users};

/// HTTP-level settings.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Largest request body accepted (JSON endpoints).
    pub max_body_bytes: usize,
    /// Mark cookies `Secure` (when Qiao is served over HTTPS).
    pub cookie_secure: bool,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Longest a request may take before it is answered `unavailable`.
    pub request_timeout: Duration,
    pub realtime: gateway::GatewayConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 1024 * 1024,
            cookie_secure: false,
            trust_forwarded_for: false,
            request_timeout: Duration::from_secs(30),
            realtime: gateway::GatewayConfig::default(),
        }
    }
}

/// What every handler can reach. Cloned several times per request (by the router, the
/// middleware and each `State` extractor), so it is one shared pointer.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;
    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

pub struct AppStateInner {
    pub services: Services,
    pub config: Arc<ApiConfig>,
    pub metrics: Option<PrometheusHandle>,
    /// The OpenAPI document, rendered once.
    pub openapi_json: Arc<str>,
    pub gateway: gateway::Gateway,
    /// Set when the server stops waiting for requests still running (see
    /// [`AppState::cut_off_requests`]).
    pub stopping: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    /// Builds the state and starts this node's realtime gateway (call inside the runtime).
    pub fn new(services: Services, config: ApiConfig, metrics: Option<PrometheusHandle>) -> AppState {
        let json = openapi_json();
        let gateway = gateway::Gateway::spawn(&services, config.realtime);
        AppState(Arc::new(AppStateInner {
            services,
            config: Arc::new(config),
            metrics,
            openapi_json: json.into(),
            gateway,
            stopping: tokio::sync::watch::Sender::new(false),
        }))
    }

    /// Answers every request still running `unavailable` and drops it (an upload's body with
    /// it), so that its connection ends: at the end of a shutdown's grace. (axum runs each
    /// connection as a task of its own, which stopping the server does not stop.)
    pub fn cut_off_requests(&self) {
        self.stopping.send_replace(true);
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Qiao API",
        version = "1",
        description = "The public API of Qiao (桥), a self-hosted enterprise messaging platform.\n\n\
            Authenticate with a session cookie (browsers; state-changing requests must echo the \
            CSRF token in `X-CSRF-Token`) or a bearer token (API clients: sign in with \
            `mode: bearer`). Every error has the body `ErrorBody` with a stable `code`."
    ),
    modifiers(&SecuritySchemes),
    components(schemas(
        gateway::protocol::ClientMessage,
        gateway::protocol::ServerMessage,
        qiao_domain::event::EventFrame,
    )),
    security(("bearer" = []), ("cookie" = [])),
    tags(
        (name = "setup", description = "First-run setup"),
        (name = "auth", description = "Signing in and out"),
        (name = "me", description = "The caller's own account and sessions"),
        (name = "users", description = "The directory and people administration"),
        (name = "departments", description = "The department tree"),
        (name = "org", description = "The organisation and its audit log"),
        (name = "conversations", description = "Channels, DMs and group DMs; members; read positions"),
        (name = "messages", description = "Messages, reactions, pins and threads"),
        (name = "realtime", description = "The WebSocket event stream (see docs/realtime.md)"),
        (name = "ops", description = "Health, readiness, metrics"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                extract::SESSION_COOKIE,
                "The browser's session cookie, with the CSRF token in `X-CSRF-Token` for changes. Named \
                 `__Host-qiao_session` (and the CSRF cookie `__Host-qiao_csrf`) when the server's public \
                 URL is https.",
            ))),
        );
    }
}

/// The routes and their OpenAPI description, built together so they cannot drift.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(setup::status, setup::complete))
        .routes(routes!(auth::sign_in))
        .routes(routes!(auth::sign_out))
        .routes(routes!(me::get, me::update))
        .routes(routes!(me::change_password))
        .routes(routes!(me::sessions))
        .routes(routes!(me::drafts))
        .routes(routes!(me::revoke))
        .routes(routes!(me::revoke_others))
        .routes(routes!(org::get, org::update))
        .routes(routes!(org::audit))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::update))
        .routes(routes!(users::disable))
        .routes(routes!(users::enable))
        .routes(routes!(users::reset_password))
        .routes(routes!(departments::list, departments::create))
        .routes(routes!(departments::get, departments::update, departments::delete))
        .routes(routes!(users::department_members))
        .routes(routes!(conversations::list, conversations::create))
        .routes(routes!(conversations::open_dm))
        .routes(routes!(conversations::create_group))
        .routes(routes!(conversations::browse))
        .routes(routes!(conversations::get, conversations::update))
        .routes(routes!(conversations::archive))
        .routes(routes!(conversations::unarchive))
        .routes(routes!(conversations::join))
        .routes(routes!(conversations::leave))
        .routes(routes!(conversations::members, conversations::add_members))
        .routes(routes!(conversations::set_member_role, conversations::remove_member))
        .routes(routes!(conversations::set_departments))
        .routes(routes!(conversations::mark_read))
        .routes(routes!(conversations::save_draft))
        .routes(routes!(conversations::mark_unread))
        .routes(routes!(conversations::pins))
        .routes(routes!(conversations::history, conversations::send))
        .routes(routes!(files::upload, files::library).layer(DefaultBodyLimit::disable()))
        .routes(routes!(files::get, files::delete))
        .routes(routes!(files::content))
        .routes(routes!(files::thumbnail))
        .routes(routes!(search::search))
        .routes(routes!(messages::get, messages::edit, messages::delete))
        .routes(routes!(messages::react))
        .routes(routes!(messages::pin, messages::unpin))
        .routes(routes!(messages::edits))
        .routes(routes!(messages::thread))
        .routes(routes!(messages::thread_read))
        .routes(routes!(messages::follow, messages::unfollow))
        .routes(routes!(messages::followed))
        .routes(routes!(gateway::ws))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi))
}

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api_doc();
    // Every entry matches (a unit test checks it); one that did not would only be missing.
    limits::apply(&mut doc);
    doc
}

/// The document as the routes declare it, before `limits` adds what the checks enforce.
fn api_doc() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

/// The OpenAPI document as pretty JSON (what is served and committed).
pub fn openapi_json() -> String {
    let mut json = openapi().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

/// The web client's TypeScript types for the document's schemas (`web/src/api-types.ts`).
pub fn typescript_types() -> String {
    let doc = serde_json::to_value(openapi()).unwrap_or_default();
    typescript::from_document(&doc)
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let (api, _) = api().split_for_parts();
    api.fallback(web::fallback)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::request_context))
        .with_state(state)
}
