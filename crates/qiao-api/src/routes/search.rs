//! Search over the messages of the conversations the caller is in.

use axum::extract::State;
use qiao_domain::message::Message;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, Query};

/// The most results one page holds.
pub const LIMIT_MAX: u32 = 100;
/// The deepest a search pages: past it, a narrower query is the way on.
pub const OFFSET_MAX: u32 = 10_000;
/// UTC offsets span -12:00 to +14:00.
const TZ_OFFSET_MAX: i32 = 840;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words and "quoted phrases", in Chinese, English or both, and filters: `from:username`
    /// (or a person's whole name or its pinyin: `from:张伟`, `from:zhangwei`, meaning everyone
    /// of that name; `from:"zhang wei"` for a value with spaces), `in:channel-name`, `has:file`, `before:YYYY-MM-DD`, `after:YYYY-MM-DD`. Every word
    /// must match; when a word written without spaces (季度报告, WiFi密码) is found whole in
    /// fewer than 50 messages, its parts are also matched apart, ranked after the whole; a
    /// quoted phrase matches only in order. At most 200 characters.
    pub q: String,
    /// Results to skip (from a previous page's `next_offset`), at most 10,000.
    pub offset: Option<u32>,
    /// 1–100, default 20.
    pub limit: Option<u32>,
    /// The searcher's offset from UTC in minutes (480 in China), so that `before:` and
    /// `after:` dates are the searcher's days; default 0 (UTC days). At most 840 either way.
    #[param(minimum = -840, maximum = 840)]
    pub tz_offset_minutes: Option<i32>,
}

/// A run of snippet text, highlighted where it matched.
#[derive(Serialize, ToSchema)]
pub struct SnippetPart {
    pub text: String,
    pub highlight: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SearchHit {
    pub message: Message,
    /// The matching part of the text, split into plain and highlighted runs.
    pub snippet: Vec<SnippetPart>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchPage {
    pub items: Vec<SearchHit>,
    /// Messages matching in all.
    pub total: u64,
    pub next_offset: Option<u32>,
}

/// Search messages: only conversations you may read at the moment of the query (those you
/// are in and, unless you are a guest, public channels); ranked by relevance with a boost for
/// recent messages.
#[utoipa::path(get, path = "/api/v1/search", tag = "search", params(SearchParams),
    responses((status = 200, body = SearchPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Query(p): Query<SearchParams>,
) -> ApiResult<axum::Json<SearchPage>> {
    let offset = p.offset.unwrap_or(0);
    if offset > OFFSET_MAX {
        return Err(qiao_domain::Error::new(qiao_domain::ErrorCode::InvalidParameter)
            .with_message(format!(
                "offset is at most {OFFSET_MAX}: narrow the search (from:, in:, before:) to see more"
            ))
            .with_field("offset")
            .into());
    }
    let limit = p.limit.unwrap_or(20);
    if !(1..=LIMIT_MAX).contains(&limit) {
        return Err(qiao_domain::Error::new(qiao_domain::ErrorCode::InvalidParameter)
            .with_message(format!("limit must be between 1 and {LIMIT_MAX}"))
            .with_field("limit")
            .into());
    }
    let tz = p.tz_offset_minutes.unwrap_or(0);
    if !(-TZ_OFFSET_MAX..=TZ_OFFSET_MAX).contains(&tz) {
        return Err(qiao_domain::Error::new(qiao_domain::ErrorCode::InvalidParameter)
            .with_message(format!("tz_offset_minutes must be between -{TZ_OFFSET_MAX} and {TZ_OFFSET_MAX}"))
            .with_field("tz_offset_minutes")
            .into());
    }
    let r = state.services.search_messages(&auth, &p.q, offset as usize, limit as usize, tz).await?;
    let next = offset + limit;
    Ok(axum::Json(SearchPage {
        next_offset: ((next as usize) < r.total && next <= OFFSET_MAX).then_some(next),
        total: r.total as u64,
        items: r
            .items
            .into_iter()
            .map(|h| SearchHit {
                message: h.message,
                snippet: h.snippet.into_iter().map(|p| SnippetPart { text: p.text, highlight: p.highlight }).collect(),
            })
            .collect(),
    }))
}
