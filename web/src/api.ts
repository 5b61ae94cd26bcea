// The HTTP API (docs/openapi.json). Browsers authenticate with the session cookie and echo
// the CSRF cookie in `X-CSRF-Token` on every state-changing request.
import type {
  Conversation,
  ConversationItem,
  Department,
  Draft,
  FileInfo,
  Id,
  Me,
  Member,
  Message,
  MessagePage,
  ThreadPage,
  User,
} from "./types";
import type * as T from "./api-types";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter?: number | null,
    readonly field?: string | null,
    /** The server's id for the request: quoted when reporting a problem. */
    readonly requestId?: string | null,
  ) {
    super(message);
  }
  /** Worth retrying later with the same request (network trouble, overload, restart). */
  get transient(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

/** The error a failed response stands for: its `ErrorBody`, or its status when the body is not one (a proxy's page). */
function errorFrom(status: number, statusText: string, body: unknown): ApiError {
  const b: Partial<T.ErrorBody> = body && typeof body === "object" ? body : {};
  return new ApiError(status, b.code ?? "http_" + status, b.message ?? statusText, b.retry_after, b.field, b.request_id);
}

function csrfToken(): string | undefined {
  // Over https the cookie is `__Host-qiao_csrf` (only this host can set it); a plain
  // `qiao_csrf` then may be another subdomain's plant, so the prefixed one wins.
  const m = document.cookie.match(/(?:^|;\s*)__Host-qiao_csrf=([^;]+)/) ?? document.cookie.match(/(?:^|;\s*)qiao_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : undefined;
}

export function hasSessionHint(): boolean {
  return csrfToken() !== undefined;
}

type Query = Record<string, string | number | boolean | undefined | null>;

function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") p.set(k, String(v));
  const s = p.toString();
  return s ? `${path}?${s}` : path;
}

/** How long a JSON request may take before it fails as a network error (the server's own
 * limit is shorter; uploads go another way). */
const REQUEST_TIMEOUT_MS = 60_000;

/** What an API path may hold: words and ids, never `..`, a `?` or an escape. Ids reach paths
 * from links as well as from the server; one steering a request (with this session's CSRF
 * token) to another endpoint fails here instead. */
const SAFE_PATH = /^(\/[A-Za-z0-9_-]+)+$/;

function checkPath(path: string): void {
  if (!SAFE_PATH.test(path)) throw new ApiError(404, "not_found", "No such page.");
}

export async function request<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
  checkPath(path);
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") {
    const t = csrfToken();
    if (t) headers["X-CSRF-Token"] = t;
  }
  let res: Response;
  try {
    res = await fetch(withQuery(`/api/v1${path}`, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      // A request on a connection that died (a laptop slept mid-request) must end, not hang.
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (e) {
    // No answer in time (an overloaded server, a connection that died) is not the same as
    // no way to the server: a send waits for the latter as long as it takes.
    if (e instanceof DOMException && e.name === "TimeoutError") throw new ApiError(0, "timeout", "The server did not answer in time.");
    throw new ApiError(0, "network", "The server cannot be reached.");
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: a proxy error page */
  }
  if (!res.ok) {
    throw errorFrom(res.status, res.statusText, json);
  }
  return json as T;
}

const get = <T>(path: string, query?: Query) => request<T>("GET", path, undefined, query);
const post = <T>(path: string, body: unknown = {}) => request<T>("POST", path, body);
const patch = <T>(path: string, body: unknown) => request<T>("PATCH", path, body);
const put = <T>(path: string, body: unknown = {}) => request<T>("PUT", path, body);
const del = <T>(path: string) => request<T>("DELETE", path);

export const api = {
  setupStatus: () => get<T.SetupStatus>("/setup"),
  setup: (b: Omit<T.SetupRequest, "mode" | "device_name">) =>
    post<T.SignInResponse>("/setup", { ...b, mode: "cookie", device_name: deviceName() } satisfies T.SetupRequest),
  signIn: (login: string, password: string) =>
    post<T.SignInResponse>("/auth/sign-in", { login, password, mode: "cookie", device_name: deviceName() } satisfies T.SignInRequest),
  signOut: () => post<void>("/auth/sign-out"),
  me: () => get<Me>("/me"),
  updateMe: (b: T.UpdateProfile) => patch<User>("/me", b),
  changePassword: (current_password: string, new_password: string) =>
    post<void>("/me/password", { current_password, new_password } satisfies T.ChangePassword),
  sessions: () => get<T.SessionList>("/me/sessions"),
  revokeSession: (id: Id) => del<void>(`/me/sessions/${id}`),
  revokeOthers: () => post<T.RevokedCount>("/me/sessions/revoke-others"),

  conversations: () => get<T.ConversationList>("/conversations"),
  conversation: (id: Id) => get<ConversationItem>(`/conversations/${id}`),
  browse: (q: string, cursor?: string | null) =>
    get<T.ConversationPage>("/conversations/browse", { q, cursor, limit: 50 }),
  createChannel: (b: T.CreateChannelRequest) => post<ConversationItem>("/conversations", b),
  openDm: (user_id: Id) => post<ConversationItem>("/conversations/dm", { user_id } satisfies T.OpenDmRequest),
  createGroup: (user_ids: Id[], name?: string) =>
    post<ConversationItem>("/conversations/group", { user_ids, name } satisfies T.CreateGroupRequest),
  updateConversation: (id: Id, b: T.UpdateConversationRequest) => patch<Conversation>(`/conversations/${id}`, b),
  join: (id: Id) => post<ConversationItem>(`/conversations/${id}/join`),
  leave: (id: Id) => post<void>(`/conversations/${id}/leave`),
  archive: (id: Id) => post<Conversation>(`/conversations/${id}/archive`),
  unarchive: (id: Id) => post<Conversation>(`/conversations/${id}/unarchive`),
  members: (id: Id, cursor?: string | null) =>
    get<T.MemberPage>(`/conversations/${id}/members`, { cursor, limit: 200 }),
  addMembers: (id: Id, user_ids: Id[]) =>
    post<T.MemberList>(`/conversations/${id}/members`, { user_ids } satisfies T.AddMembersRequest),
  removeMember: (id: Id, user: Id) => del<void>(`/conversations/${id}/members/${user}`),
  history: (id: Id, q: { before?: number; after?: number; around?: Id; limit?: number }) =>
    get<MessagePage>(`/conversations/${id}/messages`, { limit: 50, ...q }),
  send: (id: Id, body: string, client_key: string, thread_root_id?: Id | null, file_ids: Id[] = []) =>
    post<Message>(`/conversations/${id}/messages`, {
      body,
      client_key,
      thread_root_id: thread_root_id ?? undefined,
      file_ids,
    } satisfies T.SendMessageRequest),
  library: (id: Id, q: { kind?: string; sort?: string; cursor?: string | null }) =>
    get<T.FilePage>(`/conversations/${id}/files`, { limit: 100, ...q }),
  deleteFile: (id: Id) => del<void>(`/files/${id}`),
  drafts: () => get<T.DraftList>("/me/drafts"),
  saveDraft: (id: Id, body: string, thread_root_id?: Id | null) =>
    put<Draft>(`/conversations/${id}/draft`, { body, thread_root_id: thread_root_id ?? undefined } satisfies T.SaveDraftRequest),
  markRead: (id: Id, seq?: number) => post<T.ReadPosition>(`/conversations/${id}/read`, { seq } satisfies T.MarkReadRequest),
  markUnread: (id: Id, message_id: Id) =>
    post<T.ReadPosition>(`/conversations/${id}/unread`, { message_id } satisfies T.MarkUnreadRequest),
  edit: (id: Id, body: string) => patch<Message>(`/messages/${id}`, { body } satisfies T.EditMessageRequest),
  deleteMessage: (id: Id) => del<void>(`/messages/${id}`),
  react: (id: Id, emoji: string, add?: boolean) =>
    post<T.ReactionToggled>(`/messages/${id}/reactions`, (add === undefined ? { emoji } : { emoji, add }) satisfies T.ReactionRequest),
  thread: (id: Id, q: { before?: number; after?: number; limit?: number } = {}) =>
    get<ThreadPage>(`/messages/${id}/thread`, { limit: 100, ...q }),

  followedThreads: (cursor?: string | null) => get<T.FollowedThreadList>("/threads", { limit: 200, cursor }),
  threadRead: (rootId: Id) => post<T.ThreadState>(`/messages/${rootId}/thread/read`),
  followThread: (rootId: Id) => put<T.ThreadState>(`/messages/${rootId}/thread/follow`),
  unfollowThread: (rootId: Id) => del<T.ThreadState>(`/messages/${rootId}/thread/follow`),

  search: (q: string, offset = 0) =>
    get<T.SearchPage>(
      "/search",
      // before:/after: dates are the searcher's days.
      { q, offset, limit: 20, tz_offset_minutes: -new Date().getTimezoneOffset() },
    ),

  users: (q: { q?: string; department_id?: Id; recursive?: boolean; include_disabled?: boolean; cursor?: string | null; limit?: number }) =>
    get<T.UserPage>("/users", { limit: 100, ...q }),
  user: (id: Id) => get<User>(`/users/${id}`),
  createUser: (b: T.CreateUserRequest) => post<T.CreatedUser>("/users", b),
  updateUser: (id: Id, b: T.UpdateUserRequest) => patch<User>(`/users/${id}`, b),
  disableUser: (id: Id) => post<User>(`/users/${id}/disable`),
  enableUser: (id: Id) => post<User>(`/users/${id}/enable`),
  resetPassword: (id: Id) => post<T.TemporaryPassword>(`/users/${id}/reset-password`),

  departments: () => get<T.DepartmentList>("/departments"),
  createDepartment: (name: string, parent_id: Id) =>
    post<Department>("/departments", { name, parent_id } satisfies T.CreateDepartment),
  updateDepartment: (id: Id, b: T.UpdateDepartment) => patch<Department>(`/departments/${id}`, b),
  deleteDepartment: (id: Id) => del<void>(`/departments/${id}`),
};
/** Every member of a conversation (its pages of 200, up to 25 of them). */
export async function allMembers(id: Id): Promise<Member[]> {
  const all: Member[] = [];
  let cursor: string | null | undefined;
  for (let i = 0; i < 25; i++) {
    const page = await api.members(id, cursor);
    all.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return all;
}


/** The name this browser's session is listed under: product names only, read the same in any
 * language (it is stored with the session, whatever language the person switches to). */
function deviceName(): string {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "Edge" : /Chrom/.test(ua) ? "Chrome" : /Firefox/.test(ua) ? "Firefox" : /Safari/.test(ua) ? "Safari" : "Browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Mac/.test(ua) ? "macOS" : /Windows/.test(ua) ? "Windows" : /Linux/.test(ua) ? "Linux" : "";
  return os ? `${browser} · ${os}` : browser;
}

export const fileUrl = (id: Id) => `/api/v1/files/${id}/content`;
export const thumbnailUrl = (id: Id, size: "small" | "large" = "small") => `/api/v1/files/${id}/thumbnail?size=${size}`;

export interface UploadHandle {
  promise: Promise<FileInfo>;
  cancel(): void;
}

/** How long an upload may go without sending a byte before it is given up as stalled: a
 * connection that died mid-upload must end, not hang. Once the last byte is sent the wait for
 * the answer is the server's (storing and thumbnailing a large file may take a while, and a
 * retry then would store it twice). */
export const UPLOAD_STALL_MS = 60_000;

/** Uploads a file with progress (XMLHttpRequest, which reports upload progress) and cancel. */
export function uploadFile(
  conversationId: Id,
  file: Blob,
  name: string,
  onProgress: (fraction: number) => void,
  opts: { voice?: boolean; durationMs?: number } = {},
): UploadHandle {
  const xhr = new XMLHttpRequest();
  const q = new URLSearchParams({ name });
  if (opts.voice) q.set("voice", "true");
  if (opts.durationMs !== undefined) q.set("duration_ms", String(Math.round(opts.durationMs)));
  const promise = new Promise<FileInfo>((resolve, reject) => {
    checkPath(`/conversations/${conversationId}/files`);
    xhr.open("POST", `/api/v1/conversations/${conversationId}/files?${q}`);
    const t = csrfToken();
    if (t) xhr.setRequestHeader("X-CSRF-Token", t);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    let stalled = false;
    let sent = false;
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    const progressed = () => {
      clearTimeout(watchdog);
      if (sent) return;
      watchdog = setTimeout(() => {
        stalled = true;
        xhr.abort();
      }, UPLOAD_STALL_MS);
    };
    xhr.upload.onprogress = (e) => {
      progressed();
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.upload.onload = () => {
      sent = true;
      clearTimeout(watchdog);
    };
    xhr.onloadend = () => clearTimeout(watchdog);
    xhr.onload = () => {
      let json: unknown;
      try {
        json = JSON.parse(xhr.responseText);
      } catch {
        json = undefined;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(json as FileInfo);
      else
        reject(errorFrom(xhr.status, xhr.statusText, json));
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "The server cannot be reached."));
    xhr.onabort = () =>
      reject(
        stalled
          ? new ApiError(0, "stalled", "The upload stopped making progress; check the connection and retry.")
          : new ApiError(0, "cancelled", "Cancelled."),
      );
    xhr.send(file);
    progressed();
  });
  return { promise, cancel: () => xhr.abort() };
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
}
