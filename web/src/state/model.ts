// The client's state and how committed events change it: pure functions, no IO, unit-tested.
// The store (store.ts) holds one `Model` and replaces it with what these functions return.
import { useLang } from "../i18n";
import type {
  Conversation,
  ConversationItem,
  Department,
  EventFrame,
  FileInfo,
  FollowedThread,
  Id,
  Member,
  Message,
  MyState,
  User,
} from "../types";

export interface Timeline {
  /** Main-line messages (not thread replies), ascending by `seq`, no duplicates. */
  messages: Message[];
  /** More history exists before the first loaded message. */
  hasOlder: boolean;
  /** Messages exist after the last loaded one that are not loaded (a window from a jump). */
  hasNewer: boolean;
}

export interface ThreadView {
  root: Message | null;
  replies: Message[];
}

/** A message the user sent that the server has not acknowledged yet. */
export interface Pending {
  key: string;
  conversationId: Id;
  threadRootId: Id | null;
  body: string;
  /** Uploaded files it carries (already stored; sent with the message). */
  files: FileInfo[];
  createdAt: number;
  status: "sending" | "failed";
  /** Why it failed (shown in the language of the moment: `errorText` when drawn). */
  error?: unknown;
  attempts: number;
}

export interface Model {
  me: User | null;
  sessionId: Id | null;
  orgName: string;
  users: Record<Id, User>;
  departments: Record<Id, Department>;
  conversations: Record<Id, { conv: Conversation; me: MyState | null }>;
  timelines: Record<Id, Timeline>;
  threads: Record<Id, ThreadView>;
  pending: Pending[];
  /** The last event position applied (resume from it). */
  lastPos: number;
  /** Set when an event revoked this session. */
  signedOut: boolean;
  /** Conversations whose counters need a refetch (their read position moved backwards, or an
   * unread message was edited or deleted). */
  stale: Id[];
  /** The threads I follow, by root (null until loaded), and whether that list needs a
   * refetch (I began following one it does not have). */
  followed: Record<Id, FollowedThread> | null;
  followedStale: boolean;
  /** The cursor of the next, older page of followed threads (null when all are loaded). */
  followedMore: string | null;
  /** A reply came in a thread the list lacks while older pages are unloaded (perhaps one I
   * follow): the first page is read again, at most every 30 s. */
  followedMaybe: boolean;
}

export const MAX_TIMELINE = 3000;

export function emptyModel(): Model {
  return {
    me: null,
    sessionId: null,
    orgName: "",
    users: {},
    departments: {},
    conversations: {},
    timelines: {},
    threads: {},
    pending: [],
    lastPos: 0,
    signedOut: false,
    stale: [],
    followed: null,
    followedStale: false,
    followedMore: null,
    followedMaybe: false,
  };
}

/** Inserts or replaces `m` in a list ordered by `seq`. */
export function upsertSorted(list: Message[], m: Message): Message[] {
  const i = list.findIndex((x) => x.id === m.id);
  if (i >= 0) {
    const out = list.slice();
    out[i] = m;
    return out;
  }
  // Usually appended: search from the end.
  let j = list.length;
  while (j > 0 && list[j - 1].seq > m.seq) j--;
  const out = list.slice();
  out.splice(j, 0, m);
  return out;
}

/** Merges a page of history into a timeline, keeping order and removing duplicates. */
export function mergePage(
  t: Timeline | undefined,
  items: Message[],
  more: { before?: boolean; after?: boolean },
  direction: "older" | "newer" | "replace",
): Timeline {
  const main = items.filter((m) => !m.thread_root_id);
  if (direction === "replace" || !t) {
    return {
      messages: [...main].sort((a, b) => a.seq - b.seq),
      hasOlder: !!more.before,
      hasNewer: !!more.after,
    };
  }
  let messages = t.messages;
  for (const m of main) messages = upsertSorted(messages, m);
  return {
    messages,
    hasOlder: direction === "older" ? !!more.before : t.hasOlder,
    hasNewer: direction === "newer" ? !!more.after : t.hasNewer,
  };
}

/** Drops the pending sends a page read over HTTP shows stored (its answer and its event were
 * lost, or came before a resync that replays no events): they are sent, not waiting. */
export function dropSettled(model: Model, items: Message[]): Model {
  const stored = new Set(items.filter((m) => m.client_key && m.sender_id === model.me?.id).map((m) => m.client_key));
  if (!model.pending.some((p) => stored.has(p.key))) return model;
  return { ...model, pending: model.pending.filter((p) => !stored.has(p.key)) };
}

