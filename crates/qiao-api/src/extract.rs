//! Extractors that turn every kind of bad input into the API's own errors, and the
//! authentication extractors (cookie + CSRF, or bearer token).

use std::net::SocketAddr;

use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use bytes::Bytes;
use qiao_domain::session::SessionKind;
use qiao_domain::{Error, ErrorCode};
use qiao_service::crypto::secrets_equal;
use qiao_service::{Authenticated, Origin};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// The browser session cookie (HttpOnly).
pub const SESSION_COOKIE: &str = "qiao_session";
/// The CSRF cookie (readable by scripts, which echo it in [`CSRF_HEADER`]).
pub const CSRF_COOKIE: &str = "qiao_csrf";

/// The cookies' names as set and read: over https with the `__Host-` prefix, which browsers
/// accept only from this very host (Secure, `Path=/`, no `Domain`), so a sibling subdomain
/// cannot plant its own session or CSRF cookie here (signing the person into another
/// account); the plain names are read only when cookies are not `Secure` (plain http).
pub fn cookie_names(secure: bool) -> (&'static str, &'static str) {
    if secure { ("__Host-qiao_session", "__Host-qiao_csrf") } else { (SESSION_COOKIE, CSRF_COOKIE) }
}
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A JSON body. Not JSON → `unsupported_media_type`/`invalid_json`; wrong shape →
/// `invalid_input` naming the field; too big → `payload_too_large`.
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase())
            .is_some_and(|m| m == "application/json" || (m.starts_with("application/") && m.ends_with("+json")));
        if !is_json {
            return Err(ErrorCode::UnsupportedMediaType.into());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| match rejection {
            BytesRejection::FailedToBufferBody(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError(Error::new(ErrorCode::PayloadTooLarge))
            }
            other => {
                ApiError(Error::new(ErrorCode::InvalidJson).with_message(format!("Could not read the body: {other}")))
            }
        })?;
        // Every request body is an object; serde would otherwise accept `[]` for a struct
        // whose fields all have defaults.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).map_err(|e| {
                ApiError(Error::new(ErrorCode::InvalidJson).with_message(format!("The body is not valid JSON: {e}")))
            })?;
            return Err(ApiError(Error::new(ErrorCode::InvalidInput).with_message("The body must be a JSON object.")));
        }
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses JSON, distinguishing syntax errors from shape errors (with the field's path).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Check the syntax of the whole body first, so a truncated body is reported as such
    // rather than as whatever field error the typed parse meets first.
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(ApiError(
            Error::new(ErrorCode::InvalidJson).with_message(format!("The body is not valid JSON: {e}")),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let (path, inner) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => match de.end() {
            Ok(()) => return Ok(v),
            Err(e) => (String::new(), e),
        },
        Err(e) => (e.path().to_string(), e.into_inner()),
    };
    // The syntax is known to be valid here, so whatever failed is the shape (serde_json
    // reports some shape errors, such as a number where an enum belongs, as syntax).
    let mut err = Error::new(ErrorCode::InvalidInput).with_message(clean_serde_message(&inner));
    if path != "." && !path.is_empty() {
        err = err.with_field(path);
    } else if let Some(f) = missing_field(&inner) {
        err = err.with_field(f);
    }
    Err(ApiError(err))
}

/// serde's message without the " at line 1 column 9" suffix.
fn clean_serde_message(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

fn missing_field(e: &impl std::fmt::Display) -> Option<String> {
    let s = e.to_string();
    let rest = s.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// Path parameters; unparsable ones are `invalid_parameter` (400).
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state).await.map(|axum::extract::Path(v)| Path(v)).map_err(
            |e| {
                ApiError(
                    Error::new(ErrorCode::InvalidParameter)
                        .with_message(format!("Invalid path parameter: {}", e.body_text())),
                )
            },
        )
    }
}

/// An optional integer in a JSON body. JSON Schema counts `1.0` as an integer (the OpenAPI
/// document says `integer`); serde alone would refuse it. Fractions and integers beyond
/// what a double holds exactly are still refused.
pub(crate) fn json_integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::Deserialize;
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    n.as_i64()
        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= EXACT).map(|f| f as i64))
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("invalid value: {n}, expected an integer")))
}

/// Query parameters; bad ones are `invalid_parameter` (400).
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded_from_str(query).map(Query)
    }
}

fn serde_urlencoded_from_str<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let err = Error::new(ErrorCode::InvalidParameter);
        ApiError(if field.is_empty() || field == "." {
            let err = err.with_message(format!("Invalid query parameter: {}", e.inner()));
            match missing_field(e.inner()) {
                Some(missing) => err.with_field(missing),
                None => err,
            }
        } else {
            err.with_message(format!("Invalid query parameter {field}: {}", e.inner())).with_field(field)
        })
    })
}

/// Where the request came from: the peer address (or, behind a trusted proxy, the last
/// `X-Forwarded-For` entry — the one that proxy added; those before it are whatever the
/// client sent) and the User-Agent.
pub struct ClientOrigin(pub Origin);

impl FromRequestParts<AppState> for ClientOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientOrigin(origin_of(parts, state.config.trust_forwarded_for)))
    }
}

