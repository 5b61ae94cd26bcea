import { describe, expect, it } from "vitest";
import type { Conversation, EventFrame, Member, MemberRole, Message, User } from "../types";
import {
  addMessage,
  applyEvent,
  byRecent,
  emptyModel,
  loadConversations,
  applyMembershipChange,
  dropSettled,
  loadFollowed,
  moreFollowed,
  refreshFollowedFirstPage,
  markReadLocal,
  mergePage,
  toggleReaction,
  unreadThreads,
  type Model,
} from "./model";

const ME = "u-me";
const BOB = "u-bob";
const C = "c-1";

function user(id: string, extra: Partial<User> = {}): User {
  return {
    id,
    username: id,
    display_name: id,
    title: "",
    role: "member",
    status: "active",
    primary_department_id: "d-sales",
    secondary_department_ids: [],
    managed_department_ids: [],
    must_change_password: false,
    created_at: 0,
    updated_at: 0,
    ...extra,
  };
}

function conv(last_seq = 0): Conversation {
  return {
    id: C,
    kind: "public",
    name: "general",
    topic: "",
    description: "",
    linked_departments: [],
    participant_ids: [],
    last_seq,
    member_count: 2,
    created_at: 0,
    updated_at: 0,
  };
}

function msg(seq: number, extra: Partial<Message> = {}): Message {
  return {
    id: `m-${seq}`,
    conversation_id: C,
    seq,
    sender_id: BOB,
    body: `message ${seq}`,
    mentions: { user_ids: [], department_ids: [], channel: false },
    created_at: 1_000 + seq,
    reactions: [],
    ...extra,
  };
}

let pos = 100;
function ev(data: EventFrame["data"], seq?: number): EventFrame {
  return { op: "event", pos: ++pos, at: 5_000, conversation_id: C, seq, data };
}

function start(lastSeq = 3): Model {
  let m: Model = { ...emptyModel(), me: user(ME), sessionId: "s-1" };
  m = loadConversations(m, [{ conversation: conv(lastSeq), me: { role: "member", direct: true, via_department: false, read_seq: lastSeq, unread_count: 0, mention_count: 0 } }]);
  m = { ...m, timelines: { [C]: mergePage(undefined, [msg(1), msg(2), msg(3)], { before: false, after: false }, "replace") } };
  return { ...m, lastPos: pos };
}

describe("sends a page shows stored", () => {
  it("are no longer pending (their answer and event were lost)", () => {
    let m = start();
    const waiting = (key: string) => ({ key, conversationId: C, threadRootId: null, body: "hi", files: [], createdAt: 1, status: "failed" as const, attempts: 8 });
    m = { ...m, pending: [waiting("k1"), waiting("k2")] };
    m = dropSettled(m, [msg(4, { sender_id: ME, client_key: "k1" }), msg(5, { sender_id: BOB, client_key: "k2" })]);
    expect(m.pending.map((p) => p.key)).toEqual(["k2"]);
  });
});

describe("joining a conversation read before", () => {
  it("drops what was read as a visitor or before leaving (it missed that time's events)", () => {
    let m = start();
    m = applyEvent(m, ev({ type: "conversation.removed", conversation_id: C }));
    // Previewed as a visitor: a timeline without a membership.
    m = { ...m, timelines: { [C]: mergePage(undefined, [msg(1), msg(2)], {}, "replace") } };
    const joined = { user_id: ME, role: "member" as const, direct: true, via_department: false, joined_at: 5_000 };
    m = applyEvent(m, ev({ type: "members.added", conversation: conv(9), members: [joined] }, 10));
    expect(m.timelines[C]).toBeUndefined();
    expect(m.conversations[C].me?.role).toBe("member");
    // Someone else joining later changes nothing of mine.
    m = { ...m, timelines: { [C]: mergePage(undefined, [msg(9)], {}, "replace") } };
    const bob = { ...joined, user_id: BOB };
    m = applyEvent(m, ev({ type: "members.added", conversation: conv(9), members: [bob] }, 11));
    expect(m.timelines[C].messages).toHaveLength(1);
  });
});

