// The one store: the model (model.ts) plus what the UI needs, and the actions that talk to
// the server. Components subscribe with selectors, so an event re-renders only what it touches.
import { create } from "zustand";
import { allMembers, api, ApiError, hasSessionHint } from "../api";
import { errorText } from "../errors";
import { translate } from "../i18n";
import { forgetAttachments } from "./attachments";
import { openEdits } from "./edits";
import { Gateway, type ConnectionState } from "../realtime";
import { useRoute } from "../router";
import type { Draft, EventData, EventFrame, FileInfo, Id, Message, PresenceStatus, ServerFrame, User } from "../types";
import {
  addMessage,
  applyEvent,
  emptyModel,
  loadConversations,
  dropSettled,
  loadFollowed,
  moreFollowed,
  refreshFollowedFirstPage,
  mapMessage,
  markReadLocal,
  mergePage,
  toggleReaction,
  type Model,
  type Pending,
} from "./model";
import { MAX_ATTEMPTS, newPending, retryDelay } from "./outbox";
import { EventHold } from "./hold";
import { PresenceInterest } from "./presence";

export interface AppState extends Model {
  phase: "loading" | "setup" | "signin" | "password" | "ready";
  connection: ConnectionState;
  /** Users typing, per conversation (or `conv:root` for threads): user id → until (ms). */
  typing: Record<string, Record<Id, number>>;
  presence: Record<Id, PresenceStatus>;
  drafts: Record<string, string>;
  /** Bumped by each reload of state (after a resync, events were missed). */
  reloads: number;
  /** Why the app is not signed in or not started (drawn with `errorText`). */
  error: unknown;
}

const DRAFTS_KEY = "qiao.drafts";

/** What the browser keeps under `key` (local storage unless another is named). */
function loadStored<T>(key: string, empty: T, storage: () => Storage = () => localStorage): T {
  try {
    return JSON.parse(storage().getItem(key) ?? "null") ?? empty;
  } catch {
    return empty;
  }
}

function storeLocal(key: string, value: unknown, storage: () => Storage = () => localStorage): void {
  try {
    storage().setItem(key, JSON.stringify(value));
  } catch {
    /* storage full or disabled: kept in memory only */
  }
}

export const useApp = create<AppState>(() => ({
  ...emptyModel(),
  phase: "loading",
  connection: "connecting",
  typing: {},
  presence: {},
  drafts: loadStored<Record<string, string>>(DRAFTS_KEY, {}),
  reloads: 0,
  error: null,
}));

const set = useApp.setState;
const get = useApp.getState;

/** Applies a pure model update. */
function update(f: (m: Model) => Model): void {
  set((s) => f(s) as Partial<AppState>);
}

let gateway: Gateway | null = null;

/** Decides what to show first: setup, sign-in, or the app. */
export async function boot(): Promise<void> {
  try {
    // Signed-in browsers carry the (readable) CSRF cookie beside the HttpOnly session cookie;
    // without it there is no session to ask about.
    if (!hasSessionHint()) throw new ApiError(401, "unauthenticated", "not signed in");
    const me = await api.me();
    bootRetry = 0;
    set({ me: me.user, sessionId: me.session_id, orgName: me.org_name, users: { [me.user.id]: me.user }, error: null });
    await startSession();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      const status = await api.setupStatus().catch(() => ({ setup_complete: true, org_name: "" }));
      set({ phase: status.setup_complete ? "signin" : "setup", orgName: status.org_name, error: null });
    } else if (e instanceof ApiError && e.transient) {
      // The server is down or unreachable: not a reason to sign in again. Keep trying.
      set({ error: errorText(e) });
      bootRetry = Math.min(30_000, bootRetry * 2 || 1000);
      setTimeout(() => void boot(), bootRetry);
    } else {
      set({ phase: "signin", error: errorText(e) });
    }
  }
}

let bootRetry = 0;

/** After choosing a new password (required after an administrator's reset). */
export async function passwordChanged(): Promise<void> {
  const me = await api.me();
  set({ me: me.user, users: { ...get().users, [me.user.id]: me.user } });
  await startSession();
}

export async function signedIn(): Promise<void> {
  const me = await api.me();
  set({
    ...emptyModel(),
    me: me.user,
    sessionId: me.session_id,
    orgName: me.org_name,
    users: { [me.user.id]: me.user },
    error: null,
  });
  await startSession();
}

async function startSession(): Promise<void> {
  claimDrafts(get().me?.id);
  restoreOutbox(get().me?.id);
  if (get().me?.must_change_password) {
    set({ phase: "password" });
    return;
  }
  // Guests may not browse the directory or the departments: they know the people they share
  // a conversation with, loaded with the conversations.
  if (!isGuest()) await Promise.all([loadDirectory(), loadDepartments()]);
  set({ phase: "ready" });
  gateway?.stop();
  gateway = new Gateway(
    {
      onReady: (f) => {
        // A client that had state (a resync, or a reconnect too far behind) reloads all of
        // it; a fresh start has just read the directory.
        if (!f.resumed) startOver(f.head, get().lastPos > 0);
        else retryUnsavedDrafts();
        flushOutbox();
        flushReads();
        presenceInterest.connected();
        lastActive = Date.now(); // the server counts a new connection as activity
      },
      onFrame,
      onState: (connection) => set({ connection }),
      onUnauthenticated: () => void signOutLocal(true),
    },
    () => (get().lastPos > 0 ? get().lastPos : null),
  );
  gateway.start();
  trackActivity();
}

// ---- loads that events must not overtake (hold.ts) ----

