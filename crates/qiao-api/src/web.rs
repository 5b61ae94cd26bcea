//! Pages for browsers. Until the web client is built into the binary, a small built-in page
//! explains where the API is and completes first-run setup from the setup link.

use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::middleware::not_found;

const INDEX: &str = include_str!("../static/index.html");
const SCRIPT: &str = include_str!("../static/placeholder.js");
const STYLE: &str = include_str!("../static/placeholder.css");

const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// Everything no route matched: API paths get a JSON 404, other GETs the page.
pub async fn fallback(method: Method, uri: Uri) -> Result<Response, ApiError> {
    let path = uri.path();
    if path.starts_with("/api/") || path == "/api" || !matches!(method, Method::GET | Method::HEAD) {
        return Err(not_found().await);
    }
    Ok(match path {
        "/_qiao/placeholder.js" => page("text/javascript; charset=utf-8", SCRIPT),
        "/_qiao/placeholder.css" => page("text/css; charset=utf-8", STYLE),
        _ => page("text/html; charset=utf-8", INDEX),
    })
}
