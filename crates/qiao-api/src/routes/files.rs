//! Files: upload into a conversation, metadata, bytes (with ranges), thumbnails, the
//! conversation's library, deletion. Bytes are served so a browser never runs them: a
//! download unless it is a previewable image, `nosniff`, and a sandboxing CSP.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use qiao_domain::file::{FileInfo, FileKind, previewable_inline};
use qiao_domain::{ConversationId, Error, ErrorCode, FileId};
use qiao_service::files::{Upload, media_error};
use qiao_store::files::Sort;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Auth, Path, Query};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// The file's name (its path is dropped; at most 200 characters are kept; default "file").
    #[serde(default)]
    pub name: String,
    /// A voice message recorded by the client (its bytes must be audio).
    #[serde(default)]
    pub voice: bool,
    /// Length of a recording in milliseconds, as the recorder measured it.
    pub duration_ms: Option<i64>,
}

/// Upload a file into a conversation. The body is the file's bytes (any `Content-Type`: the
/// type is recognised from the bytes). Send it in a message with `file_ids`; until then only
/// you can see it, and a file not sent within the server's `unsent_upload_expiry_hours`
/// (24 by default) is deleted.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/files", tag = "files",
    params(("id" = ConversationId, Path), UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = FileInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<ConversationId>,
    Query(p): Query<UploadParams>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, axum::Json<FileInfo>)> {
    let declared_len = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let upload = Upload { name: p.name, declared_len, voice: p.voice, duration_ms: p.duration_ms };
    let info = state.services.upload_file(&auth, id, upload, body.into_data_stream()).await?;
    Ok((StatusCode::CREATED, axum::Json(info)))
}

/// A file's details.
#[utoipa::path(get, path = "/api/v1/files/{id}", tag = "files", params(("id" = FileId, Path)),
    responses((status = 200, body = FileInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<FileId>,
) -> ApiResult<axum::Json<FileInfo>> {
    Ok(axum::Json(state.services.file(&auth, id).await?.info))
}

/// Delete a file (its uploader, a channel admin or an administrator). A message carrying it
/// loses it; the bytes are removed once no other file shares them.
#[utoipa::path(delete, path = "/api/v1/files/{id}", tag = "files", params(("id" = FileId, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(State(state): State<AppState>, Auth(auth): Auth, Path(id): Path<FileId>) -> ApiResult<StatusCode> {
    state.services.delete_file(&auth, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A `Range` header that no part of the file satisfies.
#[derive(Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Parses a single `bytes=` range against a file of `size` bytes: `Ok(None)` for no header,
/// or one to ignore (RFC 9110 §14.2: another unit, several ranges, or a malformed one such as
/// `bytes=9-3`, answered with the whole file), `Err` when it is valid but no byte of the file
/// satisfies it.
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(h) = header else { return Ok(None) };
    // The unit is case-insensitive (RFC 9110 §14.1).
    let Some(spec) = h.trim().split_once('=').filter(|(unit, _)| unit.eq_ignore_ascii_case("bytes")).map(|(_, s)| s)
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // several ranges: answer with the whole file
    }
    // Digits only (no sign, no spaces inside), as the grammar says; more than a u64 holds is
    // simply past the end.
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u64>().unwrap_or(u64::MAX))
    };
    let Some((a, b)) = spec.split_once('-') else { return Ok(None) };
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let Some(n) = number(b) else { return Ok(None) };
        if n == 0 {
            return Err(Unsatisfiable);
        }
        if size == 0 {
            return Ok(None); // the last n bytes of nothing: the whole (empty) file
        }
        (size.saturating_sub(n), size.saturating_sub(1))
    } else {
        let Some(start) = number(a) else { return Ok(None) };
        let end = if b.is_empty() {
            u64::MAX
        } else {
            let Some(end) = number(b) else { return Ok(None) };
            if end < start {
                return Ok(None);
            }
            end
        };
        (start, end.min(size.saturating_sub(1)))
    };
    if size == 0 || start >= size {
        return Err(Unsatisfiable);
    }
    Ok(Some((start, end)))
}

