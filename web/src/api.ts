// The HTTP API (docs/openapi.json). Browsers authenticate with the session cookie and echo
// the CSRF cookie in `X-CSRF-Token` on every state-changing request.
import type {
  Conversation,
  ConversationItem,
  Department,
  Draft,
  FileInfo,
  FollowedThread,
  Id,
  Me,
  Member,
  Message,
  MessagePage,
  Session,
  ThreadPage,
  User,
} from "./types";

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

function csrfToken(): string | undefined {
  const m = document.cookie.match(/(?:^|;\s*)qiao_csrf=([^;]+)/);
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

export async function request<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
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
  } catch {
    throw new ApiError(0, "network", "The server cannot be reached.");
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: any = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: a proxy error page */
  }
  if (!res.ok) {
    throw new ApiError(
      res.status,
      json?.code ?? "http_" + res.status,
      json?.message ?? res.statusText,
      json?.retry_after,
      json?.field,
      json?.request_id,
    );
  }
  return json as T;
}

const get = <T>(path: string, query?: Query) => request<T>("GET", path, undefined, query);
const post = <T>(path: string, body: unknown = {}) => request<T>("POST", path, body);
const patch = <T>(path: string, body: unknown) => request<T>("PATCH", path, body);
const put = <T>(path: string, body: unknown = {}) => request<T>("PUT", path, body);
const del = <T>(path: string) => request<T>("DELETE", path);