/** Runs a load under the hold. If events had to be let through before it finished (it ran
 * past the hold's bounds), what it applied may be older than they are: it runs again (twice
 * at most), reading what they changed. */
async function held<T>(load: () => Promise<T>): Promise<T> {
  for (let run = 0; ; run++) {
    const mark = hold.overflows;
    const out = await hold.during(load);
    if (hold.overflows === mark || run === 2) return out;
  }
}

const hold = new EventHold<EventFrame>((f) => applyEventFrame(f));

// ---- reload (a fresh start, or a resync) ----

/** The server said where to start from (a fresh start, or a resync): that is the position
 * now — also when it is behind the one here (a server restored from a backup), or every
 * event up to the old one would be dropped as seen — and what came before is reloaded. */
function startOver(head: number, everything: boolean): void {
  // Behind this client: another history (a restored server). What is held from the old
  // connection belongs to the old one, and must not be applied as new.
  if (head < get().lastPos) hold.clear();
  update((m) => ({ ...m, lastPos: head }));
  void reload(head, everything);
}

/** The head of the reload under way, if any, and a later one asked for meanwhile. */
let reloadingTo: number | null = null;
let reloadAgain: { head: number; everything: boolean } | null = null;

/**
 * Reloads what HTTP knows (every conversation, the departments and my own account; with
 * `everything`, also the directory, which a resync may have missed changes to), then the
 * timeline and threads on screen; events after `head` follow. Retried with backoff until it
 * succeeds (or the session ends), one at a time: the server's `ready` and `resync` for one
 * gap ask for the same reload.
 */
async function reload(head: number, everything: boolean): Promise<void> {
  if (reloadingTo !== null) {
    // Another head (later, or an earlier one from a restored server): read again after this.
    if (head !== reloadingTo) reloadAgain = { head, everything: everything || !!reloadAgain?.everything };
    return;
  }
  reloadingTo = head;
  try {
    for (let attempt = 0; gateway; attempt++) {
      try {
        await held(() => reloadOnce(everything));
        break;
      } catch {
        await new Promise((r) => setTimeout(r, Math.min(30_000, 1000 * 2 ** attempt)));
      }
    }
  } finally {
    reloadingTo = null;
  }
  const again = reloadAgain;
  reloadAgain = null;
  if (again && gateway) await reload(again.head, again.everything);
}

async function reloadOnce(everything: boolean): Promise<void> {
  // Read under the hold like the rest (a draft.updated committed after this read waits).
  const drafts = fetchDrafts();
  set((s) => ({ reloads: s.reloads + 1 }));
  // The departments and my account are small: read again even on a fresh start (they were
  // read before the connection's head); the directory, which may be large, only on a resync.
  const staff = !isGuest();
  // The conversations are applied as soon as they arrive: a large directory may take longer
  // than events wait (hold.ts), and events let through meanwhile must land on this list, not
  // be overwritten by it afterwards.
  const conversations = api.conversations().then((list) =>
    // (The position was set when the reload was asked for: `startOver`.)
    update((m) => loadConversations(m, list.items)),
  );
  await Promise.all([
    conversations,
    drafts,
    loadFollowedNow(),
    everything && staff ? loadDirectory() : undefined,
    staff ? loadDepartments() : undefined,
    refreshMe(),
  ]);
  // A guest hears of no profile changes (those events go to staff): after a resync it reads
  // again the people it knows, not only those it does not.
  if (!staff) void loadPeopleOf(Object.keys(get().conversations), [], everything);
  // The timeline and thread on screen are read again (events before `head` are not replayed);
  // others load when they are opened.
  const route = useRoute.getState().route;
  set({ timelines: {}, threads: {} });
  if (route.name !== "conversation") return;
  // One that is gone, or no longer visible, shows as such when opened; other failures retry.
  const visible = (e: unknown) => {
    if (!(e instanceof ApiError && (e.status === 403 || e.status === 404))) throw e;
  };
  await Promise.all([
    loadLatest(route.id).catch(visible),
    route.thread ? openThread(route.thread).catch(visible) : undefined,
  ]);
}

/** The threads I follow, read again (events wait meanwhile when called from a reload). */
async function loadFollowedNow(): Promise<void> {
  const page = await api.followedThreads();
  update((m) => loadFollowed(m, page.items, page.next_cursor ?? null));
}

/** The first page again, kept with the older pages loaded (a reply may have moved one of
 * them up). */
async function refreshFollowedFirst(): Promise<void> {
  const page = await api.followedThreads();
  update((m) => refreshFollowedFirstPage(m, page.items, page.next_cursor ?? null));
}

/** The next, older page of the threads I follow (events wait meanwhile). */
export async function loadOlderThreads(): Promise<void> {
  const cursor = get().followedMore;
  if (!cursor) return;
  await held(async () => {
    const page = await api.followedThreads(cursor);
    // A reload meanwhile started the list again: its cursor is the one to follow.
    update((m) => (m.followedMore === cursor ? moreFollowed(m, page.items, page.next_cursor ?? null) : m));
  });
}

/** The list of followed threads, read again when an event said it lacks one (at most one
 * read at a time; another asked for meanwhile follows it). */
let followedLoading: Promise<void> | null = null;
let followedAgain = false;
function refreshFollowed(): void {
  if (followedLoading) {
    followedAgain = true;
    return;
  }
  followedLoading = held(loadFollowedNow)
    .catch(() => {
      // Tried again shortly (a newly followed thread would be missing until the next reload).
      setTimeout(() => gateway && refreshFollowed(), 5000);
    })
    .finally(() => {
      followedLoading = null;
      if (followedAgain) {
        followedAgain = false;
        refreshFollowed();
      }
    });
}

