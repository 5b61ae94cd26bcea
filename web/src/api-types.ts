// Generated from docs/openapi.json by crates/qiao-api/src/typescript.rs: do not edit.
// Refresh both with `QIAO_UPDATE_OPENAPI=1 cargo test -p qiao-api --test openapi`.

export interface AddMembersRequest {
  /** Default `member`; channel admins may add admins, and posters to announcement channels. */
  role?: MemberRole | null;
  /** 1 to 100 people. */
  user_ids: UserId[];
}

export interface AuditEntry {
  /** A dotted action name such as `user.disable` or `session.sign_in_failed`. */
  action: string;
  /** `None` for actions taken by the system or the command line. */
  actor_id?: UserId | null;
  at: i64;
  /** Action-specific facts (never secrets). */
  details: { [key: string]: unknown };
  id: AuditId;
  /** The client address, when the action came over the network. */
  ip?: string | null;
  target_id?: string | null;
  target_type?: string | null;
}

/** One audit-log entry. */
export type AuditId = string;

export interface AuditPage {
  items: AuditEntry[];
  next_cursor?: string | null;
}

export interface ChangePassword {
  current_password: string;
  new_password: string;
}

/**
 * The kinds of conversation created as channels (DMs and groups have operations of their
 * own; a department's channel comes with the department).
 */
export type ChannelKind = "public" | "private" | "announcement" | "project";

/** Frames a client sends. */
export type ClientMessage =
  | {
    op: "hello";
    /**
     * The `pos` of the last event this client processed: every event after it is sent
     * (exactly once, in order) before live ones. Omit on a fresh start.
     */
    resume_from?: number | null;
    /**
     * A bearer session token (sign in with `mode: bearer`). Browsers may omit it: the
     * session cookie sent with the upgrade request is used instead.
     */
    token?: string | null;
  }
  | {
    nonce?: string | null;
    op: "ping";
  }
  | {
    op: "presence";
    status: ClientStatus;
  }
  | {
    op: "active";
  }
  | {
    op: "presence_subscribe";
    user_ids: UserId[];
  }
  | {
    conversation_id: ConversationId;
    op: "typing";
    thread_root_id?: MessageId | null;
  };

/** The presence a device can claim. */
export type ClientStatus = "online" | "away" | "dnd";

/** A conversation as every member sees it. */
export interface Conversation {
  archived_at?: i64 | null;
  created_at: i64;
  created_by?: UserId | null;
  /** For department channels: their department. */
  department_id?: DepartmentId | null;
  description: string;
  id: ConversationId;
  kind: ConversationKind;
  last_message_at?: i64 | null;
  /** The conversation's latest sequence number (every change takes the next one). */
  last_seq: number;
  /** Departments whose people are members (department and project channels). */
  linked_departments: LinkedDepartment[];
  member_count: number;
  /** Empty for DMs and unnamed group DMs. */
  name: string;
  /** For DMs and group DMs: everyone in it. */
  participant_ids: UserId[];
  topic: string;
  updated_at: i64;
}

/** A channel, DM or group DM. */
export type ConversationId = string;

/** A conversation and, when the caller is in it, their state there. */
export interface ConversationItem {
  conversation: Conversation;
  /** Absent when the caller is not a member (previewing a public channel). */
  me?: MyState | null;
}

/** What kind of conversation, which decides who may find, join and post. */
export type ConversationKind = "public" | "private" | "announcement" | "dm" | "group" | "department" | "project";

export interface ConversationList {
  items: ConversationItem[];
}

export interface ConversationPage {
  items: ConversationItem[];
  next_cursor?: string | null;
}

export interface CreateChannelRequest {
  /**
   * Project and announcement channels: departments whose people are members (they may
   * not leave). Each must be one you administer, or one of your own departments without its
   * subdepartments and other than the top one (`403 forbidden` otherwise).
   */
  departments?: LinkedDepartment[];
  description?: string | null;
  /** `public` (default), `private`, `announcement` or `project`. */
  kind?: ChannelKind | null;
  /** People to add besides the creator (at most 100). */
  member_ids?: UserId[];
  name: string;
  topic?: string | null;
}

