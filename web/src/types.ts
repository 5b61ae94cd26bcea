// Types of the public API (docs/openapi.json), as the client uses them.

export type Id = string;
export type Role = "owner" | "admin" | "department_admin" | "member" | "guest";
export type ConversationKind = "public" | "private" | "announcement" | "dm" | "group" | "department" | "project";
export type MemberRole = "admin" | "poster" | "member";
export type PresenceStatus = "online" | "away" | "dnd" | "offline";

export interface User {
  id: Id;
  username: string;
  display_name: string;
  email?: string | null;
  title: string;
  role: Role;
  status: "active" | "disabled";
  primary_department_id: Id;
  secondary_department_ids: Id[];
  managed_department_ids: Id[];
  must_change_password: boolean;
  created_at: number;
  updated_at: number;
}

export interface Department {
  id: Id;
  name: string;
  parent_id?: Id | null;
  created_at: number;
  updated_at: number;
}

export interface LinkedDepartment {
  department_id: Id;
  include_subdepartments: boolean;
}

export interface Conversation {
  id: Id;
  kind: ConversationKind;
  name: string;
  topic: string;
  description: string;
  linked_departments: LinkedDepartment[];
  participant_ids: Id[];
  last_seq: number;
  member_count: number;
  created_at: number;
  updated_at: number;
  archived_at?: number | null;
  created_by?: Id | null;
  department_id?: Id | null;
  last_message_at?: number | null;
}

export interface MyState {
  role: MemberRole;
  direct: boolean;
  via_department: boolean;
  read_seq: number;
  unread_count: number;
  mention_count: number;
}

export interface ConversationItem {
  conversation: Conversation;
  me?: MyState | null;
}

export interface Reaction {
  emoji: string;
  count: number;
  user_ids: Id[];
}

export interface ThreadSummary {
  reply_count: number;
  participant_ids: Id[];
  last_reply_at?: number | null;
}

export interface Mentions {
  user_ids: Id[];
  department_ids: Id[];
  channel: boolean;
}

export type FileKind = "image" | "audio" | "video" | "document" | "other";

export interface FileInfo {
  id: Id;
  conversation_id: Id;
  uploader_id: Id;
  message_id?: Id | null;
  name: string;
  mime: string;
  kind: FileKind;
  size: number;
  width?: number | null;
  height?: number | null;
  duration_ms?: number | null;
  voice: boolean;
  thumbnail: boolean;
  created_at: number;
}

export interface Message {
  id: Id;
  conversation_id: Id;
  seq: number;
  sender_id: Id;
  body: string;
  mentions: Mentions;
  created_at: number;
  reactions: Reaction[];
  client_key?: string | null;
  deleted_at?: number | null;
  edited_at?: number | null;
  pinned_at?: number | null;
  pinned_by?: Id | null;
  thread?: ThreadSummary | null;
  thread_root_id?: Id | null;
  files?: FileInfo[];
}

export interface MessagePage {
  items: Message[];
  more_before: boolean;
  more_after: boolean;
}

/** A thread I follow (`GET /api/v1/threads`). */
export interface FollowedThread {
  root_id: Id;
  root: Message;
  conversation_id: Id;
  read_seq: number;
  unread_count: number;
  mention_count: number;
  last_reply_at?: number | null;
  last_reply_seq?: number | null;
}

export interface ThreadPage extends MessagePage {
  root: Message;
}

export interface Member {
  user_id: Id;
  role: MemberRole;
  direct: boolean;
  via_department: boolean;
  joined_at: number;
}

export interface Session {
  id: Id;
  kind: "cookie" | "bearer";
  device_name: string;
  ip: string;
  created_at: number;
  last_used_at: number;
  expires_at: number;
  current: boolean;
}

export interface Me {
  user: User;
  org_name: string;
  session_id: Id;
  csrf_token?: string | null;
}

export type EventData =
  | { type: "org.updated"; org: { name: string } }
  | { type: "user.created"; user: User }
  | { type: "user.updated"; user: User }
  | { type: "department.created"; department: Department }
  | { type: "department.updated"; department: Department }
  | { type: "department.deleted"; department_id: Id }
  | { type: "session.revoked"; session_id: Id }
  | { type: "conversation.created"; conversation: Conversation; members: Member[] }
  | { type: "conversation.updated"; conversation: Conversation }
  | { type: "members.added"; conversation: Conversation; members: Member[] }
  | { type: "members.removed"; conversation_id: Id; user_ids: Id[] }
  | { type: "member.updated"; conversation_id: Id; member: Member }
  | { type: "message.created"; message: Message; thread?: ThreadSummary | null }
  | { type: "message.updated"; message: Message }
  | { type: "message.deleted"; message_id: Id; deleted_at: number; thread_root_id?: Id | null }
  | { type: "reaction.added"; message_id: Id; emoji: string; user_id: Id }
  | { type: "reaction.removed"; message_id: Id; emoji: string; user_id: Id }
  | { type: "conversation.removed"; conversation_id: Id }
  | { type: "read.updated"; conversation_id: Id; read_seq: number }
  | { type: "thread.state"; conversation_id: Id; root_id: Id; following: boolean; read_seq: number }
  | { type: "draft.updated"; draft: Draft };

/** Unsent text in a conversation or thread, kept on the server for every device. */
export interface Draft {
  conversation_id: Id;
  thread_root_id?: Id | null;
  /** Empty when cleared. */
  body: string;
  updated_at: number;
}

export interface EventFrame {
  op: "event";
  pos: number;
  at: number;
  conversation_id?: Id | null;
  seq?: number | null;
  data: EventData;
}

export type ServerFrame =
  | EventFrame
  | { op: "ready"; protocol: number; user_id: Id; session_id: Id; head: number; resumed: boolean; heartbeat_ms: number }
  | { op: "resync"; head: number; reason: "too_far_behind" | "expired" | "unknown_position" }
  | { op: "pong"; nonce?: string | null }
  | { op: "presence"; user_id: Id; status: PresenceStatus }
  | { op: "typing"; conversation_id: Id; user_id: Id; thread_root_id?: Id | null }
  | { op: "error"; code: string; message: string };