/** A loaded top-level message (in a timeline), if any. */
function findMessage(model: Model, id: Id): Message | undefined {
  for (const t of Object.values(model.timelines)) {
    const found = t.messages.find((m) => m.id === id);
    if (found) return found;
  }
  return undefined;
}

/** Replaces a message wherever it is shown (timelines, threads). */
export function mapMessage(model: Model, id: Id, f: (m: Message) => Message): Model {
  let changed = false;
  const timelines = { ...model.timelines };
  for (const [cid, t] of Object.entries(model.timelines)) {
    const i = t.messages.findIndex((m) => m.id === id);
    if (i >= 0) {
      const messages = t.messages.slice();
      messages[i] = f(messages[i]);
      timelines[cid] = { ...t, messages };
      changed = true;
    }
  }
  let followed = model.followed;
  const t = followed?.[id];
  if (followed && t) {
    followed = { ...followed, [id]: { ...t, root: f(t.root) } };
    changed = true;
  }
  const threads = { ...model.threads };
  for (const [rid, th] of Object.entries(model.threads)) {
    if (th.root?.id === id) {
      threads[rid] = { ...th, root: f(th.root) };
      changed = true;
    }
    const i = th.replies.findIndex((m) => m.id === id);
    if (i >= 0) {
      const replies = th.replies.slice();
      replies[i] = f(replies[i]);
      threads[rid] = { ...threads[rid], replies };
      changed = true;
    }
  }
  return changed ? { ...model, timelines, threads, followed } : model;
}

/** Whether `m` mentions the user `me` (directly, @channel, or through a department: one of
 * mine or one above it, as the server counts it — `departments` gives the tree). */
export function mentionsMe(m: Message, me: User | null, departments: Record<Id, Department> = {}): boolean {
  if (!me) return false;
  if (m.mentions.channel || m.mentions.user_ids.includes(me.id)) return true;
  if (!m.mentions.department_ids.length) return false;
  const mine = new Set<Id>();
  for (const start of [me.primary_department_id, ...me.secondary_department_ids]) {
    // Up the tree (bounded: a tree is shallow, and a cycle must not hang the client).
    let d: Id | null | undefined = start;
    for (let i = 0; d && i < 64 && !mine.has(d); i++) {
      mine.add(d);
      d = departments[d]?.parent_id;
    }
  }
  return m.mentions.department_ids.some((d) => mine.has(d));
}

/** Records a new message as the server returned (own sends) or announced it. Both are its state
 * at creation: a copy already shown is kept, since reactions, edits or a thread that arrived
 * as events in between are newer (the answer to a send can come after them). */
export function addMessage(model: Model, m: Message): Model {
  let out = messageAt(model, m.conversation_id, m.created_at);
  if (m.client_key) out = { ...out, pending: out.pending.filter((p) => p.key !== m.client_key) };
  if (m.thread_root_id) {
    const th = out.threads[m.thread_root_id];
    if (th && !th.replies.some((x) => x.id === m.id)) {
      out = { ...out, threads: { ...out.threads, [m.thread_root_id]: { ...th, replies: upsertSorted(th.replies, m) } } };
    }
    return out;
  }
  const t = out.timelines[m.conversation_id];
  if (t && !t.hasNewer && !t.messages.some((x) => x.id === m.id)) {
    let messages = upsertSorted(t.messages, m);
    let hasOlder = t.hasOlder;
    if (messages.length > MAX_TIMELINE) {
      messages = messages.slice(messages.length - MAX_TIMELINE);
      hasOlder = true;
    }
    out = { ...out, timelines: { ...out.timelines, [m.conversation_id]: { ...t, messages, hasOlder } } };
  }
  return out;
}

function setConversation(model: Model, conv: Conversation, me?: MyState | null): Model {
  const prev = model.conversations[conv.id];
  const merged = prev && prev.conv.last_seq > conv.last_seq ? { ...conv, last_seq: prev.conv.last_seq } : conv;
  return {
    ...model,
    conversations: { ...model.conversations, [conv.id]: { conv: merged, me: me === undefined ? (prev?.me ?? null) : me } },
  };
}