export interface CreateDepartment {
  name: string;
  /** Default: the organisation root. */
  parent_id?: DepartmentId | null;
}

export interface CreateGroupRequest {
  name?: string | null;
  /** The other people (2 to 49). */
  user_ids: UserId[];
}

export interface CreateUserRequest {
  display_name: string;
  email?: string | null;
  /** Department admins only; default: the primary department. */
  managed_department_ids?: DepartmentId[];
  /**
   * Default: a temporary password is generated, returned once, and must be changed at
   * first sign-in.
   */
  password?: string | null;
  /** Default: the organisation root (for a department admin: the first department they manage). */
  primary_department_id?: DepartmentId | null;
  /** Default `member`. */
  role?: Role | null;
  secondary_department_ids?: DepartmentId[];
  title?: string | null;
  /**
   * 2 to 32 characters: letters a-z (case is ignored), digits, `.`, `_`, `-`. `all` and
   * `channel` are reserved (`@all` and `@channel` mention everyone).
   */
  username: string;
}

export interface CreatedUser {
  /** Present when the server chose the password: give it to the person; shown once. */
  temporary_password?: string | null;
  user: User;
}

/** A node of the department tree. */
export interface Department {
  created_at: i64;
  id: DepartmentId;
  name: string;
  /** `None` only for the root department. */
  parent_id?: DepartmentId | null;
  updated_at: i64;
}

export interface DepartmentDetail {
  /** From the root down to the parent. */
  ancestors: Department[];
  /** Direct sub-departments. */
  children: Department[];
  department: Department;
}

/** A node of the department tree. */
export type DepartmentId = string;

export interface DepartmentList {
  /** Every department; rebuild the tree from `parent_id`. */
  items: Department[];
}

/**
 * Text a person has started writing in a conversation (or in one of its threads) and not
 * sent, kept on the server so that their other devices show it too.
 */
export interface Draft {
  /** Empty when the draft was cleared (sent or erased). */
  body: string;
  conversation_id: ConversationId;
  /** The thread it replies in; absent for the conversation's own composer. */
  thread_root_id?: MessageId | null;
  updated_at: i64;
}

export interface DraftList {
  items: Draft[];
}

export interface EditMessageRequest {
  body: string;
}

/** Every error response has this body. */
export interface ErrorBody {
  /** Stable machine-readable code; switch on this. */
  code: ErrorCode;
  /** The request field at fault, as a JSON path, when there is one. */
  field?: string | null;
  /** Human-readable explanation in English (clients translate by `code`). */
  message: string;
  /** The request id (also in the `x-request-id` header); quote it when reporting a problem. */
  request_id: string;
  /** For `rate_limited`: seconds to wait (also in the `Retry-After` header). */
  retry_after?: number | null;
}

/** Stable, machine-readable error codes. Clients switch on these; never rename one. */
export type ErrorCode = "invalid_json" | "invalid_input" | "invalid_parameter" | "payload_too_large" | "quota_exceeded" | "range_not_satisfiable" | "unsupported_media_type" | "unauthenticated" | "csrf_mismatch" | "invalid_credentials" | "account_disabled" | "password_change_required" | "rate_limited" | "forbidden" | "not_found" | "method_not_allowed" | "upgrade_required" | "username_taken" | "email_taken" | "department_name_taken" | "department_not_empty" | "department_cycle" | "root_department" | "last_owner" | "last_channel_admin" | "invalid_setup_token" | "setup_already_done" | "wrong_password" | "conflict" | "unavailable" | "internal";