export const api = {
  setupStatus: () => get<{ setup_complete: boolean; org_name: string }>("/setup"),
  setup: (b: { token: string; username: string; display_name: string; password: string; email?: string; org_name?: string }) =>
    post<unknown>("/setup", { ...b, mode: "cookie", device_name: deviceName() }),
  signIn: (login: string, password: string) =>
    post<unknown>("/auth/sign-in", { login, password, mode: "cookie", device_name: deviceName() }),
  signOut: () => post<void>("/auth/sign-out"),
  me: () => get<Me>("/me"),
  updateMe: (b: { display_name?: string; title?: string }) => patch<User>("/me", b),
  changePassword: (current_password: string, new_password: string) =>
    post<void>("/me/password", { current_password, new_password }),
  sessions: () => get<{ items: Session[] }>("/me/sessions"),
  revokeSession: (id: Id) => del<void>(`/me/sessions/${id}`),
  revokeOthers: () => post<{ revoked: number }>("/me/sessions/revoke-others"),

  conversations: () => get<{ items: ConversationItem[] }>("/conversations"),
  conversation: (id: Id) => get<ConversationItem>(`/conversations/${id}`),
  browse: (q: string, cursor?: string | null) =>
    get<{ items: ConversationItem[]; next_cursor?: string | null }>("/conversations/browse", { q, cursor, limit: 50 }),
  createChannel: (b: { name: string; kind: string; topic?: string; member_ids?: Id[] }) =>
    post<ConversationItem>("/conversations", b),
  openDm: (user_id: Id) => post<ConversationItem>("/conversations/dm", { user_id }),
  createGroup: (user_ids: Id[], name?: string) => post<ConversationItem>("/conversations/group", { user_ids, name }),
  updateConversation: (id: Id, b: { name?: string; topic?: string; description?: string }) =>
    patch<Conversation>(`/conversations/${id}`, b),
  join: (id: Id) => post<unknown>(`/conversations/${id}/join`),
  leave: (id: Id) => post<unknown>(`/conversations/${id}/leave`),
  archive: (id: Id) => post<unknown>(`/conversations/${id}/archive`),
  unarchive: (id: Id) => post<unknown>(`/conversations/${id}/unarchive`),
  members: (id: Id, cursor?: string | null) =>
    get<{ items: Member[]; next_cursor?: string | null }>(`/conversations/${id}/members`, { cursor, limit: 200 }),
  addMembers: (id: Id, user_ids: Id[]) => post<unknown>(`/conversations/${id}/members`, { user_ids }),
  removeMember: (id: Id, user: Id) => del<void>(`/conversations/${id}/members/${user}`),
  history: (id: Id, q: { before?: number; after?: number; around?: Id; limit?: number }) =>
    get<MessagePage>(`/conversations/${id}/messages`, { limit: 50, ...q }),
  send: (id: Id, body: string, client_key: string, thread_root_id?: Id | null, file_ids: Id[] = []) =>
    post<Message>(`/conversations/${id}/messages`, { body, client_key, thread_root_id: thread_root_id ?? undefined, file_ids }),
  library: (id: Id, q: { kind?: string; sort?: string; cursor?: string | null }) =>
    get<{ items: FileInfo[]; next_cursor?: string | null }>(`/conversations/${id}/files`, { limit: 100, ...q }),
  deleteFile: (id: Id) => del<void>(`/files/${id}`),
  drafts: () => get<{ items: Draft[] }>("/me/drafts"),
  saveDraft: (id: Id, body: string, thread_root_id?: Id | null) =>
    put<Draft>(`/conversations/${id}/draft`, { body, thread_root_id: thread_root_id ?? undefined }),
  markRead: (id: Id, seq?: number) => post<{ read_seq: number }>(`/conversations/${id}/read`, { seq }),
  markUnread: (id: Id, message_id: Id) => post<{ read_seq: number }>(`/conversations/${id}/unread`, { message_id }),
  edit: (id: Id, body: string) => patch<Message>(`/messages/${id}`, { body }),
  deleteMessage: (id: Id) => del<unknown>(`/messages/${id}`),
  react: (id: Id, emoji: string, add?: boolean) =>
    post<{ added: boolean; message: Message }>(`/messages/${id}/reactions`, add === undefined ? { emoji } : { emoji, add }),
  thread: (id: Id, q: { before?: number; after?: number; limit?: number } = {}) =>
    get<ThreadPage>(`/messages/${id}/thread`, { limit: 100, ...q }),

  followedThreads: () => get<{ items: FollowedThread[] }>("/threads", { limit: 200 }),
  threadRead: (rootId: Id) => post<unknown>(`/messages/${rootId}/thread/read`),
  followThread: (rootId: Id) => put<unknown>(`/messages/${rootId}/thread/follow`),
  unfollowThread: (rootId: Id) => del<unknown>(`/messages/${rootId}/thread/follow`),

  search: (q: string, offset = 0) =>
    get<{ items: { message: Message; snippet: { text: string; highlight: boolean }[] }[]; total: number; next_offset?: number | null }>(
      "/search",
      // before:/after: dates are the searcher's days.
      { q, offset, limit: 20, tz_offset_minutes: -new Date().getTimezoneOffset() },
    ),

  users: (q: { q?: string; department_id?: Id; recursive?: boolean; include_disabled?: boolean; cursor?: string | null; limit?: number }) =>
    get<{ items: User[]; next_cursor?: string | null }>("/users", { limit: 100, ...q }),
  user: (id: Id) => get<User>(`/users/${id}`),
  createUser: (b: { username: string; display_name: string; email?: string; title?: string; role?: string; primary_department_id?: Id; password?: string }) =>
    post<{ user: User; temporary_password?: string | null }>("/users", b),
  updateUser: (id: Id, b: Record<string, unknown>) => patch<User>(`/users/${id}`, b),
  disableUser: (id: Id) => post<User>(`/users/${id}/disable`),
  enableUser: (id: Id) => post<User>(`/users/${id}/enable`),
  resetPassword: (id: Id) => post<{ temporary_password: string }>(`/users/${id}/reset-password`),

  departments: () => get<{ items: Department[] }>("/departments"),
  createDepartment: (name: string, parent_id: Id) => post<Department>("/departments", { name, parent_id }),
  updateDepartment: (id: Id, b: { name?: string; parent_id?: Id }) => patch<Department>(`/departments/${id}`, b),
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


function deviceName(): string {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "Edge" : /Chrom/.test(ua) ? "Chrome" : /Firefox/.test(ua) ? "Firefox" : /Safari/.test(ua) ? "Safari" : "Browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Mac/.test(ua) ? "macOS" : /Windows/.test(ua) ? "Windows" : /Linux/.test(ua) ? "Linux" : "";
  return `${browser}${os ? " on " + os : ""} (web)`;
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
      let json: any;
      try {
        json = JSON.parse(xhr.responseText);
      } catch {
        json = undefined;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(json as FileInfo);
      else
        reject(
          new ApiError(xhr.status, json?.code ?? "http_" + xhr.status, json?.message ?? xhr.statusText, json?.retry_after, json?.field, json?.request_id),
        );
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