/** Drops what was read of a conversation's messages and threads (read again when shown). */
function forgetHistory(model: Model, id: Id): Model {
  if (!model.timelines[id] && !Object.values(model.threads).some((t) => t.root?.conversation_id === id)) return model;
  const timelines = { ...model.timelines };
  delete timelines[id];
  const threads = Object.fromEntries(Object.entries(model.threads).filter(([, t]) => t.root?.conversation_id !== id));
  return { ...model, timelines, threads };
}

function removeConversation(model: Model, id: Id): Model {
  if (!model.conversations[id]) return model;
  const conversations = { ...model.conversations };
  delete conversations[id];
  const timelines = { ...model.timelines };
  delete timelines[id];
  const followed = model.followed && Object.fromEntries(Object.entries(model.followed).filter(([, t]) => t.conversation_id !== id));
  return { ...model, conversations, timelines, followed, pending: model.pending.filter((p) => p.conversationId !== id) };
}

/** Replaces the list of threads I follow with a fresh first page from HTTP (`more`: the
 * cursor of the next page). */
export function loadFollowed(model: Model, items: FollowedThread[], more: string | null = null): Model {
  return { ...model, followed: Object.fromEntries(items.map((t) => [t.root_id, t])), followedStale: false, followedMore: more };
}

/** A fresh first page of followed threads over a list with older pages loaded: its rows win,
 * the older rows and the cursor beyond them stay (a thread unfollowed meanwhile went with
 * its `thread.state`). */
export function refreshFollowedFirstPage(model: Model, items: FollowedThread[], more: string | null): Model {
  if (!model.followed) return loadFollowed(model, items, more);
  const followed = { ...model.followed };
  for (const t of items) followed[t.root_id] = t;
  return { ...model, followed, followedMore: model.followedMore ?? more };
}

/** Adds an older page of followed threads (read while events waited: what the list has is
 * at least as new, so it stays). */
export function moreFollowed(model: Model, items: FollowedThread[], more: string | null): Model {
  const followed = { ...(model.followed ?? {}) };
  for (const t of items) followed[t.root_id] ??= t;
  return { ...model, followed, followedMore: more };
}

/** The threads I follow with replies I have not read, most recent reply first. */
export function unreadThreads(model: Pick<Model, "followed">): FollowedThread[] {
  return Object.values(model.followed ?? {})
    .filter((t) => t.unread_count > 0)
    .sort((a, b) => (b.last_reply_at ?? 0) - (a.last_reply_at ?? 0));
}

/** A reply in a thread I follow: unread (and perhaps a mention) unless mine or read already. */
function followedReply(model: Model, reply: Message, summary: Message["thread"]): Model {
  const t = reply.thread_root_id ? model.followed?.[reply.thread_root_id] : undefined;
  // A reply in a thread the list lacks while older pages are not loaded: it may be one of
  // those (followed, now the latest), so the first page is read again (at most every 30 s).
  if (!t && model.followedMore && reply.thread_root_id && reply.sender_id !== model.me?.id) {
    return model.followedMaybe ? model : { ...model, followedMaybe: true };
  }
  // Counted already by the list (read after this reply: a held event applied after it).
  if (!t || !model.followed || reply.seq <= (t.last_reply_seq ?? 0)) return model;
  const next = {
    ...t,
    last_reply_at: Math.max(t.last_reply_at ?? 0, reply.created_at),
    last_reply_seq: reply.seq,
    root: { ...t.root, thread: summary ?? t.root.thread },
  };
  if (reply.sender_id !== model.me?.id && reply.seq > t.read_seq) {
    next.unread_count = t.unread_count + 1;
    if (mentionsMe(reply, model.me, model.departments)) next.mention_count = t.mention_count + 1;
  }
  return { ...model, followed: { ...model.followed, [t.root_id]: next } };
}

/** What a `thread.state` says of a thread I follow (or no longer do). */
function followedState(model: Model, root: Id, following: boolean, readSeq: number): Model {
  if (!model.followed) return model;
  const t = model.followed[root];
  if (!following) {
    if (!t) return model;
    const followed = { ...model.followed };
    delete followed[root];
    return { ...model, followed };
  }
  // Following one the list does not have: it is read again (with its root and counts).
  if (!t) return { ...model, followedStale: true };
  // The position moves forward only to the latest reply (read on some device, or replied).
  if (readSeq <= t.read_seq) return model;
  return { ...model, followed: { ...model.followed, [root]: { ...t, read_seq: readSeq, unread_count: 0, mention_count: 0 } } };
}