fn disposition(info: &FileInfo, inline: bool) -> HeaderValue {
    // RFC 6266/5987: an ASCII fallback plus the UTF-8 name, percent-encoded.
    let ascii: String = info
        .name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let encoded: String = info
        .name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    HeaderValue::from_str(&format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// The bytes behind a URL never change (until the file is deleted), but whether the caller
/// may still read them does (they leave, the message is deleted): a browser keeps them and
/// asks each time whether they still hold (`If-None-Match`), a cheap 304 that is
/// permission-checked like the first read.
const CACHE: &str = "private, no-cache";

fn if_none_match(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok())
}

/// Whether an `If-None-Match` value names `etag` (a list, weak forms, or `*`).
fn etag_matches(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

async fn serve_blob(
    state: &AppState,
    hash: &str,
    content_type: &str,
    disposition: HeaderValue,
    range_header: Option<&str>,
    if_none_match: Option<&str>,
) -> ApiResult<Response> {
    let etag = format!("\"{hash}\"");
    // The bytes behind an ETag never change: a browser holding them needs only "still good"
    // (asked after the access check, so a lost permission still answers 404).
    if if_none_match.is_some_and(|v| etag_matches(v, &etag)) {
        let mut res = StatusCode::NOT_MODIFIED.into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE));
        h.insert(header::ETAG, HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")));
        return Ok(res);
    }
    let blobs = state.services.blobs();
    let size = blobs.size(hash).await.map_err(media_error)?;
    let range = match parse_range(range_header, size) {
        Ok(range) => range,
        Err(Unsatisfiable) => {
            let mut res = ApiError(
                Error::new(ErrorCode::RangeNotSatisfiable).with_message(format!("The file has {size} bytes.")),
            )
            .into_response();
            // RFC 9110 §15.5.17: say the current length.
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(res);
        }
    };
    let (status, start, end) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e),
        None => (StatusCode::OK, 0, size.saturating_sub(1)),
    };
    let len = if size == 0 { 0 } else { end - start + 1 };
    let body = if len == 0 {
        Body::empty()
    } else {
        let stream = blobs.read(hash, Some(start..end + 1)).await.map_err(media_error)?;
        Body::from_stream(stream.map_err(std::io::Error::other))
    };
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_DISPOSITION, disposition);
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE));
    h.insert(header::ETAG, HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")).unwrap());
    }
    Ok(res)
}

/// A file's bytes. Supports a single `Range: bytes=…` for seeking in audio and video and for
/// resuming downloads.
#[utoipa::path(get, path = "/api/v1/files/{id}/content", tag = "files", params(("id" = FileId, Path)),
    responses((status = 200, description = "The bytes, with the file's own type", content_type = "*/*"),
        (status = 206, description = "The requested range", content_type = "*/*"),
        (status = 304, description = "Not modified: the `If-None-Match` ETag is current"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 416, body = ErrorBody)))]
pub async fn content(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<FileId>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let f = state.services.file(&auth, id).await?;
    let inline = previewable_inline(&f.info.mime) || matches!(f.info.kind, FileKind::Audio | FileKind::Video);
    // A range asked for "if the file is still this one" (RFC 9110 §13.1.5) holds only when the
    // validator is the file's ETag, compared strongly; otherwise the whole file is sent.
    let etag = format!("\"{}\"", f.blob_hash);
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| headers.get(header::IF_RANGE).is_none_or(|v| v.as_bytes() == etag.as_bytes()));
    serve_blob(&state, &f.blob_hash, &f.info.mime, disposition(&f.info, inline), range, if_none_match(&headers)).await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ThumbnailParams {
    /// `small` (the default: at most 320 px wide and 960 px tall, or 320 px tall for a wide
    /// image) or `large` (at most 1280 px a side; the small one for images that are not
    /// larger). Both keep the image's proportions up to 3:1; a longer image (a long
    /// screenshot, a panorama) shows its top or left part, three times as long as wide.
    #[param(inline)]
    pub size: Option<ThumbnailSize>,
}

#[derive(Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ThumbnailSize {
    Small,
    Large,
}

