//! The request context every request passes through: request id, tracing span, timeout,
//! metrics, security headers, and the JSON body of every error.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use qiao_domain::{Error, ErrorCode};
use tracing::Instrument;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, PendingError};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id: the client's `x-request-id` when it is a short token, else a new one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| uuid::Uuid::now_v7().simple().to_string(), str::to_owned)
}

/// How long an upload may take.
const UPLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

pub async fn request_context(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&req);
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let span = tracing::debug_span!("request", id = %id, method = %method, route = %route);

    // Uploads stream large bodies: they get longer than other requests.
    let timeout = if method == axum::http::Method::POST && route == "/api/v1/conversations/{id}/files" {
        state.config.request_timeout.max(UPLOAD_TIMEOUT)
    } else {
        state.config.request_timeout
    };
    let mut stopping = state.stopping.subscribe();
    let mut res = tokio::select! {
        ran = tokio::time::timeout(timeout, next.run(req).instrument(span.clone())) => match ran {
            Ok(res) => res,
            Err(_) => {
                ApiError(Error::new(ErrorCode::Unavailable).with_message("The request took too long; retry shortly."))
                    .into_response()
            }
        },
        _ = stopping.wait_for(|stopping| *stopping) => {
            ApiError(Error::new(ErrorCode::Unavailable).with_message("The server is restarting; try again in a moment."))
                .into_response()
        }
    };

    if let Some(err) = res.extensions_mut().remove::<PendingError>() {
        let _enter = span.enter();
        if res.status().is_server_error() {
            tracing::error!(code = %err.code, cause = err.cause.as_deref().unwrap_or(""), "request failed");
        } else {
            tracing::debug!(code = %err.code, message = %err.message, "request refused");
        }
        let body = ErrorBody {
            code: err.code,
            message: err.message,
            field: err.field,
            retry_after: err.retry_after,
            request_id: id.clone(),
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        *res.body_mut() = Body::from(json);
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res.headers_mut().remove(header::CONTENT_LENGTH);
    }

    let headers = res.headers_mut();
    // Room for the headers below at once, rather than growing the map one insert at a time.
    headers.reserve(6);
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID, v);
    }
    headers.entry(header::X_CONTENT_TYPE_OPTIONS).or_insert(HeaderValue::from_static("nosniff"));
    headers.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("no-referrer"));
    headers.entry(header::X_FRAME_OPTIONS).or_insert(HeaderValue::from_static("DENY"));
    // Nothing here is for other sites to embed: a sibling subdomain counts as the same site
    // for the session cookie, and could otherwise probe which files someone may read.
    headers
        .entry(HeaderName::from_static("cross-origin-resource-policy"))
        .or_insert(HeaderValue::from_static("same-origin"));
    if route.starts_with("/api/") {
        headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    }

    let status = res.status().as_u16().to_string();
    let method = method_label(&method);
    metrics::counter!("qiao_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("qiao_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    res
}

/// A method as a metrics label: the standard ones by name, any other as `other` (a client
/// inventing methods must not create a time series per invention).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// For unknown paths.
pub async fn not_found() -> ApiError {
    ApiError(Error::not_found().with_message("No such endpoint."))
}

/// For known paths with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ErrorCode::MethodNotAllowed.into()
}

#[cfg(test)]
mod method_labels {
    #[test]
    fn invented_methods_share_one_label() {
        let m = |s: &str| super::method_label(&s.parse().unwrap());
        assert_eq!((m("GET"), m("DELETE"), m("BREW"), m("PROPFIND")), ("GET", "DELETE", "other", "other"));
    }
}