function myStateFrom(member: Member, prev: MyState | null | undefined, lastSeq: number): MyState {
  return {
    role: member.role,
    direct: member.direct,
    via_department: member.via_department,
    read_seq: prev?.read_seq ?? lastSeq,
    unread_count: prev?.unread_count ?? 0,
    mention_count: prev?.mention_count ?? 0,
  };
}

/** Whether the conversation's state already reflects the event at `seq`: it came from HTTP
 * after the event was committed (a reload or a refetch), so counters must not move again. */
function counted(model: Model, id: Id | null | undefined, seq: number | null | undefined): boolean {
  if (!id || seq == null) return false;
  return (model.conversations[id]?.conv.last_seq ?? 0) >= seq;
}

/** Whether a top-level message at `seq` is unread for me there. */
function isUnread(model: Model, id: Id, seq: number): boolean {
  const me = model.conversations[id]?.me;
  return !!me && me.unread_count > 0 && seq > me.read_seq;
}

/** Asks for the conversation's counters to be fetched again (the server's count is the truth). */
function markStale(model: Model, id: Id): Model {
  return model.stale.includes(id) ? model : { ...model, stale: [...model.stale, id] };
}

function bumpSeq(model: Model, id: Id | null | undefined, seq: number | null | undefined): Model {
  if (!id || seq == null) return model;
  const c = model.conversations[id];
  if (!c || c.conv.last_seq >= seq) return model;
  const conv = { ...c.conv, last_seq: seq };
  return { ...model, conversations: { ...model.conversations, [id]: { ...c, conv } } };
}

/** Most recently active first (the last message's time, else the creation's), ties by id as
 * the server breaks them: one order for the sidebar and the quick switcher. */