pub(crate) fn origin_of(parts: &Parts, trust_forwarded_for: bool) -> Origin {
    let forwarded = trust_forwarded_for
        .then(|| parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()))
        .flatten()
        .and_then(|v| v.rsplit(',').next())
        .and_then(|s| s.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| ip.to_string());
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let user_agent =
        parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(300).collect());
    Origin { ip: forwarded.or(peer).unwrap_or_else(|| "unknown".into()), user_agent }
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The session token and how it came.
fn credentials(parts: &Parts, secure_cookies: bool) -> Option<(&str, SessionKind)> {
    if let Some(auth) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = auth.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then_some((token.trim(), SessionKind::Bearer));
    }
    cookie(parts, cookie_names(secure_cookies).0).map(|t| (t, SessionKind::Cookie))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Authenticated, ApiError> {
    let (token, transport) = credentials(parts, state.config.cookie_secure).ok_or(ErrorCode::Unauthenticated)?;
    if token.is_empty() || token.len() > 200 {
        return Err(ErrorCode::Unauthenticated.into());
    }
    let auth = state.services.authenticate(token).await?;
    // A token works only over the transport it was issued for: a browser's cookie token
    // is never accepted as a bearer token, and vice versa.
    if auth.session.kind != transport {
        return Err(ErrorCode::Unauthenticated.into());
    }
    if transport == SessionKind::Cookie && !is_safe(&parts.method) {
        let sent = parts.headers.get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
        if !secrets_equal(sent, auth.session.csrf_token.as_bytes()) {
            return Err(ErrorCode::CsrfMismatch.into());
        }
    }
    Ok(auth)
}

/// A signed-in caller who is free to use the API (not waiting to change a reset password).
pub struct Auth(pub Authenticated);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let auth = authenticate(parts, state).await?;
        if auth.user.must_change_password {
            return Err(ErrorCode::PasswordChangeRequired.into());
        }
        Ok(Auth(auth))
    }
}

/// A signed-in caller, even one who must change their password first (for the few
/// endpoints that let them do so).
pub struct AnyAuth(pub Authenticated);

impl FromRequestParts<AppState> for AnyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(parts, state).await.map(AnyAuth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn behind_a_trusted_proxy_the_address_it_added_counts() {
        let origin = |forwarded: &str, trusted: bool| {
            let (mut parts, ()) =
                http::Request::builder().header("x-forwarded-for", forwarded).body(()).unwrap().into_parts();
            parts.extensions.insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
            origin_of(&parts, trusted).ip
        };
        // The client may send any list; the proxy appends the address it saw.
        assert_eq!(origin("10.9.9.9, 203.0.113.7", true), "203.0.113.7");
        assert_eq!(origin("203.0.113.7", true), "203.0.113.7");
        assert_eq!(origin("2001:db8::1", true), "2001:db8::1");
        assert_eq!(origin("1.2.3.4, not-an-address", true), "127.0.0.1", "not an address: the peer");
        assert_eq!(origin("203.0.113.7", false), "127.0.0.1", "untrusted: the peer");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        tags: Vec<u32>,
    }

    fn err(body: &str) -> Error {
        parse_json::<Body>(body.as_bytes()).unwrap_err().0
    }

    #[test]
    fn json_errors_are_classified() {
        assert_eq!(err("{\"name\":").code, ErrorCode::InvalidJson);
        assert_eq!(err("{\"unknown\": ").code, ErrorCode::InvalidJson);
        assert_eq!(err("").code, ErrorCode::InvalidJson);
        assert_eq!(err("{} trailing").code, ErrorCode::InvalidJson);
        let e = err("{\"name\": 1, \"tags\": []}");
        assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidInput, Some("name")));
        let e = err("{\"name\": \"x\", \"tags\": [1, \"2\"]}");
        assert_eq!(e.field.as_deref(), Some("tags[1]"));
        let e = err("{\"tags\": []}");
        assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidInput, Some("name")));
        assert!(!e.message.contains("line"));
        assert_eq!(err("{\"name\": \"x\", \"tags\": [], \"extra\": 1}").code, ErrorCode::InvalidInput);
        assert_eq!(err("[]").code, ErrorCode::InvalidInput);
    }

    #[derive(Debug, Deserialize)]
    struct Seq {
        #[serde(default, deserialize_with = "json_integer")]
        seq: Option<i64>,
    }

    #[test]
    fn integers_may_be_written_as_whole_doubles() {
        let seq = |body: &str| parse_json::<Seq>(body.as_bytes()).map(|s| s.seq).map_err(|e| e.0);
        assert_eq!(seq("{\"seq\": 7}").unwrap(), Some(7));
        assert_eq!(seq("{\"seq\": 7.0}").unwrap(), Some(7));
        assert_eq!(seq("{\"seq\": null}").unwrap(), None);
        assert_eq!(seq("{}").unwrap(), None);
        for bad in ["7.5", "1e300", "\"7\"", "true"] {
            let e = seq(&format!("{{\"seq\": {bad}}}")).unwrap_err();
            assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidInput, Some("seq")), "{bad}");
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "lowercase")]
    enum Order {
        Date,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Params {
        limit: Option<u32>,
        order: Option<Order>,
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let q = |s: &str| serde_urlencoded_from_str::<Params>(s).map_err(|e| e.0);
        assert!(q("limit=5&order=date").is_ok());
        assert!(q("").is_ok());
        let e = q("limit=-1").unwrap_err();
        assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidParameter, Some("limit")));
        let e = q("order=size").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("order"));
        assert!(e.message.contains("`date`"), "{}", e.message);
        let e = q("other=1").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameter);
    }
}