describe("applying events", () => {
  it("appends a new message and counts it unread, and mentions of me", () => {
    let m = start();
    m = applyEvent(m, ev({ type: "message.created", message: msg(4) }, 4));
    m = applyEvent(m, ev({ type: "message.created", message: msg(5, { mentions: { user_ids: [ME], department_ids: [], channel: false } }) }, 5));
    m = applyEvent(m, ev({ type: "message.created", message: msg(6, { mentions: { user_ids: [], department_ids: ["d-sales"], channel: false } }) }, 6));
    expect(m.timelines[C].messages.map((x) => x.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(m.conversations[C].conv.last_seq).toBe(6);
    expect(m.conversations[C].me).toMatchObject({ unread_count: 3, mention_count: 2 });
  });

  it("does not count my own messages or thread replies as unread", () => {
    let m = start();
    m = applyEvent(m, ev({ type: "message.created", message: msg(4, { sender_id: ME }) }, 4));
    m = applyEvent(m, ev({ type: "message.created", message: msg(5, { thread_root_id: "m-1" }), thread: { reply_count: 1, participant_ids: [BOB] } }, 5));
    expect(m.conversations[C].me?.unread_count).toBe(0);
    expect(m.timelines[C].messages.map((x) => x.seq)).toEqual([1, 2, 3, 4]);
    expect(m.timelines[C].messages[0].thread?.reply_count).toBe(1);
  });

  it("ignores events it has already applied (resume replays are harmless)", () => {
    const m0 = start();
    const e = ev({ type: "message.created", message: msg(4) }, 4);
    const once = applyEvent(m0, e);
    const twice = applyEvent(once, e);
    expect(twice).toBe(once);
    expect(twice.conversations[C].me?.unread_count).toBe(1);
  });

  it("keeps order by seq when messages arrive out of order", () => {
    let m = start();
    m = addMessage(m, msg(6));
    m = addMessage(m, msg(5));
    m = addMessage(m, msg(4));
    m = addMessage(m, msg(5, { body: "again" }));
    expect(m.timelines[C].messages.map((x) => x.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    // A message's creation state arriving again does not replace what is shown.
    expect(m.timelines[C].messages[4].body).toBe(msg(5).body);
  });

  it("keeps a reaction that arrived before the answer to my own send", () => {
    let m = start();
    const mine = msg(4, { sender_id: ME, client_key: "k9" });
    m = applyEvent(m, ev({ type: "message.created", message: mine }, 4));
    m = applyEvent(m, ev({ type: "reaction.added", message_id: mine.id, user_id: "u-other", emoji: "👍" }, 5));
    const reacted = m.timelines[C].messages.find((x) => x.id === mine.id);
    expect(reacted?.reactions.length).toBe(1);
    // The HTTP answer (the state at creation) comes last.
    m = addMessage(m, mine);
    expect(m.timelines[C].messages.find((x) => x.id === mine.id)).toBe(reacted);
    expect(m.pending.length).toBe(0);
  });

  it("applies edits, deletions and reactions idempotently", () => {
    let m = start();
    m = applyEvent(m, ev({ type: "message.updated", message: msg(2, { body: "edited", edited_at: 9 }) }, 4));
    m = applyEvent(m, ev({ type: "reaction.added", message_id: "m-2", emoji: "👍", user_id: BOB }, 5));
    m = applyEvent(m, ev({ type: "reaction.added", message_id: "m-2", emoji: "👍", user_id: ME }, 6));
    expect(m.timelines[C].messages[1]).toMatchObject({ body: "edited", reactions: [{ emoji: "👍", count: 2 }] });
    m = applyEvent(m, ev({ type: "reaction.removed", message_id: "m-2", emoji: "👍", user_id: ME }, 7));
    m = applyEvent(m, ev({ type: "reaction.removed", message_id: "m-2", emoji: "👍", user_id: BOB }, 8));
    expect(m.timelines[C].messages[1].reactions).toEqual([]);
    m = applyEvent(m, ev({ type: "message.deleted", message_id: "m-3", deleted_at: 10 }, 9));
    expect(m.timelines[C].messages[2]).toMatchObject({ body: "", deleted_at: 10 });
  });

  it("clears badges when another device reads, and refetches counts when read moves back", () => {
    let m = start();
    m = applyEvent(m, ev({ type: "message.created", message: msg(4) }, 4));
    m = applyEvent(m, ev({ type: "read.updated", conversation_id: C, read_seq: 4 }));
    expect(m.conversations[C].me).toMatchObject({ read_seq: 4, unread_count: 0, mention_count: 0 });
    m = applyEvent(m, ev({ type: "read.updated", conversation_id: C, read_seq: 2 }));
    expect(m.stale).toEqual([C]);
  });

  it("does not count again what a reload already counted (events held while it ran)", () => {
    // HTTP read the conversation after message 4 and a member left (seq 5): both are in
    // what it returned; message 6 came later.
    let m = start();
    const mine = { role: "member" as const, direct: true, via_department: false, read_seq: 3, unread_count: 1, mention_count: 0 };
    m = loadConversations(m, [{ conversation: { ...conv(5), member_count: 1 }, me: mine }]);
    m = applyEvent(m, ev({ type: "message.created", message: msg(4) }, 4));
    m = applyEvent(m, ev({ type: "members.removed", conversation_id: C, user_ids: ["u-carol"] }, 5));
    expect(m.conversations[C].me?.unread_count).toBe(1);
    expect(m.conversations[C].conv.member_count).toBe(1);
    m = applyEvent(m, ev({ type: "message.created", message: msg(6) }, 6));
    expect(m.conversations[C].me?.unread_count).toBe(2);
  });

  it("asks for the counts again when an unread message is deleted or edited", () => {
    let m = start();
    m = applyEvent(m, ev({ type: "message.created", message: msg(4, { mentions: { user_ids: [ME], department_ids: [], channel: false } }) }, 4));
    expect(m.conversations[C].me).toMatchObject({ unread_count: 1, mention_count: 1 });
    m = applyEvent(m, ev({ type: "message.deleted", message_id: "m-4", deleted_at: 10 }, 5));
    expect(m.stale).toEqual([C]);
    // Nothing unread: nothing to recount.
    m = { ...m, stale: [] };
    m = applyEvent(m, ev({ type: "read.updated", conversation_id: C, read_seq: 5 }));
    m = applyEvent(m, ev({ type: "message.updated", message: msg(2, { body: "edited" }) }, 6));
    m = applyEvent(m, ev({ type: "message.deleted", message_id: "m-3", deleted_at: 11 }, 7));
    expect(m.stale).toEqual([]);
    m = applyEvent(m, ev({ type: "message.created", message: msg(8) }, 8));
    // An unread message edited (or pinned) without a change to whether it mentions me: no
    // recount (a busy channel would refetch on every edit).
    m = applyEvent(m, ev({ type: "message.updated", message: msg(8, { body: "typo fixed" }) }, 9));
    expect(m.stale).toEqual([]);
    m = applyEvent(m, ev({ type: "message.updated", message: msg(8, { body: "@me now", mentions: { user_ids: [ME], department_ids: [], channel: false } }) }, 10));
    expect(m.stale).toEqual([C]);
  });

  it("counts a mention of a department above mine, as the server does", () => {
    let m = start();
    m = {
      ...m,
      departments: {
        "d-top": { id: "d-top", name: "Top", parent_id: null, created_at: 0, updated_at: 0 },
        "d-sales": { id: "d-sales", name: "Sales", parent_id: "d-top", created_at: 0, updated_at: 0 },
      },
    };
    const of = (d: string) => ({ user_ids: [], department_ids: [d], channel: false });
    m = applyEvent(m, ev({ type: "message.created", message: msg(4, { mentions: of("d-top") }) }, 4));
    m = applyEvent(m, ev({ type: "message.created", message: msg(5, { mentions: of("d-other") }) }, 5));
    expect(m.conversations[C].me).toMatchObject({ unread_count: 2, mention_count: 1 });
  });

  it("asks for the counts again when an unread message it has not loaded is deleted", () => {
    let m = start();
    const mine = { role: "member" as const, direct: true, via_department: false, read_seq: 3, unread_count: 1, mention_count: 0 };
    m = loadConversations(m, [{ conversation: conv(4), me: mine }]); // message 4, not loaded here
    m = applyEvent(m, ev({ type: "message.deleted", message_id: "m-4", deleted_at: 10 }, 5));
    expect(m.stale).toEqual([C]);
  });

  it("keeps a group DM's people and counts as a newer read left them", () => {
    let m = start();
    const group = { ...conv(5), kind: "group" as const, participant_ids: [ME, BOB, "u-carol"], member_count: 3 };
    const mine = { role: "member" as const, direct: true, via_department: false, read_seq: 5, unread_count: 0, mention_count: 0 };
    m = loadConversations(m, [{ conversation: group, me: mine }]);
    m = applyEvent(m, ev({ type: "members.removed", conversation_id: C, user_ids: ["u-carol"] }, 6));
    expect(m.conversations[C].conv.participant_ids).toEqual([ME, BOB]);
    // A reload read the group after someone else was added and removed (seq 8): the
    // `members.added` of seq 7, arriving after, does not bring its older snapshot back.
    m = loadConversations(m, [{ conversation: { ...group, last_seq: 8, participant_ids: [ME, BOB], member_count: 2 }, me: mine }]);
    const older = { ...group, last_seq: 7, participant_ids: [ME, BOB, "u-dan"], member_count: 3 };
    const dan = { user_id: "u-dan", role: "member" as const, direct: true, via_department: false, read_seq: 0, joined_at: 0 };
    m = applyEvent(m, ev({ type: "members.added", conversation: older, members: [dan] } as never, 7));
    expect(m.conversations[C].conv).toMatchObject({ member_count: 2, participant_ids: [ME, BOB] });
  });

  it("adds and removes conversations as my membership changes", () => {
    let m = start();
    const other = { ...conv(1), id: "c-2", name: "new" };
    m = applyEvent(m, { op: "event", pos: ++pos, at: 1, conversation_id: "c-2", seq: 1, data: { type: "members.added", conversation: other, members: [{ user_id: ME, role: "member", direct: true, via_department: false, joined_at: 1 }] } });
    expect(m.conversations["c-2"].me?.role).toBe("member");
    m = applyEvent(m, { op: "event", pos: ++pos, at: 1, conversation_id: "c-2", seq: 2, data: { type: "members.removed", conversation_id: "c-2", user_ids: [ME] } });
    expect(m.conversations["c-2"]).toBeUndefined();
  });

  it("signs out when this session is revoked, not another", () => {
    let m = start();
    m = applyEvent(m, ev({ type: "session.revoked", session_id: "s-other" }));
    expect(m.signedOut).toBe(false);
    m = applyEvent(m, ev({ type: "session.revoked", session_id: "s-1" }));
    expect(m.signedOut).toBe(true);
  });
});

describe("a conversation's last activity", () => {
  const at = (m: Model) => m.conversations[C].conv.last_message_at;

  it("moves with a thread reply, as the server's last_message_at does", () => {
    let m = start();
    m = applyEvent(m, ev({ type: "message.created", message: msg(4, { created_at: 7_000 }) }, 4));
    expect(at(m)).toBe(7_000);
    const reply = msg(5, { thread_root_id: "m-1", created_at: 9_000 });
    m = applyEvent(m, ev({ type: "message.created", message: reply, thread: { reply_count: 1, participant_ids: [BOB] } }, 5));
    expect(at(m)).toBe(9_000);
    expect(m.conversations[C].conv.last_seq).toBe(5);
  });

  it("moves with my own reply when the server answers the send, before its event", () => {
    let m = start();
    m = addMessage(m, msg(4, { sender_id: ME, thread_root_id: "m-1", client_key: "k1", created_at: 8_000 }));
    expect(at(m)).toBe(8_000);
    m = applyEvent(m, ev({ type: "message.created", message: msg(4, { sender_id: ME, thread_root_id: "m-1", client_key: "k1", created_at: 8_000 }) }, 4));
    expect(at(m)).toBe(8_000);
  });

  it("orders lists most recent first, ties by id as the server does", () => {
    const c = (id: string, last?: number, created = 0): Conversation => ({ ...conv(), id, last_message_at: last, created_at: created });
    const list = [c("a", 5), c("c", 5), c("b", 9), c("d", undefined, 7)];
    expect(list.sort(byRecent).map((x) => x.id)).toEqual(["b", "d", "c", "a"]);
  });

  it("takes the later time, never an earlier one (the server's max)", () => {
    let m = start();
    m = addMessage(m, msg(4, { created_at: 8_000 }));
    m = applyEvent(m, ev({ type: "message.created", message: msg(5, { thread_root_id: "m-1", created_at: 7_000 }) }, 5));
    expect(at(m)).toBe(8_000);
    // Other changes (a reaction, an edit) are not activity.
    m = applyEvent(m, ev({ type: "reaction.added", message_id: "m-1", user_id: BOB, emoji: "👍" }, 6));
    expect(at(m)).toBe(8_000);
  });
});

describe("optimistic sends", () => {
  it("replaces the pending copy when the message with its client key arrives", () => {
    let m = start();
    m = { ...m, pending: [{ key: "k1", conversationId: C, threadRootId: null, body: "hi", files: [], createdAt: 1, status: "sending", attempts: 1 }] };
    // The event may arrive before the HTTP answer, and then the answer: one message either way.
    m = applyEvent(m, ev({ type: "message.created", message: msg(4, { sender_id: ME, client_key: "k1" }) }, 4));
    expect(m.pending).toEqual([]);
    m = addMessage(m, msg(4, { sender_id: ME, client_key: "k1" }));
    expect(m.timelines[C].messages.filter((x) => x.seq === 4)).toHaveLength(1);
  });
});

describe("history pages", () => {
  it("merges older pages in front without duplicates", () => {
    let t = mergePage(undefined, [msg(5), msg(6)], { before: true, after: false }, "replace");
    t = mergePage(t, [msg(3), msg(4), msg(5)], { before: false }, "older");
    expect(t.messages.map((x) => x.seq)).toEqual([3, 4, 5, 6]);
    expect(t.hasOlder).toBe(false);
  });

  it("does not append live messages to a window that is not at the end", () => {
    let m = start();
    m = { ...m, timelines: { [C]: { ...m.timelines[C], hasNewer: true } } };
    m = addMessage(m, msg(9));
    expect(m.timelines[C].messages.map((x) => x.seq)).toEqual([1, 2, 3]);
  });

  it("marks read locally", () => {
    let m = start();
    m = applyEvent(m, ev({ type: "message.created", message: msg(4) }, 4));
    m = markReadLocal(m, C, 4);
    expect(m.conversations[C].me).toMatchObject({ read_seq: 4, unread_count: 0 });
  });
});

describe("reactions", () => {
  it("count reactors beyond the listed ones (the server lists the first 50)", () => {
    const listed = Array.from({ length: 50 }, (_, i) => `u-${i}`);
    const many = [{ emoji: "👍", count: 60, user_ids: listed }];
    expect(toggleReaction(many, "👍", "u-55", false)[0]).toMatchObject({ count: 59, user_ids: listed });
    expect(toggleReaction(many, "👍", "u-3", false)[0].count).toBe(59);
    expect(toggleReaction(many, "👍", ME, true)[0]).toMatchObject({ count: 61 });
    // Not listed and nobody beyond the list: not a reactor, nothing changes.
    const few = [{ emoji: "👍", count: 2, user_ids: ["u-1", "u-2"] }];
    expect(toggleReaction(few, "👍", "u-9", false)).toBe(few);
  });
});

describe("threads I follow", () => {
  const root = msg(2, { sender_id: ME });
  const followed = (m: Model) => m.followed?.["m-2"];
  const reply = (seq: number, extra: Partial<Message> = {}) => msg(seq, { thread_root_id: "m-2", created_at: 9_000 + seq, ...extra });
  const summary = { reply_count: 1, participant_ids: [BOB] };
  function following(): Model {
    const m = start(5);
    return loadFollowed(m, [{ root_id: "m-2", root, conversation_id: C, read_seq: 5, unread_count: 0, mention_count: 0, last_reply_at: 1 }]);
  }

  it("count others' new replies, and mentions of me, in the order of the latest reply", () => {
    let m = following();
    m = applyEvent(m, ev({ type: "message.created", message: reply(6), thread: summary }, 6));
    m = applyEvent(m, ev({ type: "message.created", message: reply(7, { mentions: { user_ids: [], department_ids: [], channel: true } }), thread: summary }, 7));
    m = applyEvent(m, ev({ type: "message.created", message: reply(8, { sender_id: ME }), thread: summary }, 8));
    expect(followed(m)).toMatchObject({ unread_count: 2, mention_count: 1, last_reply_at: 9_008 });
    expect(followed(m)?.root.thread).toEqual(summary);
    expect(unreadThreads(m).map((t) => t.root_id)).toEqual(["m-2"]);
    // A reply in a thread I do not follow counts nowhere (and the channel's counts ignore it).
    m = applyEvent(m, ev({ type: "message.created", message: msg(9, { thread_root_id: "m-1" }) }, 9));
    expect(Object.keys(m.followed ?? {})).toEqual(["m-2"]);
  });

  it("follow what my devices say: read, replied, unfollowed, or newly followed (read again)", () => {
    let m = following();
    m = applyEvent(m, ev({ type: "message.created", message: reply(6), thread: summary }, 6));
    m = applyEvent(m, ev({ type: "thread.state", conversation_id: C, root_id: "m-2", following: true, read_seq: 6 }));
    expect(followed(m)).toMatchObject({ read_seq: 6, unread_count: 0 });
    // My reply on another device: its thread.state comes first, then the reply, not unread.
    m = applyEvent(m, ev({ type: "thread.state", conversation_id: C, root_id: "m-2", following: true, read_seq: 7 }));
    m = applyEvent(m, ev({ type: "message.created", message: reply(7, { sender_id: ME }), thread: summary }, 7));
    expect(followed(m)?.unread_count).toBe(0);
    m = applyEvent(m, ev({ type: "thread.state", conversation_id: C, root_id: "m-1", following: true, read_seq: 1 }));
    expect(m.followedStale).toBe(true);
    m = applyEvent(m, ev({ type: "thread.state", conversation_id: C, root_id: "m-2", following: false, read_seq: 0 }));
    expect(followed(m)).toBeUndefined();
  });

  it("read the first page again for a reply in a thread the loaded pages lack", () => {
    let m = following();
    m = applyEvent(m, ev({ type: "message.created", message: msg(9, { thread_root_id: "m-1" }) }, 9));
    expect(m.followedMaybe).toBe(false); // every followed thread is loaded: not one of mine
    m = { ...m, followedMore: "cursor" };
    m = applyEvent(m, ev({ type: "message.created", message: msg(10, { thread_root_id: "m-1" }) }, 10));
    expect(m.followedMaybe).toBe(true);
  });

  it("take a fresh first page over older pages loaded, keeping them and their cursor", () => {
    let m = start(5);
    const row = (rootId: string, unread: number) => ({ root_id: rootId, root, conversation_id: C, read_seq: 1, unread_count: unread, mention_count: 0 });
    m = loadFollowed(m, [row("m-2", 0)], "page-2");
    m = moreFollowed(m, [row("m-1", 0)], "page-3");
    m = refreshFollowedFirstPage(m, [row("m-1", 4), row("m-2", 0)], "page-2-again");
    expect(m.followed?.["m-1"]?.unread_count).toBe(4);
    expect(Object.keys(m.followed ?? {}).sort()).toEqual(["m-1", "m-2"]);
    expect(m.followedMore).toBe("page-3");
  });

  it("add an older page without undoing what events changed, and keep its cursor", () => {
    let m = start(5);
    const page = (rootId: string, unread: number) => ({ root_id: rootId, root, conversation_id: C, read_seq: 1, unread_count: unread, mention_count: 0 });
    m = loadFollowed(m, [page("m-2", 0)], "cursor-1");
    expect(m.followedMore).toBe("cursor-1");
    m = applyEvent(m, ev({ type: "message.created", message: reply(6), thread: summary }, 6));
    m = moreFollowed(m, [page("m-2", 0), page("m-1", 3)], null);
    expect(followed(m)?.unread_count).toBe(1);
    expect(m.followed?.["m-1"]?.unread_count).toBe(3);
    expect(m.followedMore).toBeNull();
    // A fresh first page starts the list again.
    m = loadFollowed(m, [page("m-2", 0)], "cursor-2");
    expect(Object.keys(m.followed ?? {})).toEqual(["m-2"]);
    expect(m.followedMore).toBe("cursor-2");
  });

  it("do not count a reply twice when the list was read after it", () => {
    let m = start(5);
    m = loadFollowed(m, [{ root_id: "m-2", root, conversation_id: C, read_seq: 2, unread_count: 1, mention_count: 0, last_reply_at: 9_006, last_reply_seq: 6 }]);
    m = applyEvent(m, ev({ type: "message.created", message: reply(6), thread: summary }, 6));
    expect(followed(m)?.unread_count).toBe(1);
  });

  it("count a reply the conversation list has counted already (the lists are read apart)", () => {
    let m = following();
    const mine = { role: "member" as const, direct: true, via_department: false, read_seq: 6, unread_count: 0, mention_count: 0 };
    m = loadConversations(m, [{ conversation: conv(6), me: mine }]);
    m = applyEvent(m, ev({ type: "message.created", message: reply(6), thread: summary }, 6));
    expect(followed(m)?.unread_count).toBe(1);
  });

  it("show a root as edited or deleted, and read the list again when a reply is", () => {
    let m = following();
    m = applyEvent(m, ev({ type: "message.updated", message: { ...root, body: "edited root", edited_at: 7 } }, 6));
    expect(followed(m)?.root.body).toBe("edited root");
    m = applyEvent(m, ev({ type: "message.deleted", message_id: "m-2", deleted_at: 8 }, 7));
    expect(followed(m)?.root.deleted_at).toBe(8);
    expect(m.followedStale).toBe(false);
    m = applyEvent(m, ev({ type: "message.deleted", message_id: "m-9", thread_root_id: "m-2", deleted_at: 9 }, 8));
    expect(m.followedStale).toBe(true);
  });

  it("forget the threads of a conversation I left", () => {
    let m = following();
    m = applyEvent(m, ev({ type: "conversation.removed", conversation_id: C }));
    expect(m.followed).toEqual({});
  });
});

describe("a member list kept by events", () => {
  const member = (id: string, role: MemberRole = "member"): Member => ({ user_id: id, role, direct: true, via_department: false, joined_at: 1 });
  it("adds, replaces, removes and updates by id, each change idempotent", () => {
    let list: Member[] = [member("a"), member("b")];
    list = applyMembershipChange(list, { type: "members.added", members: [member("c"), member("a", "admin")] });
    expect(list.map((m) => [m.user_id, m.role])).toEqual([["a", "admin"], ["b", "member"], ["c", "member"]]);
    expect(applyMembershipChange(list, { type: "members.added", members: [member("c")] })).toHaveLength(3);
    list = applyMembershipChange(list, { type: "members.removed", user_ids: ["b", "z"] });
    expect(list.map((m) => m.user_id)).toEqual(["a", "c"]);
    list = applyMembershipChange(list, { type: "member.updated", member: member("c", "admin") });
    expect(list[1].role).toBe("admin");
    expect(applyMembershipChange(list, { type: "member.updated", member: member("q") })).toEqual(list);
  });
});
