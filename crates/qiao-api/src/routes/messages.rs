//! Individual messages: edit, delete, reactions, pins, threads.

use axum::extract::State;
use axum::http::StatusCode;
use qiao_domain::message::Message;
use qiao_domain::{ConversationId, MessageId, Millis, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, ClientOrigin, JsonBody, Path, Query};
use crate::routes::conversations::{HistoryParams, MarkReadRequest};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditMessageRequest {
    pub body: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReactionRequest {
    /// A Unicode emoji or a `:shortcode:`.
    pub emoji: String,
    /// `true` adds the reaction, `false` takes it back; asking for what is so already changes
    /// nothing, so such a request is safe to retry. Left out, the reaction toggles.
    #[serde(default)]
    pub add: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct ReactionToggled {
    /// True if the reaction is there now (added, or already there when `add` was true).
    pub added: bool,
    pub message: Message,
}

/// An earlier version of an edited message.
#[derive(Serialize, ToSchema)]
pub struct MessageEdit {
    pub edited_at: Millis,
    pub editor_id: UserId,
    /// The body before this edit.
    pub body: String,
}

#[derive(Serialize, ToSchema)]
pub struct MessageEditList {
    pub items: Vec<MessageEdit>,
}

#[derive(Serialize, ToSchema)]
pub struct ThreadPage {
    pub root: Message,
    /// Replies in ascending order.
    pub items: Vec<Message>,
    pub more_before: bool,
    pub more_after: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ThreadState {
    pub root_id: MessageId,
    pub following: bool,
    /// Replies up to this sequence number are read.
    pub read_seq: i64,
}

impl From<qiao_service::messages::ThreadState> for ThreadState {
    fn from(s: qiao_service::messages::ThreadState) -> Self {
        ThreadState { root_id: s.root_id, following: s.following, read_seq: s.read_seq }
    }
}

#[derive(Serialize, ToSchema)]
pub struct FollowedThread {
    pub root_id: MessageId,
    /// The thread's first message (as `GET /api/v1/messages/{id}` returns it).
    pub root: Message,
    pub conversation_id: ConversationId,
    pub read_seq: i64,
    pub unread_count: i64,
    pub mention_count: i64,
    pub last_reply_at: Option<Millis>,
    /// The sequence number of the thread's latest reply, if any: a client counting new
    /// replies from events skips those at or before it.
    pub last_reply_seq: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct FollowedThreadList {
    pub items: Vec<FollowedThread>,
    /// Pass as `cursor` for the next page (older threads); absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ThreadsParams {
    /// 1–200, default 50.
    pub limit: Option<u32>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A message.
#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "messages",
    params(("id" = MessageId, Path, description = "Message id")),
    responses((status = 200, body = Message), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<MessageId>,
) -> ApiResult<axum::Json<Message>> {
    Ok(axum::Json(state.services.get_message(&auth, id).await?))
}

/// Edit your message (it is marked edited).
#[utoipa::path(patch, path = "/api/v1/messages/{id}", tag = "messages",
    params(("id" = MessageId, Path, description = "Message id")), request_body = EditMessageRequest,
    responses((status = 200, body = Message), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn edit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<MessageId>,
    JsonBody(req): JsonBody<EditMessageRequest>,
) -> ApiResult<axum::Json<Message>> {
    Ok(axum::Json(state.services.edit_message(&auth, id, &req.body).await?))
}

/// Delete a message (yours; channel admins may delete others'). A tombstone remains.
#[utoipa::path(delete, path = "/api/v1/messages/{id}", tag = "messages",
    params(("id" = MessageId, Path, description = "Message id")),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Auth(auth): Auth,
    Path(id): Path<MessageId>,
) -> ApiResult<StatusCode> {
    state.services.delete_message(&auth, id, &origin).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add, take back or toggle your reaction with an emoji.
#[utoipa::path(post, path = "/api/v1/messages/{id}/reactions", tag = "messages",
    params(("id" = MessageId, Path, description = "Message id")), request_body = ReactionRequest,
    responses((status = 200, body = ReactionToggled), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn react(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<MessageId>,
    JsonBody(req): JsonBody<ReactionRequest>,
) -> ApiResult<axum::Json<ReactionToggled>> {
    let (added, message) = state.services.react(&auth, id, &req.emoji, req.add).await?;
    Ok(axum::Json(ReactionToggled { added, message }))
}

/// Pin a message.
#[utoipa::path(put, path = "/api/v1/messages/{id}/pin", tag = "messages",
    params(("id" = MessageId, Path, description = "Message id")),
    responses((status = 200, body = Message), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn pin(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<MessageId>,
) -> ApiResult<axum::Json<Message>> {
    Ok(axum::Json(state.services.set_pinned(&auth, id, true).await?))
}

/// Unpin a message.
#[utoipa::path(delete, path = "/api/v1/messages/{id}/pin", tag = "messages",
    params(("id" = MessageId, Path, description = "Message id")),
    responses((status = 200, body = Message), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn unpin(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<MessageId>,
) -> ApiResult<axum::Json<Message>> {
    Ok(axum::Json(state.services.set_pinned(&auth, id, false).await?))
}

/// Earlier versions of an edited message (administrators; the audit trail).
#[utoipa::path(get, path = "/api/v1/messages/{id}/edits", tag = "messages",
    params(("id" = MessageId, Path, description = "Message id")),
    responses((status = 200, body = MessageEditList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn edits(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<MessageId>,
) -> ApiResult<axum::Json<MessageEditList>> {
    let items = state
        .services
        .message_edits(&auth, id)
        .await?
        .into_iter()
        .map(|e| MessageEdit { edited_at: e.edited_at, editor_id: e.editor_id, body: e.body })
        .collect();
    Ok(axum::Json(MessageEditList { items }))
}

/// A thread: the root and a page of replies (oldest first by default).
#[utoipa::path(get, path = "/api/v1/messages/{id}/thread", tag = "messages",
    params(("id" = MessageId, Path, description = "The thread's root (or any reply in it)"), HistoryParams),
    responses((status = 200, body = ThreadPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn thread(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<MessageId>,
    Query(p): Query<HistoryParams>,
) -> ApiResult<axum::Json<ThreadPage>> {
    let (root, h) = state.services.thread(&auth, id, p.into()).await?;
    Ok(axum::Json(ThreadPage { root, items: h.items, more_before: h.more_before, more_after: h.more_after }))
}

/// Mark a thread read up to a sequence number (default: everything); follows it.
#[utoipa::path(post, path = "/api/v1/messages/{id}/thread/read", tag = "messages",
    params(("id" = MessageId, Path, description = "The thread's root")), request_body = MarkReadRequest,
    responses((status = 200, body = ThreadState), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn thread_read(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<MessageId>,
    JsonBody(req): JsonBody<MarkReadRequest>,
) -> ApiResult<axum::Json<ThreadState>> {
    Ok(axum::Json(state.services.mark_thread_read(&auth, id, req.seq).await?.into()))
}

/// Follow a thread.
#[utoipa::path(put, path = "/api/v1/messages/{id}/thread/follow", tag = "messages",
    params(("id" = MessageId, Path, description = "The thread's root")),
    responses((status = 200, body = ThreadState), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn follow(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<MessageId>,
) -> ApiResult<axum::Json<ThreadState>> {
    Ok(axum::Json(state.services.set_thread_following(&auth, id, true).await?.into()))
}

/// Unfollow a thread.
#[utoipa::path(delete, path = "/api/v1/messages/{id}/thread/follow", tag = "messages",
    params(("id" = MessageId, Path, description = "The thread's root")),
    responses((status = 200, body = ThreadState), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn unfollow(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<MessageId>,
) -> ApiResult<axum::Json<ThreadState>> {
    Ok(axum::Json(state.services.set_thread_following(&auth, id, false).await?.into()))
}

/// Threads I follow, with unread counts, most recent reply first (a thread without replies by
/// its root's time), a page at a time.
#[utoipa::path(get, path = "/api/v1/threads", tag = "messages", params(ThreadsParams),
    responses((status = 200, body = FollowedThreadList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn followed(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Query(p): Query<ThreadsParams>,
) -> ApiResult<axum::Json<FollowedThreadList>> {
    let page = state.services.followed_threads(&auth, p.cursor.as_deref(), p.limit).await?;
    let items = page
        .items
        .into_iter()
        .map(|(t, root)| FollowedThread {
            root_id: t.root_id,
            root,
            conversation_id: t.conversation_id,
            read_seq: t.read_seq,
            unread_count: t.unread_count,
            mention_count: t.mention_count,
            last_reply_at: t.last_reply_at,
            last_reply_seq: t.last_reply_seq,
        })
        .collect();
    Ok(axum::Json(FollowedThreadList { items, next_cursor: page.next_cursor }))
}