export function byRecent(a: Conversation, b: Conversation): number {
  const recent = (c: Conversation) => c.last_message_at ?? c.created_at;
  return recent(b) - recent(a) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/** A message created at `at` in the conversation: its last activity (the sidebar's and the
 * server's order) is the latest message's time, a thread reply's as well as any other, as
 * the server records it (`messages_advance_seq`: the greater of the two). */
function messageAt(model: Model, id: Id, at: number): Model {
  const c = model.conversations[id];
  if (!c || (c.conv.last_message_at ?? -Infinity) >= at) return model;
  const conv = { ...c.conv, last_message_at: at };
  return { ...model, conversations: { ...model.conversations, [id]: { ...c, conv } } };
}

/**
 * Applies one committed event. Events at or before `lastPos` were applied already (a resume
 * or a reconnect may repeat them) and change nothing, so applying is idempotent.
 */
export function applyEvent(model: Model, f: EventFrame): Model {
  if (f.pos <= model.lastPos) return model;
  let m: Model = { ...model, lastPos: f.pos };
  const d = f.data;
  const meId = m.me?.id;
  switch (d.type) {
    case "org.updated":
      return { ...m, orgName: d.org.name };
    case "user.created":
    case "user.updated": {
      m = { ...m, users: { ...m.users, [d.user.id]: d.user } };
      if (d.user.id === meId) m = { ...m, me: d.user };
      return m;
    }
    case "department.created":
    case "department.updated":
      return { ...m, departments: { ...m.departments, [d.department.id]: d.department } };
    case "department.deleted": {
      const departments = { ...m.departments };
      delete departments[d.department_id];
      return { ...m, departments };
    }
    case "session.revoked":
      return d.session_id === m.sessionId ? { ...m, signedOut: true } : m;
    case "conversation.created":
    case "members.added": {
      const mine = d.members.find((x) => x.user_id === meId);
      const prev = m.conversations[d.conversation.id];
      if (!prev && !mine) return m; // not ours (cannot normally happen)
      // Already counted (a reload read a newer state): the event's snapshot of the conversation
      // is older than what is here; only my own membership is taken from it.
      const conv = prev && counted(m, d.conversation.id, f.seq) ? prev.conv : d.conversation;
      // Joining (again): what was read of it while not a member (a preview, or before
      // leaving) missed the events of that time, so it is read afresh.
      if (mine && !prev?.me) m = forgetHistory(m, d.conversation.id);
      m = setConversation(m, conv, mine ? myStateFrom(mine, prev?.me, conv.last_seq) : undefined);
      return bumpSeq(m, d.conversation.id, f.seq);
    }
    case "conversation.updated":
      if (!m.conversations[d.conversation.id] || counted(m, d.conversation.id, f.seq)) return m;
      return bumpSeq(setConversation(m, d.conversation), d.conversation.id, f.seq);
    case "members.removed": {
      if (meId && d.user_ids.includes(meId)) return removeConversation(m, d.conversation_id);
      const c = m.conversations[d.conversation_id];
      if (c && !counted(m, d.conversation_id, f.seq)) {
        // A group DM's title names its people: those who left drop out of it.
        const participant_ids = c.conv.participant_ids.filter((id) => !d.user_ids.includes(id));
        const conv = { ...c.conv, participant_ids, member_count: Math.max(0, c.conv.member_count - d.user_ids.length) };
        m = { ...m, conversations: { ...m.conversations, [c.conv.id]: { ...c, conv } } };
      }
      return bumpSeq(m, d.conversation_id, f.seq);
    }
    case "member.updated": {
      const c = m.conversations[d.conversation_id];
      if (c && d.member.user_id === meId) {
        m = setConversation(m, c.conv, myStateFrom(d.member, c.me, c.conv.last_seq));
      }
      return bumpSeq(m, d.conversation_id, f.seq);
    }
    case "conversation.removed":
      return removeConversation(m, d.conversation_id);
    case "message.created": {
      const msg = d.message;
      const known = counted(m, msg.conversation_id, f.seq ?? msg.seq);
      m = addMessage(m, msg);
      if (msg.thread_root_id && d.thread) {
        const summary = d.thread;
        m = mapMessage(m, msg.thread_root_id, (r) => ({ ...r, thread: summary }));
      }
      // (Its own guard, `last_reply_seq`, says whether the followed list counts it already.)
      if (msg.thread_root_id) m = followedReply(m, msg, d.thread);
      m = bumpSeq(m, msg.conversation_id, f.seq ?? msg.seq);
      const c = m.conversations[msg.conversation_id];
      if (!known && c?.me && msg.sender_id !== meId && !msg.thread_root_id && msg.seq > c.me.read_seq) {
        const me = {
          ...c.me,
          unread_count: c.me.unread_count + 1,
          mention_count: c.me.mention_count + (mentionsMe(msg, m.me, m.departments) ? 1 : 0),
        };
        m = { ...m, conversations: { ...m.conversations, [c.conv.id]: { ...c, me } } };
      }
      return m;
    }
    case "message.updated": {
      const msg = d.message;
      // A reply edited in a thread I follow may gain or lose a mention of me: read the list
      // again when it is one the list counts (after my read position, not mine).
      const th = msg.thread_root_id ? m.followed?.[msg.thread_root_id] : undefined;
      if (th && msg.seq > th.read_seq && msg.sender_id !== meId) m = { ...m, followedStale: true };
      // An unread message that gains or loses a mention of me changes the mention badge: the
      // server recounts. Only then (edits, pins and the like are frequent in a busy channel).
      const cid = msg.conversation_id;
      if (!counted(m, cid, f.seq) && !msg.thread_root_id && isUnread(m, cid, msg.seq)) {
        const before = findMessage(m, msg.id);
        const mention = mentionsMe(msg, m.me, m.departments);
        const changed = before ? mentionsMe(before, m.me, m.departments) !== mention : mention || (m.conversations[cid]?.me?.mention_count ?? 0) > 0;
        if (changed) m = markStale(m, cid);
      }
      return bumpSeq(mapMessage(m, msg.id, () => msg), cid, f.seq);
    }
    case "message.deleted": {
      // A reply deleted in a thread I follow may have been new or a mention: read the list again.
      if (d.thread_root_id && m.followed?.[d.thread_root_id]) m = { ...m, followedStale: true };
      // A deleted message no longer counts as unread (nor as a mention): the server recounts
      // when it was unread here, or (not loaded here) when it may have been unread.
      const cid = f.conversation_id;
      if (cid && !d.thread_root_id && !counted(m, cid, f.seq)) {
        const before = findMessage(m, d.message_id);
        const me = m.conversations[cid]?.me;
        const recount = before
          ? !before.deleted_at && isUnread(m, cid, before.seq)
          : (me?.unread_count ?? 0) > 0 || (me?.mention_count ?? 0) > 0;
        if (recount) m = markStale(m, cid);
      }
      return bumpSeq(
        mapMessage(m, d.message_id, (x) => ({ ...x, body: "", deleted_at: d.deleted_at, reactions: [] })),
        cid,
        f.seq,
      );
    }
    case "reaction.added":
    case "reaction.removed": {
      const added = d.type === "reaction.added";
      m = mapMessage(m, d.message_id, (x) => ({ ...x, reactions: toggleReaction(x.reactions, d.emoji, d.user_id, added) }));
      return bumpSeq(m, f.conversation_id, f.seq);
    }
    case "read.updated": {
      const c = m.conversations[d.conversation_id];
      if (!c?.me) return m;
      if (d.read_seq >= c.conv.last_seq) {
        const me = { ...c.me, read_seq: d.read_seq, unread_count: 0, mention_count: 0 };
        return { ...m, conversations: { ...m.conversations, [c.conv.id]: { ...c, me } } };
      }
      const me = { ...c.me, read_seq: d.read_seq };
      m = { ...m, conversations: { ...m.conversations, [c.conv.id]: { ...c, me } } };
      return markStale(m, c.conv.id);
    }
    case "thread.state":
      return followedState(m, d.root_id, d.following, d.read_seq);
  }
  return m;
}

export function toggleReaction(list: { emoji: string; count: number; user_ids: Id[] }[], emoji: string, user: Id, add: boolean) {
  const i = list.findIndex((r) => r.emoji === emoji);
  if (add) {
    if (i < 0) return [...list, { emoji, count: 1, user_ids: [user] }];
    if (list[i].user_ids.includes(user)) return list;
    const out = list.slice();
    out[i] = { ...out[i], count: out[i].count + 1, user_ids: [...out[i].user_ids, user] };
    return out;
  }
  if (i < 0) return list;
  const r = list[i];
  // The server lists the first reactors only (the count is whole): one beyond them is not
  // listed, but counted.
  const listed = r.user_ids.includes(user);
  if (!listed && r.user_ids.length >= r.count) return list;
  if (r.count <= 1) return list.filter((_, j) => j !== i);
  const out = list.slice();
  out[i] = { ...r, count: r.count - 1, user_ids: listed ? r.user_ids.filter((u) => u !== user) : r.user_ids };
  return out;
}

/** Replaces the conversation list with a fresh one from HTTP (after a fresh start or resync). */
export function loadConversations(model: Model, items: ConversationItem[]): Model {
  const conversations: Model["conversations"] = {};
  for (const it of items) conversations[it.conversation.id] = { conv: it.conversation, me: it.me ?? null };
  const timelines: Model["timelines"] = {};
  for (const id of Object.keys(model.timelines)) if (conversations[id]) timelines[id] = model.timelines[id];
  return { ...model, conversations, timelines, stale: [] };
}

/** Marks a conversation read up to `seq` locally (the server confirms with `read.updated`). */
export function markReadLocal(model: Model, id: Id, seq: number): Model {
  const c = model.conversations[id];
  if (!c?.me || c.me.read_seq >= seq) return model;
  const me = seq >= c.conv.last_seq ? { ...c.me, read_seq: seq, unread_count: 0, mention_count: 0 } : { ...c.me, read_seq: seq };
  return { ...model, conversations: { ...model.conversations, [id]: { ...c, me } } };
}

/** Display name of a conversation for the user `meId`. */
export function conversationTitle(conv: Conversation, meId: Id | undefined, users: Record<Id, User>): string {
  if (conv.name) return conv.name;
  const others = conv.participant_ids.filter((p) => p !== meId);
  const names = (others.length ? others : conv.participant_ids).map((p) => users[p]?.display_name ?? "…");
  // Chinese lists names with the enumeration comma (张伟、李娜).
  return names.join(useLang.getState().lang === "zh-CN" ? "、" : ", ");
}

/** A conversation's member list after a change its event announced. Idempotent (a list read
 * over HTTP after the change already holds it): people are added or replaced by id. */
export function applyMembershipChange(
  list: Member[],
  change:
    | { type: "members.added"; members: Member[] }
    | { type: "members.removed"; user_ids: Id[] }
    | { type: "member.updated"; member: Member },
): Member[] {
  switch (change.type) {
    case "members.added": {
      const added = new Map(change.members.map((m) => [m.user_id, m]));
      const kept = list.map((m) => added.get(m.user_id) ?? m);
      const known = new Set(list.map((m) => m.user_id));
      return [...kept, ...change.members.filter((m) => !known.has(m.user_id))];
    }
    case "members.removed": {
      const gone = new Set(change.user_ids);
      return list.filter((m) => !gone.has(m.user_id));
    }
    case "member.updated":
      return list.map((m) => (m.user_id === change.member.user_id ? change.member : m));
  }
}