/** A refresh of the followed list for replies in threads it may lack: at most one every
 * FOLLOWED_MAYBE_MS (a busy organisation replies in many threads one does not follow). */
const FOLLOWED_MAYBE_MS = 30_000;
let followedMaybeAt = 0;
let followedMaybeTimer: ReturnType<typeof setTimeout> | null = null;
function refreshFollowedSoon(): void {
  if (followedMaybeTimer) return;
  const wait = Math.max(0, followedMaybeAt + FOLLOWED_MAYBE_MS - Date.now());
  followedMaybeTimer = setTimeout(() => {
    followedMaybeTimer = null;
    followedMaybeAt = Date.now();
    if (gateway && !followedLoading) void held(refreshFollowedFirst).catch(() => undefined);
  }, wait);
}

async function refreshMe(): Promise<void> {
  const me = await api.me();
  set((s) => ({ me: me.user, orgName: me.org_name, users: { ...s.users, [me.user.id]: me.user } }));
}

function isGuest(): boolean {
  return get().me?.role === "guest";
}

/** For a guest (which may not browse the directory): the people in these conversations it
 * does not know yet (with `again`, all of them), a few requests at a time. */
async function loadPeopleOf(conversations: Id[], known: Id[] = [], again = false): Promise<void> {
  const ids = new Set<Id>(known);
  for (const id of conversations) {
    try {
      for (const m of await allMembers(id)) ids.add(m.user_id);
    } catch {
      /* a conversation left meanwhile: the others still count */
    }
  }
  const missing = [...ids].filter((id) => again || !get().users[id]);
  for (let i = 0; i < missing.length; i += 8) {
    const found = await Promise.all(missing.slice(i, i + 8).map((id) => api.user(id).catch(() => null)));
    const users = Object.fromEntries(found.filter((u): u is User => !!u).map((u) => [u.id, u]));
    set((s) => ({ users: { ...s.users, ...users } }));
  }
}

function applyEventFrame(f: EventFrame): void {
  // Side effects once per event (a resume may repeat some; applying the model is idempotent).
  const fresh = f.pos > get().lastPos;
  if (fresh) eventEffects(f);
  const wasGuest = isGuest();
  update((m) => applyEvent(m, f));
  if (fresh && f.data.type === "user.updated" && f.data.user.id === get().me?.id && isGuest() !== wasGuest) {
    // What I may see changed with my role: a guest keeps only the people it shares a
    // conversation with, staff get the directory and the departments back.
    if (isGuest()) set((s) => ({ users: s.me ? { [s.me.id]: s.me } : {}, departments: {} }));
    void reload(get().lastPos, true);
  }
  const s = get();
  if (s.followedStale) {
    update((m) => ({ ...m, followedStale: false }));
    refreshFollowed();
  }
  if (s.followedMaybe) {
    update((m) => ({ ...m, followedMaybe: false }));
    refreshFollowedSoon();
  }
  // Revoked from another device (a browser left signed in elsewhere): nothing of the person's
  // stays here.
  if (s.signedOut) void signOutLocal();
  if (s.stale.length) {
    const ids = s.stale;
    set({ stale: [] });
    for (const id of ids) void refreshConversation(id);
  }
}

function onFrame(f: ServerFrame): void {
  switch (f.op) {
    case "event":
      hold.event(f);
      break;
    case "resync":
      startOver(f.head, true);
      break;
    case "presence":
      // A status for someone no longer followed (a frame in flight) would go stale; one of
      // mine just after I changed it may be the server's news from before the change.
      if (!presenceInterest.follows(f.user_id) || get().presence[f.user_id] === f.status) break;
      if (f.user_id === get().me?.id && Date.now() < myPresenceSetUntil) break;
      set((s) => ({ presence: { ...s.presence, [f.user_id]: f.status } }));
      break;
    case "error":
      // A refused frame (over the rate limit, or the server busy) may have been a
      // subscription: ask again in a while, or those it added would never get a status.
      if (f.code === "rate_limited" || f.code === "unavailable") presenceInterest.retryLater();
      break;
    case "typing": {
      if (f.user_id === get().me?.id) break;
      const key = placeKey(f.conversation_id, f.thread_root_id);
      set((s) => ({ typing: { ...s.typing, [key]: { ...(s.typing[key] ?? {}), [f.user_id]: Date.now() + 6000 } } }));
      setTimeout(() => set((s) => ({ typing: expireTyping(s.typing, Date.now()) })), 6100);
      break;
    }
    default:
      break;
  }
}

/** A change to a conversation's member list, as its event says. */
export type MembershipChange = Extract<EventData, { type: "members.added" | "members.removed" | "member.updated" }>;
const membershipListeners = new Map<Id, Set<(change: MembershipChange) => void>>();

/** Calls `listener` with each change to a conversation's members (an open member list
 * applies them instead of reading the whole list again) until the returned function is
 * called. A reload (after missed events) bumps `reloads` instead. */
export function onMembershipChange(id: Id, listener: (change: MembershipChange) => void): () => void {
  const set = membershipListeners.get(id) ?? new Set();
  set.add(listener);
  membershipListeners.set(id, set);
  return () => {
    set.delete(listener);
    if (set.size === 0) membershipListeners.delete(id);
  };
}