/** What happened. The `type` tag is the name clients switch on. */
export type EventData =
  | {
    org: Org;
    type: "org.updated";
  }
  | {
    type: "user.created";
    user: User;
  }
  | {
    type: "user.updated";
    user: User;
  }
  | {
    department: Department;
    type: "department.created";
  }
  | {
    department: Department;
    type: "department.updated";
  }
  | {
    department_id: DepartmentId;
    type: "department.deleted";
  }
  | {
    session_id: SessionId;
    type: "session.revoked";
  }
  | {
    conversation: Conversation;
    members: Member[];
    type: "conversation.created";
  }
  | {
    conversation: Conversation;
    type: "conversation.updated";
  }
  | {
    conversation: Conversation;
    members: Member[];
    type: "members.added";
  }
  | {
    conversation_id: ConversationId;
    type: "members.removed";
    user_ids: UserId[];
  }
  | {
    conversation_id: ConversationId;
    member: Member;
    type: "member.updated";
  }
  | {
    message: Message;
    thread?: ThreadSummary | null;
    type: "message.created";
  }
  | {
    message: Message;
    type: "message.updated";
  }
  | {
    deleted_at: i64;
    message_id: MessageId;
    thread_root_id?: MessageId | null;
    type: "message.deleted";
  }
  | {
    emoji: string;
    message_id: MessageId;
    type: "reaction.added";
    user_id: UserId;
  }
  | {
    emoji: string;
    message_id: MessageId;
    type: "reaction.removed";
    user_id: UserId;
  }
  | {
    conversation_id: ConversationId;
    type: "conversation.removed";
  }
  | {
    conversation_id: ConversationId;
    read_seq: number;
    type: "read.updated";
  }
  | {
    conversation_id: ConversationId;
    following: boolean;
    read_seq: number;
    root_id: MessageId;
    type: "thread.state";
  }
  | {
    draft: Draft;
    type: "draft.updated";
  };

/**
 * The wire frame of a committed event: `{"op":"event","pos":..,"at":..,"seq":..,
 * "conversation_id":..,"data":{"type":..,..}}`.
 */
export interface EventFrame {
  /** When it was committed. */
  at: i64;
  /** For conversation events. */
  conversation_id?: ConversationId | null;
  data: EventData;
  op: EventOp;
  /** Global stream position: gap-free across the whole organisation, in commit order. */
  pos: number;
  /** For conversation events: the conversation's own gap-free sequence number. */
  seq?: number | null;
}

/** The `op` of an event frame: always `"event"`. */
export type EventOp = "event";

/** A file shared in a conversation. */
export type FileId = string;

/**
 * A file as the members of its conversation see it. The bytes are at
 * `/api/v1/files/{id}/content`; images have `/api/v1/files/{id}/thumbnail`.
 */
export interface FileInfo {
  conversation_id: ConversationId;
  created_at: i64;
  /** Voice messages and other recordings: length as the uploader's recorder measured it. */
  duration_ms?: number | null;
  height?: number | null;
  id: FileId;
  kind: FileKind;
  /** The message carrying it, once sent. */
  message_id?: MessageId | null;
  /** The type recognised from the bytes (never the one the uploader claimed). */
  mime: string;
  name: string;
  size: number;
  /** A thumbnail is available. */
  thumbnail: boolean;
  uploader_id: UserId;
  /** Recorded as a voice message. */
  voice: boolean;
  /** Images: pixel size. */
  width?: number | null;
}

/** What kind of file, from its bytes. */
export type FileKind = "image" | "audio" | "video" | "document" | "other";

export interface FilePage {
  items: FileInfo[];
  next_cursor?: string | null;
}

export interface FollowedThread {
  conversation_id: ConversationId;
  last_reply_at?: i64 | null;
  /**
   * The sequence number of the thread's latest reply, if any: a client counting new
   * replies from events skips those at or before it.
   */
  last_reply_seq?: number | null;
  mention_count: number;
  read_seq: number;
  /** The thread's first message (as `GET /api/v1/messages/{id}` returns it). */
  root: Message;
  root_id: MessageId;
  unread_count: number;
}

export interface FollowedThreadList {
  items: FollowedThread[];
  /** Pass as `cursor` for the next page (older threads); absent on the last page. */
  next_cursor?: string | null;
}

export interface Health {
  /** `ok` */
  status: string;
}

/** A department whose people (optionally with its whole subtree) belong to a conversation. */
export interface LinkedDepartment {
  department_id: DepartmentId;
  include_subdepartments: boolean;
}

export interface MarkReadRequest {
  /** Read up to this sequence number; default: everything. */
  seq?: number | null;
}

export interface MarkUnreadRequest {
  /** This message and everything after it become unread. */
  message_id: MessageId;
}

