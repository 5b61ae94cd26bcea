// Types of the public API as the client uses them. They come from api-types.ts, which is
// generated from docs/openapi.json's schemas (a Rust test keeps both current), so a change to
// a schema that the client does not follow fails `tsc`.

import type { EventFrame, ServerMessage } from "./api-types";

export type {
  AuditEntry,
  AuditPage,
  ChannelKind,
  ClientMessage,
  Conversation,
  ConversationItem,
  ConversationKind,
  Department,
  DepartmentDetail,
  Draft,
  ErrorBody,
  ErrorCode,
  EventData,
  EventFrame,
  FileInfo,
  FileKind,
  FollowedThread,
  LinkedDepartment,
  Me,
  Member,
  MemberRole,
  Mentions,
  Message,
  MessagePage,
  MyState,
  Org,
  PresenceStatus,
  Reaction,
  Role,
  SearchHit,
  SearchPage,
  Session,
  ThreadPage,
  ThreadSummary,
  User,
} from "./api-types";

/** Every id on the wire (users, conversations, messages, …) is a UUID string. */
export type Id = string;

/** Any frame the server sends on the WebSocket. */
export type ServerFrame = EventFrame | ServerMessage;