function eventEffects(f: EventFrame): void {
  const d = f.data;
  if (d.type === "draft.updated") applyDraft(d.draft);
  // A guest added somewhere meets new people (the event names them).
  if ((d.type === "members.added" || d.type === "conversation.created") && isGuest()) {
    void loadPeopleOf([], d.members.map((m) => m.user_id));
  }
  if (d.type === "message.created") stoppedTyping(d.message);
  if ((d.type === "reaction.added" || d.type === "reaction.removed") && d.user_id === get().me?.id) {
    const key = reactionKey(d.message_id, d.emoji);
    myReactionEvents.set(key, (myReactionEvents.get(key) ?? 0) + 1);
  }
  if (d.type === "conversation.removed") dropDraftsOf(d.conversation_id);
  if (d.type === "members.added" || d.type === "members.removed" || d.type === "member.updated") {
    const id = d.type === "members.added" ? d.conversation.id : d.conversation_id;
    for (const listener of membershipListeners.get(id) ?? []) listener(d);
  }
  if (d.type === "members.removed" && get().me && d.user_ids.includes(get().me!.id)) dropDraftsOf(d.conversation_id);
}

/** Typing notices without those that have run out (places left empty go). */
export function expireTyping(typing: AppState["typing"], now: number): AppState["typing"] {
  const out: AppState["typing"] = {};
  for (const [key, people] of Object.entries(typing)) {
    const entries = Object.entries(people);
    const live = entries.filter(([, until]) => until > now);
    // Places where nothing ran out keep their object (their views need not render again).
    if (live.length === entries.length) out[key] = people;
    else if (live.length) out[key] = Object.fromEntries(live);
  }
  return out;
}

/** Reads a conversation's counters again (events wait meanwhile, so what it returns is
 * followed only by what happened after it). */
async function refreshConversation(id: Id): Promise<void> {
  try {
    await held(async () => {
      const it = await api.conversation(id);
      // Left meanwhile (or never mine): not brought back.
      if (!get().conversations[id] || !it.me) return;
      update((m) => ({
        ...m,
        conversations: { ...m.conversations, [id]: { conv: it.conversation, me: it.me ?? null } },
      }));
    });
  } catch {
    /* gone or not visible: events will tell */
  }
}

/** Ends the session here. `ended`: the server ended it (it expired, was revoked, the
 * account was disabled or its password reset), not the person: the sign-in page says so, and
 * the drafts this browser keeps stay for when the same person signs in again (another
 * person signing in drops them: `claimDrafts`). */
async function signOutLocal(ended = false): Promise<void> {
  gateway?.stop();
  gateway = null;
  presenceInterest.stop();
  if (ended) stopDraftSaves();
  else {
    forgetDrafts();
    storeOutbox(null);
  }
  hold.clear(); // the session's events, never to reach the next one's state
  unsentReads.clear();
  for (const timer of retryTimers.values()) clearTimeout(timer);
  retryTimers.clear();
  forgetAttachments();
  openEdits.clear();
  // Translated when drawn (the sign-in page has a language switch).
  const error = ended ? new ApiError(401, "session_ended", translate("en", "session.ended")) : null;
  set({ ...emptyModel(), phase: "signin", drafts: {}, presence: {}, typing: {}, reloads: 0, error });
}

export async function signOut(): Promise<void> {
  await api.signOut().catch(() => undefined);
  await signOutLocal();
}