export interface Me {
  /** Cookie sessions: the CSRF token to echo in `X-CSRF-Token`. */
  csrf_token?: string | null;
  org_name: string;
  session_id: SessionId;
  user: User;
}

/** One person's membership of a conversation. */
export interface Member {
  /** Added by invitation, by joining, or at creation. */
  direct: boolean;
  joined_at: i64;
  role: MemberRole;
  user_id: UserId;
  /** Present because of a linked department (cannot leave while that holds). */
  via_department: boolean;
}

export interface MemberList {
  items: Member[];
}

export interface MemberPage {
  items: Member[];
  next_cursor?: string | null;
}

/** A member's standing in one conversation. */
export type MemberRole = "admin" | "poster" | "member";

/** Who a message mentions. */
export interface Mentions {
  /** `@channel` / `@all` / `@所有人`. */
  channel: boolean;
  department_ids: DepartmentId[];
  user_ids: UserId[];
}

/**
 * A message as members see it. Deleted messages keep their place as tombstones with an
 * empty body. Optional fields without a value are left out.
 */
export interface Message {
  /** Markdown; empty once deleted. */
  body: string;
  /** The sender's idempotency key, echoed so a client can match its optimistic copy. */
  client_key?: string | null;
  conversation_id: ConversationId;
  created_at: i64;
  deleted_at?: i64 | null;
  edited_at?: i64 | null;
  /** Files it carries (none once deleted). */
  files?: FileInfo[];
  id: MessageId;
  mentions: Mentions;
  pinned_at?: i64 | null;
  pinned_by?: UserId | null;
  reactions: Reaction[];
  sender_id: UserId;
  /** The conversation sequence number of its creation: messages sort by it. */
  seq: number;
  /** For thread roots with replies. */
  thread?: ThreadSummary | null;
  /** For replies: the thread's root message. */
  thread_root_id?: MessageId | null;
}

/** An earlier version of an edited message. */
export interface MessageEdit {
  /** The body before this edit. */
  body: string;
  edited_at: i64;
  editor_id: UserId;
}

export interface MessageEditList {
  items: MessageEdit[];
}

/** One message. */
export type MessageId = string;

export interface MessageList {
  items: Message[];
}

/** Messages in ascending order. */
export interface MessagePage {
  items: Message[];
  /** Newer messages exist (page with `after` = the last item's `seq`). */
  more_after: boolean;
  /** Older messages exist (page with `before` = the first item's `seq`). */
  more_before: boolean;
}

/** The caller's own state in a conversation. */
export interface MyState {
  direct: boolean;
  /** Unread messages that mention the caller, their department or the whole channel. */
  mention_count: number;
  /** Everything up to this sequence number has been read (on every device). */
  read_seq: number;
  role: MemberRole;
  /**
   * Unread top-level messages from others (counted over the latest changes; clients show
   * large values as "999+").
   */
  unread_count: number;
  via_department: boolean;
}

export interface OpenDmRequest {
  /** The other person (or yourself, for notes). */
  user_id: UserId;
}

/** The one organisation this deployment serves. */
export interface Org {
  created_at: i64;
  name: string;
  /** The top of the department tree; every department descends from it. */
  root_department_id: DepartmentId;
  /** False until the first owner has been created. */
  setup_complete: boolean;
}

/** A person's combined presence over their devices. */
export type PresenceStatus = "online" | "away" | "dnd" | "offline";

/** One emoji's reactions on a message. */
export interface Reaction {
  count: number;
  emoji: string;
  /** Who reacted (the first [`REACTION_USERS_SHOWN`] of them, oldest first). */
  user_ids: UserId[];
}

export interface ReactionRequest {
  /**
   * `true` adds the reaction, `false` takes it back; asking for what is so already changes
   * nothing, so such a request is safe to retry. Left out, the reaction toggles.
   */
  add?: boolean | null;
  /** A Unicode emoji or a `:shortcode:`. */
  emoji: string;
}

export interface ReactionToggled {
  /** True if the reaction is there now (added, or already there when `add` was true). */
  added: boolean;
  message: Message;
}

export interface ReadPosition {
  read_seq: number;
}

