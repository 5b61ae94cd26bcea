//! Pages for browsers: the web client built into the binary (`web/dist`, embedded by
//! `build.rs`), with client-side routes answered by its `index.html`. A binary built without
//! the client serves a small built-in page that explains where the API is and completes
//! first-run setup from the setup link.

use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::middleware::not_found;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

const PLACEHOLDER_INDEX: &str = include_str!("../static/index.html");
const PLACEHOLDER_SCRIPT: &str = include_str!("../static/placeholder.js");
const PLACEHOLDER_STYLE: &str = include_str!("../static/placeholder.css");

const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; worker-src 'self'; manifest-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'self'";

/// Hashed build outputs never change under one name; everything else is revalidated.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn page(content_type: &'static str, cache: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body,
    )
        .into_response()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn asset(path: &str) -> Option<&'static [u8]> {
    embedded::ASSETS.binary_search_by(|(p, _)| (*p).cmp(path)).ok().map(|i| embedded::ASSETS[i].1)
}

/// Whether this binary carries the web client.
pub fn has_client() -> bool {
    asset("/index.html").is_some()
}

/// Everything no route matched: API paths get a JSON 404, other GETs a file of the client
/// or its `index.html` (the client routes by path).
pub async fn fallback(method: Method, uri: Uri) -> Result<Response, ApiError> {
    let path = uri.path();
    if path.starts_with("/api/") || path == "/api" || !matches!(method, Method::GET | Method::HEAD) {
        return Err(not_found().await);
    }
    if let Some(index) = asset("/index.html") {
        if path != "/index.html"
            && let Some(body) = asset(path)
        {
            let cache = if path.starts_with("/assets/") { IMMUTABLE } else { "no-cache" };
            return Ok(page(content_type(path), cache, body));
        }
        // A missing file with an extension is a 404, not the app (so broken links show).
        if path.starts_with("/assets/") {
            return Err(not_found().await);
        }
        return Ok(page("text/html; charset=utf-8", "no-cache", index));
    }
    Ok(match path {
        "/_qiao/placeholder.js" => page("text/javascript; charset=utf-8", "no-cache", PLACEHOLDER_SCRIPT.as_bytes()),
        "/_qiao/placeholder.css" => page("text/css; charset=utf-8", "no-cache", PLACEHOLDER_STYLE.as_bytes()),
        _ => page("text/html; charset=utf-8", "no-cache", PLACEHOLDER_INDEX.as_bytes()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_sorted_for_lookup() {
        assert!(embedded::ASSETS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(content_type("/assets/index-abc.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("/manifest.webmanifest"), "application/manifest+json");
    }
}