export async function loadDirectory(): Promise<void> {
  const users: Record<Id, User> = { ...get().users };
  let cursor: string | null | undefined = undefined;
  for (let i = 0; i < 50; i++) {
    const page = await api.users({ cursor, limit: 200, include_disabled: true });
    for (const u of page.items) users[u.id] = u;
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  set({ users });
}

export async function loadDepartments(): Promise<void> {
  const list = await api.departments();
  set({ departments: Object.fromEntries(list.items.map((d) => [d.id, d])) });
}

export async function loadLatest(id: Id): Promise<void> {
  await held(async () => {
    const page = await api.history(id, { limit: 50 });
    update((m) =>
      dropSettled({ ...m, timelines: { ...m.timelines, [id]: mergePage(undefined, page.items, { before: page.more_before, after: false }, "replace") } }, page.items),
    );
  });
}

/** Loads the page before the oldest loaded message; `beforeApply` runs just before it is
 * added (the list keeps its scroll position from the end only for that render). */
export async function loadOlder(id: Id, beforeApply?: () => void): Promise<number> {
  const t = get().timelines[id];
  if (!t || !t.hasOlder || !t.messages.length) return 0;
  return held(async () => {
    const from = t.messages[0].seq;
    const page = await api.history(id, { before: from, limit: 50 });
    // Replaced meanwhile (a jump, a resync): this page would leave a gap in the new one.
    if (get().timelines[id]?.messages[0]?.seq !== from) return 0;
    beforeApply?.();
    update((m) => dropSettled({ ...m, timelines: { ...m.timelines, [id]: mergePage(m.timelines[id], page.items, { before: page.more_before }, "older") } }, page.items));
    return page.items.filter((x) => !x.thread_root_id).length;
  });
}

export async function loadNewer(id: Id): Promise<void> {
  const t = get().timelines[id];
  if (!t || !t.hasNewer || !t.messages.length) return;
  await held(async () => {
    const from = t.messages[t.messages.length - 1].seq;
    const page = await api.history(id, { after: from, limit: 50 });
    update((m) => {
      // Replaced meanwhile (jumped to the latest, a resync): this page would leave a gap.
      const now = m.timelines[id];
      if (!now?.hasNewer || now.messages[now.messages.length - 1]?.seq !== from) return m;
      return dropSettled({ ...m, timelines: { ...m.timelines, [id]: mergePage(now, page.items, { after: page.more_after }, "newer") } }, page.items);
    });
  });
}

/** Loads the window around a message (jump to it). */
export async function loadAround(id: Id, messageId: Id): Promise<void> {
  await held(async () => {
    const page = await api.history(id, { around: messageId, limit: 50 });
    update((m) =>
      dropSettled(
        {
          ...m,
          timelines: { ...m.timelines, [id]: mergePage(undefined, page.items, { before: page.more_before, after: page.more_after }, "replace") },
        },
        page.items,
      ),
    );
  });
}

/** Most pages of replies read when a thread opens (100 each). */
const THREAD_PAGES_MAX = 50;

export async function openThread(rootId: Id): Promise<void> {
  await held(async () => {
    const page = await api.thread(rootId);
    // Every reply, in pages (a long thread would otherwise show a gap before live replies).
    const replies = [...page.items];
    let more = page.more_after;
    for (let i = 0; more && replies.length && i < THREAD_PAGES_MAX; i++) {
      const next = await api.thread(rootId, { after: replies[replies.length - 1].seq });
      replies.push(...next.items);
      more = next.more_after && next.items.length > 0;
    }
    update((m) => ({ ...m, threads: { ...m.threads, [rootId]: { root: page.root, replies } } }));
  });
}

/** Marks a conversation unread from a message on. The counts are then read from the server:
 * when the position was there already no event follows, and what this client showed may have
 * drifted from it. */
export async function markUnread(conversationId: Id, messageId: Id): Promise<void> {
  keptUnread = { id: conversationId, unread: Number.MAX_SAFE_INTEGER };
  // A read this device could not send yet must not undo the unread mark once it can.
  unsentReads.delete(conversationId);
  await api.markUnread(conversationId, messageId);
  await refreshConversation(conversationId);
  if (keptUnread?.id === conversationId) {
    keptUnread = { id: conversationId, unread: get().conversations[conversationId]?.me?.unread_count ?? 0 };
  }
}

/** A conversation the person marked unread while reading it, and its last seq then: it is
 * not marked read again by being on screen until something new arrives or they leave it. */
let keptUnread: { id: Id; unread: number } | null = null;

/** Leaving a conversation's view ends what "mark unread" kept there. */
export function releaseUnread(id: Id): void {
  if (keptUnread?.id === id) keptUnread = null;
}

export function markRead(id: Id): void {
  const c = get().conversations[id];
  if (!c?.me || c.me.read_seq >= c.conv.last_seq) return;
  if (keptUnread?.id === id) {
    // Released by a new message from someone else (not by a reaction or an edit, which move
    // the conversation's sequence too).
    if (c.me.unread_count <= keptUnread.unread) return;
    keptUnread = null;
  }
  const seq = c.conv.last_seq;
  update((m) => markReadLocal(m, id, seq));
  sendRead(id, seq);
}

/** Read positions the server has not taken yet (the request failed: offline, say), sent
 * again once connected, so this device's badges and the others' agree. */
const unsentReads = new Map<Id, number>();

function sendRead(id: Id, seq: number): void {
  api.markRead(id, seq).then(
    () => {
      if ((unsentReads.get(id) ?? -1) <= seq) unsentReads.delete(id);
    },
    (e) => {
      // Refused for good (no longer a member): nothing to send again.
      if (e instanceof ApiError && !e.transient) {
        if ((unsentReads.get(id) ?? -1) <= seq) unsentReads.delete(id);
        return;
      }
      unsentReads.set(id, Math.max(seq, unsentReads.get(id) ?? 0));
    },
  );
}

function flushReads(): void {
  for (const [id, seq] of [...unsentReads]) sendRead(id, seq);
}

// ---- drafts ----
// Kept locally (so typing never waits and survives a reload offline) and on the server, which
// tells the person's other devices (`draft.updated`). A save goes a moment after typing stops;
// clearing (after a send) goes at once.

const DRAFT_SAVE_DELAY = 1000;
/** Saves waiting for typing to pause, per draft key. */
const draftTimers = new Map<string, ReturnType<typeof setTimeout>>();
/** What this device last saved per key: the server echoes it back, and that echo must not
 * overwrite what was typed since. */
const draftsSaved = new Map<string, string>();
const UNSAVED_KEY = "qiao.drafts.unsaved";
/** Keys typed in here that the server has not confirmed yet (offline, say). Kept across a
 * reload, so the server's older copy does not replace them at the next start. */
const unsaved = new Set<string>(loadStored<string[]>(UNSAVED_KEY, []));
const storeUnsaved = () => storeLocal(UNSAVED_KEY, [...unsaved]);

/** Where in a conversation: `conv`, or `conv:root` for one of its threads (how drafts and
 * typing are keyed). */
export function placeKey(conversationId: Id, threadRootId?: Id | null): string {
  return threadRootId ? `${conversationId}:${threadRootId}` : conversationId;
}

const storeDrafts = (drafts: Record<string, string>) => storeLocal(DRAFTS_KEY, drafts);

/** Whose drafts this browser keeps. */
const DRAFTS_OWNER_KEY = "qiao.drafts.owner";

/** Drafts belong to the person: the next one to sign in here must neither see them nor have
 * them saved as theirs. */
function forgetDrafts(): void {
  stopDraftSaves();
  storeDrafts({});
  storeUnsaved();
}

/** Stops saving drafts to the server and forgets them in memory (the browser's copy stays,
 * for `claimDrafts`). */
function stopDraftSaves(): void {
  for (const timer of draftTimers.values()) clearTimeout(timer);
  draftTimers.clear();
  draftGeneration++;
  draftQueued.clear();
  draftsSent.clear();
  draftsSaved.clear();
  unsaved.clear();
  set({ drafts: {} });
}

/** Starting a session as `me`: drafts kept here for someone else (their session ended
 * without a sign-out on this device, say it expired) are dropped. Drafts of no recorded
 * owner (kept by an older version) are taken as the person's. */
function claimDrafts(me: Id | undefined): void {
  if (!me) return;
  const owner = loadStored<string | null>(DRAFTS_OWNER_KEY, null);
  if (owner !== null && owner !== me) forgetDrafts();
  else {
    // The same person again (say after their session ended here): what this browser kept.
    for (const key of loadStored<string[]>(UNSAVED_KEY, [])) unsaved.add(key);
    set({ drafts: { ...loadStored<Record<string, string>>(DRAFTS_KEY, {}), ...get().drafts } });
  }
  storeLocal(DRAFTS_OWNER_KEY, me);
}

/** Leaving a conversation deletes my drafts in it on the server (no event says so). */
function dropDraftsOf(conversationId: Id): void {
  const keys = Object.keys(get().drafts).filter((k) => k === conversationId || k.startsWith(`${conversationId}:`));
  for (const key of [...unsaved]) if (key === conversationId || key.startsWith(`${conversationId}:`)) keys.push(key);
  for (const key of keys) {
    clearTimeout(draftTimers.get(key));
    draftTimers.delete(key);
    draftsSaved.delete(key);
    setUnsaved(key, false);
    putDraftLocal(key, "");
  }
}

function putDraftLocal(key: string, text: string): void {
  const drafts = { ...get().drafts };
  if (text) drafts[key] = text;
  else delete drafts[key];
  set({ drafts });
  storeDrafts(drafts);
}

/** Per draft key, the last save queued: saves go one after another, so the server keeps the
 * last text typed (two saves in flight could commit in either order); a save overtaken by a
 * newer one before its turn is skipped. */
const draftSaves = new Map<string, Promise<void>>();
const draftQueued = new Map<string, string>();
/** Per draft key, the texts this device sent whose echo (`draft.updated`) has not come back,
 * in the order sent (the server commits them in that order). */
const draftsSent = new Map<string, { text: string; at: number }[]>();
/** An echo that has not come in this long will not (the save changed nothing there). */
const DRAFT_ECHO_MS = 30_000;
/** Bumped when saving stops (sign-out): a save still queued then is not sent. */
let draftGeneration = 0;

/** Whether a `draft.updated` is the echo of one of this device's saves; it and the saves
 * before it are then no longer awaited. Another device's text is not. */
function ownEcho(key: string, text: string): boolean {
  const now = Date.now();
  const sent = (draftsSent.get(key) ?? []).filter((x) => now - x.at < DRAFT_ECHO_MS);
  const i = sent.findIndex((x) => x.text === text);
  draftsSent.set(key, i >= 0 ? sent.slice(i + 1) : sent);
  return i >= 0;
}

function saveDraftNow(key: string): void {
  draftTimers.delete(key);
  const text = get().drafts[key] ?? "";
  if (draftsSaved.get(key) === text) return;
  draftsSaved.set(key, text);
  draftQueued.set(key, text);
  const [conversation, root] = key.split(":");
  const generation = draftGeneration;
  const send = () => {
    if (generation !== draftGeneration || draftQueued.get(key) !== text) return Promise.resolve();
    draftsSent.set(key, [...(draftsSent.get(key) ?? []), { text, at: Date.now() }]);
    return api.saveDraft(conversation, text, root ?? null).then(
      () => {
        if ((get().drafts[key] ?? "") === text) setUnsaved(key, false);
      },
      (e) => {
        if (draftsSaved.get(key) === text) draftsSaved.delete(key);
        // Offline, rate-limited or restarting: tried again on the next change or connection.
        // Refused (no longer a member, too long): kept here only.
        if (!(e instanceof ApiError) || !e.transient) setUnsaved(key, false);
      },
    );
  };
  const chained = (draftSaves.get(key) ?? Promise.resolve()).then(send);
  draftSaves.set(key, chained);
  void chained.finally(() => {
    if (draftSaves.get(key) === chained) {
      draftSaves.delete(key);
      if (draftQueued.get(key) === text) draftQueued.delete(key);
    }
  });
}

function setUnsaved(key: string, on: boolean): void {
  if (unsaved.has(key) === on) return;
  if (on) unsaved.add(key);
  else unsaved.delete(key);
  storeUnsaved();
}

/** Saves what this device typed while the server could not take it. */
function retryUnsavedDrafts(): void {
  for (const key of unsaved) if (!draftTimers.has(key)) saveDraftNow(key);
}

/** The composer's text changed. */
export function setDraft(key: string, text: string): void {
  putDraftLocal(key, text);
  setUnsaved(key, true);
  const pending = draftTimers.get(key);
  if (pending) clearTimeout(pending);
  if (text) draftTimers.set(key, setTimeout(() => saveDraftNow(key), DRAFT_SAVE_DELAY));
  else saveDraftNow(key);
}

/** Another device (or this one's echo) changed a draft. */
function applyDraft(d: Draft): void {
  const key = placeKey(d.conversation_id, d.thread_root_id);
  if (draftTimers.has(key)) return; // typing here right now: this device's text wins
  // Our own save coming back (the latest, or an earlier one whose echo comes late).
  if (ownEcho(key, d.body) || draftsSaved.get(key) === d.body) return;
  draftsSaved.set(key, d.body);
  putDraftLocal(key, d.body);
  setUnsaved(key, false);
}

/** The server's drafts (fresh start or resync): they replace what this device had saved,
 * except where it is typing or has text the server has not taken yet (then saved again). */
async function fetchDrafts(): Promise<void> {
  let items: Draft[];
  try {
    items = (await api.drafts()).items;
  } catch {
    return;
  }
  const mine = (key: string) => draftTimers.has(key) || unsaved.has(key);
  const drafts: Record<string, string> = {};
  for (const [key, text] of Object.entries(get().drafts)) if (mine(key)) drafts[key] = text;
  draftsSaved.clear();
  for (const d of items) {
    const key = placeKey(d.conversation_id, d.thread_root_id);
    if (!mine(key)) drafts[key] = d.body;
    draftsSaved.set(key, d.body);
  }
  set({ drafts });
  storeDrafts(drafts);
  for (const key of [...unsaved]) {
    if (!draftTimers.has(key) && (drafts[key] ?? "") === (draftsSaved.get(key) ?? "")) setUnsaved(key, false);
  }
  retryUnsavedDrafts();
}

// ---- optimistic sends ----

const inFlight = new Set<string>();

export function sendMessage(conversationId: Id, body: string, threadRootId: Id | null = null, files: FileInfo[] = []): void {
  const p = newPending(conversationId, body, threadRootId, Date.now(), files);
  set((s) => ({ pending: [...s.pending, p] }));
  void attempt(p.key);
}

export function retryPending(key: string): void {
  set((s) => ({ pending: s.pending.map((p) => (p.key === key ? { ...p, status: "sending", attempts: 0, error: undefined } : p)) }));
  void attempt(key);
}

export function discardPending(key: string): void {
  set((s) => ({ pending: s.pending.filter((p) => p.key !== key) }));
}

// Messages not yet sent are kept by the tab too (its reloads, a session the server ended), for
// the same person only, and sent again with their keys (the server stores each once); leaving
// the page while some are waiting asks first. Per tab (session storage): tabs keep their own.
const OUTBOX_KEY = "qiao.outbox";

interface StoredOutbox {
  owner: Id;
  items: Pending[];
}

const tabStorage = () => sessionStorage;
const storeOutbox = (value: StoredOutbox | null) => storeLocal(OUTBOX_KEY, value, tabStorage);
const loadOutbox = () => loadStored<StoredOutbox | null>(OUTBOX_KEY, null, tabStorage);

if (typeof window !== "undefined") {
  window.addEventListener("beforeunload", (e) => {
    if (get().pending.some((p) => p.status === "sending")) {
      e.preventDefault();
      e.returnValue = "";
    }
  });
  useApp.subscribe((s, prev) => {
    // Only a live session's changes: signing out empties the list without sending it.
    if (s.pending === prev.pending || s.phase !== "ready" || !s.me) return;
    const items = s.pending.map((p): Pending => ({ ...p, error: undefined }));
    storeOutbox(items.length ? { owner: s.me.id, items } : null);
  });
}

/** Starting a session as `me`: what this browser kept unsent for them waits to be sent again
 * (a failed one stays failed, for Retry or Discard); someone else's is dropped. */
function restoreOutbox(me: Id | undefined): void {
  const stored = loadOutbox();
  if (!stored || !me) return;
  if (stored.owner !== me) {
    storeOutbox(null);
    return;
  }
  const known = new Set(get().pending.map((p) => p.key));
  const items = stored.items.filter((p) => !known.has(p.key)).map((p) => ({ ...p, attempts: 0 }));
  if (items.length) set((s) => ({ pending: [...s.pending, ...items] }));
}

/** After a reconnect: resend whatever is still waiting (now, not at its next retry). */
function flushOutbox(): void {
  for (const p of get().pending) {
    if (p.status !== "sending") continue;
    clearTimeout(retryTimers.get(p.key));
    retryTimers.delete(p.key);
    void attempt(p.key);
  }
}

/** The next try of each send waiting to go again: one per send, however it was scheduled. */
const retryTimers = new Map<string, ReturnType<typeof setTimeout>>();

function retryLater(key: string, wait: number): void {
  clearTimeout(retryTimers.get(key));
  retryTimers.set(
    key,
    setTimeout(() => {
      retryTimers.delete(key);
      void attempt(key);
    }, wait),
  );
}

/** How often a send tries again while the server cannot be reached (at most), and how many
 * times in a row each could not reach it. */
const UNREACHABLE_RETRY_MS = 15_000;
const unreachableTries = new Map<string, number>();

async function attempt(key: string): Promise<void> {
  if (inFlight.has(key)) return;
  const p = get().pending.find((x) => x.key === key);
  if (!p || p.status !== "sending") return;
  inFlight.add(key);
  const attempts = p.attempts + 1;
  set((s) => ({ pending: s.pending.map((x) => (x.key === key ? { ...x, attempts } : x)) }));
  try {
    const msg: Message = await api.send(p.conversationId, p.body, p.key, p.threadRootId, p.files.map((f) => f.id));
    unreachableTries.delete(key);
    update((m) => addMessage(m, msg));
    // Having just written there, one has read what came before, if one is looking at it (a
    // send that completes late, or a thread reply, says nothing of the conversation).
    const route = useRoute.getState().route;
    const onScreen = route.name === "conversation" && route.id === p.conversationId && document.visibilityState === "visible";
    if (!p.threadRootId && onScreen) markRead(p.conversationId);
  } catch (e) {
    const err = e instanceof ApiError ? e : new ApiError(0, "network", String(e));
    const unreachable = err.status === 0 && err.code === "network";
    if (!unreachable) unreachableTries.delete(key);
    if (err.status === 401) {
      // The session ended (the socket says so too): it waits, and goes after signing in again.
      set((s) => ({ pending: s.pending.map((x) => (x.key === key ? { ...x, attempts: 0 } : x)) }));
    } else if (unreachable) {
      // Unreachable (offline, a network switch): tried again for as long as it takes — every
      // 15 s, and at once when the connection is back (flushOutbox) — never given up as
      // failed, and not counted: a server that answers with an error (or not in time) has
      // MAX_ATTEMPTS of its own.
      set((s) => ({ pending: s.pending.map((x) => (x.key === key ? { ...x, attempts: attempts - 1 } : x)) }));
      const tries = (unreachableTries.get(key) ?? 0) + 1;
      unreachableTries.set(key, tries);
      retryLater(key, Math.min(UNREACHABLE_RETRY_MS, retryDelay(tries)));
    } else if (err.transient && attempts < MAX_ATTEMPTS) {
      retryLater(key, err.retryAfter ? err.retryAfter * 1000 : retryDelay(attempts));
    } else {
      set((s) => ({
        pending: s.pending.map((x): Pending => (x.key === key ? { ...x, status: "failed", error: err } : x)),
      }));
    }
  } finally {
    inFlight.delete(key);
  }
}

// ---- presence and typing ----

/** Whoever just sent a message there is no longer typing it. */
function stoppedTyping(m: Message): void {
  const key = placeKey(m.conversation_id, m.thread_root_id ?? null);
  if (!get().typing[key]?.[m.sender_id]) return;
  set((s) => {
    const here = { ...s.typing[key] };
    delete here[m.sender_id];
    return { typing: { ...s.typing, [key]: here } };
  });
}

/** Presence is followed for the people whose avatars are on screen (see presence.ts). */
const presenceInterest = new PresenceInterest(
  (ids) => gateway?.sendLive({ op: "presence_subscribe", user_ids: ids }) ?? false,
  (ids) =>
    set((s) => {
      const presence = { ...s.presence };
      for (const id of ids) delete presence[id];
      return { presence };
    }),
);

/** An avatar of this person is shown (until the returned function is called). */
export function showsPresenceOf(id: Id): () => void {
  presenceInterest.want(id);
  return () => presenceInterest.unwant(id);
}

let lastTyping = 0;
export function sendTyping(conversationId: Id, threadRootId: Id | null): void {
  const now = Date.now();
  if (now - lastTyping < 3000) return;
  lastTyping = now;
  gateway?.send({ op: "typing", conversation_id: conversationId, thread_root_id: threadRootId ?? undefined });
}

/** Do-not-disturb (on all of the person's devices) or back to available. */
export function setMyPresence(status: "online" | "dnd"): void {
  if (!gateway?.sendLive({ op: "presence", status })) return;
  const me = get().me?.id;
  // Shown at once; the server announces changes at most every 2 s, so what it says of me
  // meanwhile may predate this one.
  myPresenceSetUntil = Date.now() + 3000;
  if (me) set((s) => ({ presence: { ...s.presence, [me]: status } }));
}

/** Until when the server's news of my own presence is older than what I just set (ms). */
let myPresenceSetUntil = 0;

/** When this device last told the server its person was using it. */
let lastActive = 0;
let tracking = false;

/**
 * Keeps this device "online" while the person uses it: a key, a click, a scroll or coming
 * back to the tab sends `active` at most once a minute. Without it the server turns the
 * device away after five minutes (reading counts as using; only typing used to).
 */
function trackActivity(): void {
  if (tracking) return;
  tracking = true;
  const used = () => {
    if (document.visibilityState !== "visible" || Date.now() - lastActive < 60_000) return;
    if (gateway?.sendLive({ op: "active" })) lastActive = Date.now();
  };
  for (const type of ["pointerdown", "keydown", "wheel", "touchstart"]) {
    window.addEventListener(type, used, { passive: true, capture: true });
  }
  document.addEventListener("visibilitychange", used);
}

export function reconnectNow(): void {
  gateway?.reconnectNow();
}

/** Events of my own reactions seen, per message and emoji: an answer to a reaction request
 * that arrives after one of them is older than what it said (another device may have taken
 * the reaction back meanwhile). */
const myReactionEvents = new Map<string, number>();
const reactionKey = (messageId: Id, emoji: string) => `${messageId} ${emoji}`;

/** Taken before a reaction request, given back with its answer to `applyMyReaction`. */
export function reactionMark(messageId: Id, emoji: string): number {
  return myReactionEvents.get(reactionKey(messageId, emoji)) ?? 0;
}

/** The answer to my reaction: only my own change is applied (others' reactions that reached
 * me as events before the answer stay), and not at all when an event of my reaction there
 * came after the request (`mark`): that event is newer. */
export function applyMyReaction(messageId: Id, emoji: string, added: boolean, mark: number): void {
  const me = get().me?.id;
  if (!me || reactionMark(messageId, emoji) !== mark) return;
  update((m) =>
    mapMessage(m, messageId, (x) => {
      // Beyond the reactors listed, whether the event got here first cannot be told: the
      // event (which always comes) applies it, once.
      const r = x.reactions.find((y) => y.emoji === emoji);
      if (r && r.user_ids.length < r.count && !r.user_ids.includes(me)) return x;
      return { ...x, reactions: toggleReaction(x.reactions, emoji, me, added) };
    }),
  );
}

/** The answer to my edit: its text, unless the message was deleted meanwhile (the event
 * says so first); reactions and thread summaries stay as events left them. */
export function applyMyEdit(msg: Message): void {
  update((m) =>
    mapMessage(m, msg.id, (x) =>
      // A later edit (from another device) that reached me first stays.
      x.deleted_at || (x.edited_at ?? 0) > (msg.edited_at ?? 0) ? x : { ...x, body: msg.body, edited_at: msg.edited_at, mentions: msg.mentions },
    ),
  );
}