/** Why a resume could not send the missed events (whatever the reason, the client reloads). */
export type ResyncReason = "too_far_behind" | "expired" | "unknown_position";

export interface RevokedCount {
  revoked: number;
}

/** What a person may do in the organisation. Ordered from most to least powerful. */
export type Role = "owner" | "admin" | "department_admin" | "member" | "guest";

export interface SaveDraftRequest {
  /** The text so far; empty (or blank) clears the draft. */
  body: string;
  /** The thread's first message, for a draft reply in that thread. */
  thread_root_id?: MessageId | null;
}

export interface SearchHit {
  message: Message;
  /** The matching part of the text, split into plain and highlighted runs. */
  snippet: SnippetPart[];
}

export interface SearchPage {
  items: SearchHit[];
  next_offset?: number | null;
  /** Messages matching in all. */
  total: number;
}

export interface SendMessageRequest {
  /**
   * Markdown, at most 10,000 characters. Mention people with `@username` or
   * `<@user-id>`, departments with `<@&department-id>` (not guests; reaching more than
   * 100 people in the conversation, only those who may use `@channel`), everyone with
   * `@channel` (channel admins, anyone in a DM; in a thread reply: everyone following the
   * thread). A mention the sender may not make stays plain text (absent from `mentions`).
   */
  body: string;
  /**
   * Idempotency key (1–64 printable ASCII characters, e.g. a UUID): a retry with the same
   * key returns the first message instead of sending a second.
   */
  client_key?: string | null;
  /**
   * Files to send with it (at most 10): your uploads to this conversation
   * (`POST /api/v1/conversations/{id}/files`) not sent yet. With files the body may be empty.
   */
  file_ids?: FileId[];
  /** Reply in this message's thread. */
  thread_root_id?: MessageId | null;
}

/**
 * Frames the server sends (besides committed events, whose frame is `EventFrame` with
 * `op: "event"`).
 */
export type ServerMessage =
  | {
    /**
     * The stream position now. A fresh client loads state over HTTP after this and
     * applies events after `head`.
     */
    head: number;
    /**
     * The server pings about this often; a connection silent for three times as long is
     * closed.
     */
    heartbeat_ms: number;
    op: "ready";
    protocol: number;
    /** True if the events after `resume_from` follow (they do, up to the live ones). */
    resumed: boolean;
    session_id: SessionId;
    user_id: UserId;
  }
  | {
    head: number;
    op: "resync";
    reason: ResyncReason;
  }
  | {
    nonce?: string | null;
    op: "pong";
  }
  | {
    op: "presence";
    status: PresenceStatus;
    user_id: UserId;
  }
  | {
    conversation_id: ConversationId;
    op: "typing";
    thread_root_id?: MessageId | null;
    user_id: UserId;
  }
  | {
    code: string;
    message: string;
    op: "error";
    /** With `rate_limited` before a 4030 close: seconds to wait before connecting again. */
    retry_after_secs?: number | null;
  };

/** One signed-in device. */
export interface Session {
  created_at: i64;
  /** True for the session making the request. */
  current: boolean;
  /** A label for the device, from the client or its User-Agent. */
  device_name: string;
  expires_at: i64;
  id: SessionId;
  /** The address the session was created from. */
  ip: string;
  kind: SessionKind;
  last_used_at: i64;
}

/** One signed-in device. */
export type SessionId = string;

/** How the session's token travels. */
export type SessionKind = "cookie" | "bearer";

export interface SessionList {
  items: Session[];
}

export interface SetDepartmentsRequest {
  departments: LinkedDepartment[];
}

export interface SetRoleRequest {
  role: MemberRole;
}

/** The first owner, created with the one-time token from the setup link. */
export interface SetupRequest {
  device_name?: string | null;
  display_name: string;
  email?: string | null;
  /** `cookie` (browsers, the default) or `bearer` (API clients: the token is returned). */
  mode?: SessionKind;
  /** Renames the organisation. */
  org_name?: string | null;
  password: string;
  /** The token printed by `qiao serve` (the part after `#token=` in the setup link). */
  token: string;
  /**
   * 2 to 32 characters: letters a-z (case is ignored), digits, `.`, `_`, `-`. `all` and
   * `channel` are reserved (`@all` and `@channel` mention everyone).
   */
  username: string;
}