/// An image's thumbnail (JPEG, or PNG when it has transparency).
#[utoipa::path(get, path = "/api/v1/files/{id}/thumbnail", tag = "files",
    params(("id" = FileId, Path), ThumbnailParams),
    responses((status = 200, description = "The thumbnail", content_type = "image/*"),
        (status = 304, description = "Not modified: the `If-None-Match` ETag is current"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn thumbnail(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<FileId>,
    Query(p): Query<ThumbnailParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let large = matches!(p.size, Some(ThumbnailSize::Large));
    let f = state.services.file(&auth, id).await?;
    let hash = if large { f.preview_hash.clone().or(f.thumb_hash.clone()) } else { f.thumb_hash.clone() };
    let hash = hash.ok_or_else(Error::not_found)?;
    let blobs = state.services.blobs();
    // Thumbnails are JPEG or PNG; which one is in their first bytes.
    let mut head = Vec::new();
    let mut s = std::pin::pin!(blobs.read(&hash, Some(0..8)).await.map_err(media_error)?);
    while let Some(c) = futures_util::StreamExt::next(&mut s).await {
        head.extend_from_slice(&c.map_err(media_error)?);
    }
    let mime = qiao_media::sniff(&head).mime;
    // (A thumbnail is served whole: a range asked for it is ignored.)
    serve_blob(&state, &hash, mime, HeaderValue::from_static("inline"), None, if_none_match(&headers)).await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LibraryParams {
    /// `image`, `audio`, `video`, `document` or `other`.
    #[param(inline)]
    pub kind: Option<FileKind>,
    /// `date` (newest first, the default), `name` or `size` (largest first).
    #[param(inline)]
    pub sort: Option<LibrarySort>,
    /// From a previous page's `next_cursor` (the id of its last file).
    pub cursor: Option<FileId>,
    /// 1–200, default 50.
    pub limit: Option<u32>,
}

/// How the file library is ordered.
#[derive(Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LibrarySort {
    Date,
    Name,
    Size,
}

impl From<LibrarySort> for Sort {
    fn from(s: LibrarySort) -> Sort {
        match s {
            LibrarySort::Date => Sort::Date,
            LibrarySort::Name => Sort::Name,
            LibrarySort::Size => Sort::Size,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct FilePage {
    pub items: Vec<FileInfo>,
    pub next_cursor: Option<String>,
}

/// The files shared in a conversation.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/files", tag = "files",
    params(("id" = ConversationId, Path), LibraryParams),
    responses((status = 200, body = FilePage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn library(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<ConversationId>,
    Query(p): Query<LibraryParams>,
) -> ApiResult<axum::Json<FilePage>> {
    let sort = p.sort.map_or(Sort::Date, Sort::from);
    let limit = i64::from(p.limit.unwrap_or(50));
    if !(1..=200).contains(&limit) {
        let e = Error::new(ErrorCode::InvalidParameter).with_field("limit");
        return Err(e.with_message("limit must be between 1 and 200").into());
    }
    let mut items = state.services.file_library(&auth, id, p.kind, sort, p.cursor, limit + 1).await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = if more { items.last().map(|f| f.id.to_string()) } else { None };
    Ok(axum::Json(FilePage { next_cursor, items }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ok(Some((0, 9))));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=50-500"), 100), Ok(Some((50, 99))));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Err(Unsatisfiable));
        assert_eq!(parse_range(Some("bytes=-0"), 100), Err(Unsatisfiable));
        assert_eq!(parse_range(Some("bytes=0-0"), 0), Err(Unsatisfiable));
        assert_eq!(parse_range(Some("bytes=-5"), 0), Ok(None));
        // Malformed: ignored, the whole file is sent.
        assert_eq!(parse_range(Some("bytes=9-3"), 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=abc"), 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=+5-"), 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=5"), 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(parse_range(Some("items=0-1"), 100), Ok(None));
        // The unit in any case; numbers past what a u64 holds are past the end.
        assert_eq!(parse_range(Some("BYTES=0-4"), 100), Ok(Some((0, 4))));
        assert_eq!(parse_range(Some("bytes=0-99999999999999999999999999"), 100), Ok(Some((0, 99))));
        assert_eq!(parse_range(Some("bytes=99999999999999999999999999-"), 100), Err(Unsatisfiable));
        assert_eq!(parse_range(Some("bytes=-99999999999999999999999999"), 100), Ok(Some((0, 99))));
    }
}
