//! Conversations: channels, DMs and group DMs; members; read positions; history.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use qiao_domain::conversation::{Conversation, ConversationKind, LinkedDepartment, Member, MemberRole, MyState};
use qiao_domain::message::{Draft, Message};
use qiao_domain::{ConversationId, FileId, MessageId, UserId};
use qiao_service::conversations::{ConversationPatch, ConversationView, CreateChannel};
use qiao_service::messages::{HistoryQuery, SendMessage};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, ClientOrigin, JsonBody, Path, Query};

/// A conversation and, when the caller is in it, their state there.
#[derive(Serialize, ToSchema)]
pub struct ConversationItem {
    pub conversation: Conversation,
    /// Absent when the caller is not a member (previewing a public channel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub me: Option<MyState>,
}

impl From<ConversationView> for ConversationItem {
    fn from(v: ConversationView) -> Self {
        ConversationItem { conversation: v.conversation, me: v.me }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ConversationList {
    pub items: Vec<ConversationItem>,
}

#[derive(Serialize, ToSchema)]
pub struct ConversationPage {
    pub items: Vec<ConversationItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The kinds of conversation created as channels (DMs and groups have operations of their
/// own; a department's channel comes with the department).
#[derive(Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Public,
    Private,
    Announcement,
    Project,
}

impl From<ChannelKind> for ConversationKind {
    fn from(k: ChannelKind) -> ConversationKind {
        match k {
            ChannelKind::Public => ConversationKind::Public,
            ChannelKind::Private => ConversationKind::Private,
            ChannelKind::Announcement => ConversationKind::Announcement,
            ChannelKind::Project => ConversationKind::Project,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannelRequest {
    /// `public` (default), `private`, `announcement` or `project`.
    #[serde(default)]
    pub kind: Option<ChannelKind>,
    pub name: String,
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// People to add besides the creator (at most 100).
    #[serde(default)]
    pub member_ids: Vec<UserId>,
    /// Project and announcement channels: departments whose people are members (they may
    /// not leave). Each must be one you administer, or one of your own departments without its
    /// subdepartments and other than the top one (`403 forbidden` otherwise).
    #[serde(default)]
    pub departments: Vec<LinkedDepartment>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenDmRequest {
    /// The other person (or yourself, for notes).
    pub user_id: UserId,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroupRequest {
    /// The other people (2 to 49).
    pub user_ids: Vec<UserId>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BrowseParams {
    /// Text in the channel name, or the name's pinyin run together, with spaces or as
    /// initials (`xiangmu`, `xiang mu`, `xm` find 项目组); case, full-width letters and
    /// traditional characters are ignored (項目 finds 项目).
    pub q: Option<String>,
    #[serde(default)]
    pub include_archived: bool,
    pub cursor: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversationRequest {
    /// A channel's new name (at least one character); for a group DM, empty clears it (its
    /// members' names are shown instead). Department channels and DMs are not renamed here.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MemberParams {
    /// From a previous page's `next_cursor`.
    pub cursor: Option<UserId>,
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct MemberPage {
    pub items: Vec<Member>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MemberList {
    pub items: Vec<Member>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMembersRequest {
    /// 1 to 100 people.
    pub user_ids: Vec<UserId>,
    /// Default `member`; channel admins may add admins, and posters to announcement channels.
    #[serde(default)]
    pub role: Option<MemberRole>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoleRequest {
    pub role: MemberRole,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetDepartmentsRequest {
    pub departments: Vec<LinkedDepartment>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkReadRequest {
    /// Read up to this sequence number; default: everything.
    #[serde(default, deserialize_with = "crate::extract::json_integer")]
    pub seq: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkUnreadRequest {
    /// This message and everything after it become unread.
    pub message_id: MessageId,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveDraftRequest {
    /// The text so far; empty (or blank) clears the draft.
    pub body: String,
    /// The thread's first message, for a draft reply in that thread.
    #[serde(default)]
    pub thread_root_id: Option<MessageId>,
}

#[derive(Serialize, ToSchema)]
pub struct ReadPosition {
    pub read_seq: i64,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Messages before this sequence number.
    pub before: Option<i64>,
    /// Messages after this sequence number.
    pub after: Option<i64>,
    /// Messages around this message (it included): jump to a message.
    pub around: Option<MessageId>,
    /// 1–200, default 50.
    pub limit: Option<u32>,
}

impl From<HistoryParams> for HistoryQuery {
    fn from(p: HistoryParams) -> Self {
        HistoryQuery { before: p.before, after: p.after, around: p.around, limit: p.limit }
    }
}

/// Messages in ascending order.
#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    pub items: Vec<Message>,
    /// Older messages exist (page with `before` = the first item's `seq`).
    pub more_before: bool,
    /// Newer messages exist (page with `after` = the last item's `seq`).
    pub more_after: bool,
}

#[derive(Serialize, ToSchema)]
pub struct MessageList {
    pub items: Vec<Message>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    /// Markdown, at most 10,000 characters. Mention people with `@username` or
    /// `<@user-id>`, departments with `<@&department-id>` (not guests; reaching more than
    /// 100 people in the conversation, only those who may use `@channel`), everyone with
    /// `@channel` (channel admins, anyone in a DM; in a thread reply: everyone following the
    /// thread). A mention the sender may not make stays plain text (absent from `mentions`).
    pub body: String,
    /// Idempotency key (1–64 printable ASCII characters, e.g. a UUID): a retry with the same
    /// key returns the first message instead of sending a second.
    #[serde(default)]
    pub client_key: Option<String>,
    /// Reply in this message's thread.
    #[serde(default)]
    pub thread_root_id: Option<MessageId>,
    /// Files to send with it (at most 10): your uploads to this conversation
    /// (`POST /api/v1/conversations/{id}/files`) not sent yet. With files the body may be empty.
    #[serde(default)]
    pub file_ids: Vec<FileId>,
}

/// My conversations with unread and mention counts, most recently active first.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations",
    responses((status = 200, body = ConversationList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, Auth(auth): Auth) -> ApiResult<axum::Json<ConversationList>> {
    let items = state.services.my_conversations(&auth).await?.into_iter().map(Into::into).collect();
    Ok(axum::Json(ConversationList { items }))
}

/// Create a channel (public, private, announcement or project); you become its admin.
#[utoipa::path(post, path = "/api/v1/conversations", tag = "conversations", request_body = CreateChannelRequest,
    responses((status = 201, body = ConversationItem), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(auth): Auth,
    JsonBody(req): JsonBody<CreateChannelRequest>,
) -> ApiResult<Response> {
    let input = CreateChannel {
        kind: req.kind.map(Into::into),
        name: req.name,
        topic: req.topic,
        description: req.description,
        member_ids: req.member_ids,
        departments: req.departments,
    };
    let view = state.services.create_channel(&auth, input).await?;
    Ok((StatusCode::CREATED, axum::Json(ConversationItem::from(view))).into_response())
}

/// Open the DM with someone (created on first use; exactly one per pair).
#[utoipa::path(post, path = "/api/v1/conversations/dm", tag = "conversations", request_body = OpenDmRequest,
    responses((status = 200, body = ConversationItem, description = "It already existed"),
        (status = 201, body = ConversationItem, description = "Created"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn open_dm(
    State(state): State<AppState>,
    Auth(auth): Auth,
    JsonBody(req): JsonBody<OpenDmRequest>,
) -> ApiResult<Response> {
    let (view, created) = state.services.open_dm(&auth, req.user_id).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(ConversationItem::from(view))).into_response())
}

/// Create a group DM (3 to 50 people, you included).
#[utoipa::path(post, path = "/api/v1/conversations/group", tag = "conversations", request_body = CreateGroupRequest,
    responses((status = 201, body = ConversationItem), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn create_group(
    State(state): State<AppState>,
    Auth(auth): Auth,
    JsonBody(req): JsonBody<CreateGroupRequest>,
) -> ApiResult<Response> {
    let view = state.services.create_group(&auth, req.user_ids, req.name).await?;
    Ok((StatusCode::CREATED, axum::Json(ConversationItem::from(view))).into_response())
}

/// Browse and search public channels.
#[utoipa::path(get, path = "/api/v1/conversations/browse", tag = "conversations", params(BrowseParams),
    responses((status = 200, body = ConversationPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "Guests cannot browse")))]
pub async fn browse(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Query(p): Query<BrowseParams>,
) -> ApiResult<axum::Json<ConversationPage>> {
    let page = state.services.browse_channels(&auth, p.q, p.include_archived, p.cursor.as_deref(), p.limit).await?;
    Ok(axum::Json(ConversationPage {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A conversation.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations",
    params(("id" = ConversationId, Path, description = "Conversation id")),
    responses((status = 200, body = ConversationItem), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<ConversationId>,
) -> ApiResult<axum::Json<ConversationItem>> {
    Ok(axum::Json(state.services.get_conversation(&auth, id).await?.into()))
}

/// Rename a conversation or change its topic or description (channel admins; anyone in a
/// group DM).
#[utoipa::path(patch, path = "/api/v1/conversations/{id}", tag = "conversations",
    params(("id" = ConversationId, Path, description = "Conversation id")), request_body = UpdateConversationRequest,
    responses((status = 200, body = Conversation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<ConversationId>,
    JsonBody(req): JsonBody<UpdateConversationRequest>,
) -> ApiResult<axum::Json<Conversation>> {
    let patch = ConversationPatch { name: req.name, topic: req.topic, description: req.description };
    Ok(axum::Json(state.services.update_conversation(&auth, id, patch).await?))
}

/// Archive a channel: it becomes read-only.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/archive", tag = "conversations",
    params(("id" = ConversationId, Path, description = "Conversation id")),
    responses((status = 200, body = Conversation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn archive(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Auth(auth): Auth,
    Path(id): Path<ConversationId>,
) -> ApiResult<axum::Json<Conversation>> {
    Ok(axum::Json(state.services.set_archived(&auth, id, true, &origin).await?))
}

/// Unarchive a channel.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/unarchive", tag = "conversations",
    params(("id" = ConversationId, Path, description = "Conversation id")),
    responses((status = 200, body = Conversation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn unarchive(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Auth(auth): Auth,
    Path(id): Path<ConversationId>,
) -> ApiResult<axum::Json<Conversation>> {
    Ok(axum::Json(state.services.set_archived(&auth, id, false, &origin).await?))
}

/// Join a public channel.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/join", tag = "conversations",
    params(("id" = ConversationId, Path, description = "Conversation id")),
    responses((status = 200, body = ConversationItem), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn join(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<ConversationId>,
) -> ApiResult<axum::Json<ConversationItem>> {
    Ok(axum::Json(state.services.join(&auth, id).await?.into()))
}

/// Leave a conversation.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/leave", tag = "conversations",
    params(("id" = ConversationId, Path, description = "Conversation id")),
    responses((status = 204, description = "Left"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`last_channel_admin`: the caller is the channel's last admin")))]
pub async fn leave(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<ConversationId>,
) -> ApiResult<StatusCode> {
    state.services.leave(&auth, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Members, by user id.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/members", tag = "conversations",
    params(("id" = ConversationId, Path, description = "Conversation id"), MemberParams),
    responses((status = 200, body = MemberPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn members(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<ConversationId>,
    Query(p): Query<MemberParams>,
) -> ApiResult<axum::Json<MemberPage>> {
    let page = state.services.list_members(&auth, id, p.cursor, p.limit).await?;
    Ok(axum::Json(MemberPage { items: page.items, next_cursor: page.next_cursor }))
}

/// Add people.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/members", tag = "conversations",
    params(("id" = ConversationId, Path, description = "Conversation id")), request_body = AddMembersRequest,
    responses((status = 200, body = MemberList, description = "Those added or changed"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`last_channel_admin`: the channel's last admin added themselves with another role"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_members(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<ConversationId>,
    JsonBody(req): JsonBody<AddMembersRequest>,
) -> ApiResult<axum::Json<MemberList>> {
    Ok(axum::Json(MemberList { items: state.services.add_members(&auth, id, req.user_ids, req.role).await? }))
}

/// Change a member's role (channel admins).
#[utoipa::path(patch, path = "/api/v1/conversations/{id}/members/{user_id}", tag = "conversations",
    params(("id" = ConversationId, Path, description = "Conversation id"), ("user_id" = UserId, Path, description = "Member")),
    request_body = SetRoleRequest,
    responses((status = 200, body = Member), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`last_channel_admin`: that member is the channel's last admin"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_member_role(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((id, user)): Path<(ConversationId, UserId)>,
    JsonBody(req): JsonBody<SetRoleRequest>,
) -> ApiResult<axum::Json<Member>> {
    Ok(axum::Json(state.services.set_member_role(&auth, id, user, req.role).await?))
}

/// Remove someone (channel admins), or leave (yourself).
#[utoipa::path(delete, path = "/api/v1/conversations/{id}/members/{user_id}", tag = "conversations",
    params(("id" = ConversationId, Path, description = "Conversation id"), ("user_id" = UserId, Path, description = "Member")),
    responses((status = 204, description = "Removed"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`last_channel_admin`: that member is the channel's last admin")))]
pub async fn remove_member(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    Auth(auth): Auth,
    Path((id, user)): Path<(ConversationId, UserId)>,
) -> ApiResult<StatusCode> {
    state.services.remove_member(&auth, id, user, &origin).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the departments whose people are members (project and announcement channels).
///
/// A department added (or whose subdepartments are added) must be one of your own or one
/// you administer; links made by others may be kept, narrowed or removed.
#[utoipa::path(put, path = "/api/v1/conversations/{id}/departments", tag = "conversations",
    params(("id" = ConversationId, Path, description = "Conversation id")), request_body = SetDepartmentsRequest,
    responses((status = 200, body = Conversation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_departments(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<ConversationId>,
    JsonBody(req): JsonBody<SetDepartmentsRequest>,
) -> ApiResult<axum::Json<Conversation>> {
    Ok(axum::Json(state.services.set_linked_departments(&auth, id, req.departments).await?))
}

/// Save my draft in this conversation, or in one of its threads (an empty body clears it).
///
/// My other devices get a `draft.updated` event. Saving the text already stored changes
/// nothing. Clients save a moment after typing stops (saves are rate-limited) and clear the
/// draft once the message is sent. In an archived conversation only clearing is allowed
/// (403 otherwise: nothing can be sent there).
#[utoipa::path(put, path = "/api/v1/conversations/{id}/draft", tag = "conversations",
    params(("id" = ConversationId, Path, description = "Conversation id")), request_body = SaveDraftRequest,
    responses((status = 200, body = Draft), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn save_draft(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<ConversationId>,
    JsonBody(req): JsonBody<SaveDraftRequest>,
) -> ApiResult<axum::Json<Draft>> {
    Ok(axum::Json(state.services.save_draft(&auth, id, req.thread_root_id, &req.body).await?))
}

/// Mark read up to a sequence number (default: everything). Other devices follow.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/read", tag = "conversations",
    params(("id" = ConversationId, Path, description = "Conversation id")), request_body = MarkReadRequest,
    responses((status = 200, body = ReadPosition), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn mark_read(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<ConversationId>,
    JsonBody(req): JsonBody<MarkReadRequest>,
) -> ApiResult<axum::Json<ReadPosition>> {
    Ok(axum::Json(ReadPosition { read_seq: state.services.mark_read(&auth, id, req.seq).await? }))
}

/// Mark unread from a message on.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/unread", tag = "conversations",
    params(("id" = ConversationId, Path, description = "Conversation id")), request_body = MarkUnreadRequest,
    responses((status = 200, body = ReadPosition), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn mark_unread(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<ConversationId>,
    JsonBody(req): JsonBody<MarkUnreadRequest>,
) -> ApiResult<axum::Json<ReadPosition>> {
    Ok(axum::Json(ReadPosition { read_seq: state.services.mark_unread(&auth, id, req.message_id).await? }))
}

/// Pinned messages.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/pins", tag = "conversations",
    params(("id" = ConversationId, Path, description = "Conversation id")),
    responses((status = 200, body = MessageList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn pins(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<ConversationId>,
) -> ApiResult<axum::Json<MessageList>> {
    Ok(axum::Json(MessageList { items: state.services.pins(&auth, id).await? }))
}

/// History: top-level messages by page, in both directions, or around a message.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "messages",
    params(("id" = ConversationId, Path, description = "Conversation id"), HistoryParams),
    responses((status = 200, body = MessagePage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<ConversationId>,
    Query(p): Query<HistoryParams>,
) -> ApiResult<axum::Json<MessagePage>> {
    let h = state.services.history(&auth, id, p.into()).await?;
    Ok(axum::Json(MessagePage { items: h.items, more_before: h.more_before, more_after: h.more_after }))
}

/// Send a message (or a thread reply).
///
/// Answered once the message is durably stored. A retry with the same `client_key` returns
/// the first message (status 200 and `Idempotent-Replayed: true`) instead of a duplicate,
/// as it is now: edited or deleted since, it is not sent again.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "messages",
    params(("id" = ConversationId, Path, description = "Conversation id")), request_body = SendMessageRequest,
    responses((status = 201, body = Message, description = "Sent"), (status = 200, body = Message, description = "A retry: the message sent before"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "client_key reused for another message"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn send(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<ConversationId>,
    JsonBody(req): JsonBody<SendMessageRequest>,
) -> ApiResult<Response> {
    let input = SendMessage {
        body: req.body,
        client_key: req.client_key,
        thread_root_id: req.thread_root_id,
        file_ids: req.file_ids,
    };
    let sent = state.services.send_message(&auth, id, input).await?;
    let mut res = axum::Json(sent.message).into_response();
    if sent.replayed {
        res.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    } else {
        *res.status_mut() = StatusCode::CREATED;
    }
    Ok(res)
}