/** Whether the organisation still needs its first owner. */
export interface SetupStatus {
  org_name: string;
  setup_complete: boolean;
}

export interface SignInRequest {
  /** A label for this device in the sessions list (default: from the User-Agent). */
  device_name?: string | null;
  /** Username or e-mail address. */
  login: string;
  /**
   * `cookie` (browsers, the default: sets an HttpOnly session cookie and a CSRF cookie)
   * or `bearer` (API clients: the token is returned once in the body).
   */
  mode?: SessionKind;
  password: string;
}

/** A new session. */
export interface SignInResponse {
  /**
   * Cookie mode only: echo this in the `X-CSRF-Token` header of every request that
   * changes state (it is also in the `qiao_csrf` cookie).
   */
  csrf_token?: string | null;
  session: Session;
  /** Bearer mode only: the session token. Shown once; send it as `Authorization: Bearer`. */
  token?: string | null;
  user: User;
}

/** A run of snippet text, highlighted where it matched. */
export interface SnippetPart {
  highlight: boolean;
  text: string;
}

export interface TemporaryPassword {
  /** Give it to the person; they must change it at their next sign-in. Shown once. */
  temporary_password: string;
}

export interface ThreadPage {
  /** Replies in ascending order. */
  items: Message[];
  more_after: boolean;
  more_before: boolean;
  root: Message;
}

export interface ThreadState {
  following: boolean;
  /** Replies up to this sequence number are read. */
  read_seq: number;
  root_id: MessageId;
}

/** A thread root's replies at a glance. */
export interface ThreadSummary {
  last_reply_at?: i64 | null;
  /** Everyone who replied (at most [`THREAD_PARTICIPANTS_SHOWN`]), earliest first. */
  participant_ids: UserId[];
  reply_count: number;
}

export interface UpdateConversationRequest {
  description?: string | null;
  /**
   * A channel's new name (at least one character); for a group DM, empty clears it (its
   * members' names are shown instead). Department channels and DMs are not renamed here.
   */
  name?: string | null;
  topic?: string | null;
}

export interface UpdateDepartment {
  /** Rename. */
  name?: string | null;
  /** Move under another department. */
  parent_id?: DepartmentId | null;
}

export interface UpdateOrg {
  name: string;
}

export interface UpdateProfile {
  display_name?: string | null;
  /** Job title; empty clears it. */
  title?: string | null;
}

/** Fields to change; absent fields stay as they are. */
export interface UpdateUserRequest {
  display_name?: string | null;
  /** `null` removes the address. */
  email?: string | null;
  managed_department_ids?: DepartmentId[] | null;
  primary_department_id?: DepartmentId | null;
  role?: Role | null;
  secondary_department_ids?: DepartmentId[] | null;
  title?: string | null;
  /**
   * A new username: 2 to 32 characters: letters a-z (case is ignored), digits, `.`, `_`, `-`. `all` and
   * `channel` are reserved (`@all` and `@channel` mention everyone).
   */
  username?: string | null;
}

/** A person as the directory shows them. */
export interface User {
  created_at: i64;
  display_name: string;
  /** Lower-case e-mail address, unique when present. */
  email?: string | null;
  id: UserId;
  /** For department admins: the roots of the subtrees they manage. Empty otherwise. */
  managed_department_ids: DepartmentId[];
  /** Set after an administrator reset the password: the user must choose a new one. */
  must_change_password: boolean;
  primary_department_id: DepartmentId;
  role: Role;
  /** Further departments the person belongs to (never includes the primary one). */
  secondary_department_ids: DepartmentId[];
  status: UserStatus;
  /** Job title, may be empty. */
  title: string;
  updated_at: i64;
  /** Lower-case sign-in handle, unique. */
  username: string;
}

/** A person's account (staff or guest). */
export type UserId = string;

export interface UserPage {
  items: User[];
  /** Pass as `cursor` for the next page; absent on the last page. */
  next_cursor?: string | null;
}

/** Whether an account can sign in. */
export type UserStatus = "active" | "disabled";

export type i64 = number;
