// A conversation: header, the virtualised message list (older pages load as you scroll up
// without the view jumping; first unread and latest are one click away), typing, composer,
// and the thread or members panel beside it.
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { VList, type VListHandle } from "virtua";
import { api, ApiError } from "../api";
import { formatDay, useLang, useT } from "../i18n";
import { navigate, paths } from "../router";
import { conversationTitle, type Pending } from "../state/model";
import { loadAround, loadLatest, loadNewer, loadOlder, markRead, releaseUnread, useApp } from "../state/store";
import type { Conversation, Id, Message, MyState } from "../types";
import { Composer } from "./Composer";
import { FileLibrary } from "./Files";
import { BackButton, ErrorNote, TypingNotice } from "./common";
import { MembersPanel } from "./MembersPanel";
import { MessageItem, PendingItem } from "./MessageItem";
import { ThreadPanel } from "./ThreadPanel";

const GROUP_GAP_MS = 5 * 60_000;
const NO_PENDING: Pending[] = [];

type Row =
  | { kind: "start"; key: string; more: boolean }
  | { kind: "day"; key: string; at: number }
  | { kind: "unread"; key: string }
  | { kind: "msg"; key: string; m: Message; grouped: boolean }
  | { kind: "pending"; key: string; p: Pending };

/**
 * The rows of the list. `unread` is the range of sequence numbers that were unread when the
 * conversation was opened (read position, latest): the "New messages" line goes before the
 * first of them, and messages arriving while the reader watches do not move it.
 */
export function buildRows(messages: Message[], pending: Pending[], hasOlder: boolean, unread: { after: number; upto: number } | null, meId: Id | undefined): Row[] {
  const rows: Row[] = [{ kind: "start", key: "start", more: hasOlder }];
  let prev: Message | null = null;
  let unreadPlaced = false;
  for (const m of messages) {
    const day = new Date(m.created_at).toDateString();
    const newDay = !prev || new Date(prev.created_at).toDateString() !== day;
    if (newDay) rows.push({ kind: "day", key: "d" + m.seq, at: m.created_at });
    let unreadHere = false;
    if (!unreadPlaced && unread && m.seq > unread.after && m.seq <= unread.upto && m.sender_id !== meId && !m.deleted_at) {
      rows.push({ kind: "unread", key: "unread" });
      unreadPlaced = true;
      unreadHere = true;
    }
    const grouped = !!prev && !newDay && !unreadHere && prev.sender_id === m.sender_id && !prev.deleted_at && m.created_at - prev.created_at < GROUP_GAP_MS;
    rows.push({ kind: "msg", key: m.id, m, grouped });
    prev = m;
  }
  for (const p of pending) rows.push({ kind: "pending", key: p.key, p });
  return rows;
}

function canPostIn(conv: Conversation, me: MyState | null): boolean {
  if (!me || conv.archived_at) return false;
  if (conv.kind === "announcement") return me.role === "admin" || me.role === "poster";
  return true;
}

export function ConversationView({ id, thread, jumpTo }: { id: Id; thread?: Id; jumpTo?: Id }) {
  const t = useT();
  const lang = useLang((s) => s.lang);
  const entry = useApp((s) => s.conversations[id]);
  const timeline = useApp((s) => s.timelines[id]);
  const pendingAll = useApp((s) => s.pending);
  const meId = useApp((s) => s.me?.id);
  const myRole = useApp((s) => s.me?.role);
  const users = useApp((s) => s.users);
  const [visitor, setVisitor] = useState<Conversation | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [notFound, setNotFound] = useState(false);
  const [panel, setPanel] = useState<"members" | "files" | null>(null);
  const [dragging, setDragging] = useState(false);
  const attachRef = useRef<((files: File[]) => void) | null>(null);
  const [shift, setShift] = useState(false);
  const [atBottom, setAtBottom] = useState(true);
  const [highlight, setHighlight] = useState<Id | undefined>(jumpTo);
  const list = useRef<VListHandle>(null);
  const loadingOlder = useRef(false);
  const initialScroll = useRef(false);
  // Scroll events before the first positioning settles are layout, not the reader.
  const settled = useRef(false);
  // What was unread when the conversation was opened: where "New messages" goes.
  const [unreadAtOpen, setUnreadAtOpen] = useState<{ after: number; upto: number } | null>(
    entry?.me ? { after: entry.me.read_seq, upto: entry.conv.last_seq } : null,
  );

  const conv = entry?.conv ?? visitor;
  const me = entry?.me ?? null;
  const pending = useMemo(() => pendingAll.filter((p) => p.conversationId === id && !p.threadRootId), [pendingAll, id]);

  // Load the conversation (for a visitor of a public channel) and its latest page or the window
  // around a message; again when I stop being a member while it is open (removed, or I left on
  // another device): a public channel stays open to read, anything else shows as gone.
  const gone = !entry;
  // Bumped by "Try again" after a failed first load.
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    let cancelled = false;
    setNotFound(false); // added back meanwhile, say
    (async () => {
      try {
        if (!useApp.getState().conversations[id]) {
          const it = await api.conversation(id);
          if (!cancelled) setVisitor(it.conversation);
        }
        if (jumpTo) await loadAround(id, jumpTo);
        else if (!useApp.getState().timelines[id]) await loadLatest(id);
      } catch (e) {
        if (e instanceof ApiError && (e.status === 404 || e.status === 403)) setNotFound(true);
        else setError(e);
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [id, jumpTo, gone, attempt]);

  useEffect(() => {
    if (unreadAtOpen === null && entry?.me) setUnreadAtOpen({ after: entry.me.read_seq, upto: entry.conv.last_seq });
  }, [entry?.me, entry?.conv.last_seq, unreadAtOpen]);

  const rows = useMemo(
    () => buildRows(timeline?.messages ?? [], pending.length ? pending : NO_PENDING, timeline?.hasOlder ?? false, unreadAtOpen, meId),
    [timeline, pending, unreadAtOpen, meId],
  );

  // First scroll: to the message jumped to, the first unread, or the end.
  useLayoutEffect(() => {
    if (initialScroll.current || !timeline || !list.current) return;
    initialScroll.current = true;
    const target = jumpTo ? rows.findIndex((r) => r.key === jumpTo) : rows.findIndex((r) => r.kind === "unread");
    if (target >= 0) list.current.scrollToIndex(target, { align: jumpTo ? "center" : "start" });
    else list.current.scrollToIndex(rows.length - 1, { align: "end" });
    requestAnimationFrame(() => requestAnimationFrame(() => (settled.current = true)));
  }, [timeline, rows, jumpTo]);

  // Stay at the bottom as messages arrive, when the reader is there.
  const count = rows.length;
  const lastKey = rows[rows.length - 1]?.key;
  useLayoutEffect(() => {
    if (!initialScroll.current || shift) return;
    if (atBottom) list.current?.scrollToIndex(count - 1, { align: "end" });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [lastKey]);

  useEffect(() => {
    if (shift) {
      const h = requestAnimationFrame(() => setShift(false));
      return () => cancelAnimationFrame(h);
    }
  }, [shift, count]);

  // Read when the latest messages are on screen and the window has focus (not again after
  // "mark unread" until something new arrives or the person leaves: see `markRead`).
  const lastSeq = conv?.last_seq ?? 0;
  const member = !!me;
  useEffect(() => () => releaseUnread(id), [id]);
  useEffect(() => {
    if (!member || !atBottom || timeline?.hasNewer) return;
    const mark = () => {
      if (document.visibilityState === "visible") markRead(id);
    };
    mark();
    document.addEventListener("visibilitychange", mark);
    window.addEventListener("focus", mark);
    return () => {
      document.removeEventListener("visibilitychange", mark);
      window.removeEventListener("focus", mark);
    };
  }, [id, member, atBottom, lastSeq, timeline?.hasNewer]);

  const onScroll = useCallback(
    async (offset: number) => {
      const l = list.current;
      if (!l || !settled.current) return;
      const bottom = offset + l.viewportSize >= l.scrollSize - 48;
      setAtBottom(bottom);
      if (bottom && useApp.getState().timelines[id]?.hasNewer) void loadNewer(id);
      if (offset < 300 && !loadingOlder.current && useApp.getState().timelines[id]?.hasOlder) {
        loadingOlder.current = true;
        try {
          await loadOlder(id, () => setShift(true));
        } catch (e) {
          setError(e);
        } finally {
          loadingOlder.current = false;
        }
      }
    },
    [id],
  );

  if (notFound)
    return (
      <div className="empty-page">
        <p>{t("conv.notFound")}</p>
      </div>
    );
  // After a failed first load: load again.
  const retryLoad = (
    <button
      className="small"
      onClick={() => {
        setError(null);
        setAttempt((n) => n + 1);
      }}
    >
      {t("files.retry")}
    </button>
  );
  if (!conv)
    return (
      <div className="empty-page">
        <p>{t("common.loading")}</p>
        <ErrorNote error={error} />
        {error != null && retryLoad}
      </div>
    );

  const title = conversationTitle(conv, meId, users);
  const canPost = canPostIn(conv, me);
  const unreadIndex = rows.findIndex((r) => r.kind === "unread");
  const isChannel = conv.kind !== "dm" && conv.kind !== "group";

  async function join() {
    try {
      await api.join(id);
      setVisitor(null);
    } catch (e) {
      setError(e);
    }
  }

  async function leave() {
    if (!confirm(t("conv.confirmLeave"))) return;
    try {
      await api.leave(id);
      navigate("/");
    } catch (e) {
      setError(e);
    }
  }

  async function toggleArchive() {
    try {
      if (conv!.archived_at) await api.unarchive(id);
      else await api.archive(id);
    } catch (e) {
      setError(e);
    }
  }

  return (
    <div className={thread || panel ? "conversation with-panel" : "conversation"}>
      <section
        className={dragging ? "timeline dragging" : "timeline"}
        aria-label={title}
        onDragOver={(e) => {
          if (canPost && e.dataTransfer.types.includes("Files")) {
            e.preventDefault();
            setDragging(true);
          }
        }}
        onDragLeave={(e) => {
          if (e.currentTarget === e.target) setDragging(false);
        }}
        onDrop={(e) => {
          setDragging(false);
          if (!canPost || !e.dataTransfer.files.length) return;
          e.preventDefault();
          attachRef.current?.(Array.from(e.dataTransfer.files));
        }}
      >
        {dragging && <div className="drop-hint">{t("files.drop")}</div>}
        <header className="conv-header">
          <BackButton />
          <div className="title">
            <h1>{title}</h1>
            {conv.topic && <p className="muted topic">{conv.topic}</p>}
          </div>
          <div className="header-actions">
            <button className="small" onClick={() => setPanel(panel === "files" ? null : "files")} aria-pressed={panel === "files"}>
              {t("files.library")}
            </button>
            {isChannel && (
              <button className="small" onClick={() => setPanel(panel === "members" ? null : "members")} aria-pressed={panel === "members"}>
                {t("conv.members")} · {conv.member_count}
              </button>
            )}
            {me && me.role === "admin" && myRole !== "guest" && isChannel && (
              <button className="small" onClick={() => void toggleArchive()}>
                {conv.archived_at ? t("conv.unarchive") : t("conv.archive")}
              </button>
            )}
            {me && (conv.kind === "public" || conv.kind === "private" || conv.kind === "project" || conv.kind === "group") && !me.via_department && (
              <button className="small" onClick={() => void leave()}>
                {t("conv.leave")}
              </button>
            )}
          </div>
        </header>
        <ErrorNote error={error} />
        <div className="messages">
          {!timeline && (
            <div className="list-start muted" role="status">
              {error ? retryLoad : t("common.loading")}
            </div>
          )}
          {timeline && (
            <VList ref={list} shift={shift} onScroll={(o) => void onScroll(o)} style={{ height: "100%" }} data={rows}>
              {(r: Row) => {
                switch (r.kind) {
                  case "start":
                    return (
                      <div key={r.key} className="list-start muted">
                        {r.more ? t("conv.loadingOlder") : rows.length > 1 ? t("conv.beginning") : t("conv.empty")}
                      </div>
                    );
                  case "day":
                    return (
                      <div key={r.key} className="day-separator" role="separator">
                        <span>{formatDay(r.at, lang)}</span>
                      </div>
                    );
                  case "unread":
                    return (
                      <div key={r.key} className="unread-separator" role="separator">
                        <span>{t("conv.newMessages")}</span>
                      </div>
                    );
                  case "msg":
                    return (
                      <div key={r.key}>
                        <MessageItem message={r.m} grouped={r.grouped} highlight={r.m.id === highlight} canPost={canPost} onError={setError} />
                      </div>
                    );
                  case "pending":
                    return (
                      <div key={r.key}>
                        <PendingItem p={r.p} />
                      </div>
                    );
                }
              }}
            </VList>
          )}
          <div className="jumps">
            {unreadIndex >= 0 && me && me.unread_count > 0 && (
              <button className="small" onClick={() => list.current?.scrollToIndex(unreadIndex, { align: "start" })}>
                {t("conv.jumpUnread")}
              </button>
            )}
            {(!atBottom || timeline?.hasNewer) && (
              <button
                className="small"
                onClick={async () => {
                  setHighlight(undefined);
                  if (timeline?.hasNewer) {
                    try {
                      await loadLatest(id);
                    } catch (e) {
                      setError(e);
                      return;
                    }
                    navigate(paths.conversation(id), true);
                  }
                  requestAnimationFrame(() => list.current?.scrollToIndex(rows.length - 1, { align: "end" }));
                }}
              >
                {t("conv.jumpLatest")}
              </button>
            )}
          </div>
        </div>
        <TypingNotice place={id} />
        {conv.archived_at ? (
          <p className="notice">{t("conv.archived")}</p>
        ) : !me ? (
          <div className="notice">
            <button className="primary" onClick={() => void join()}>
              {t("conv.join")}
            </button>
          </div>
        ) : !canPost ? (
          <p className="notice">{t("conv.readOnly")}</p>
        ) : (
          <Composer conversationId={id} placeholder={t("composer.placeholder", { name: title })} attachRef={attachRef} onError={setError} />
        )}
      </section>
      {thread ? (
        <ThreadPanel conversationId={id} rootId={thread} canPost={canPost} onClose={() => navigate(paths.conversation(id))} />
      ) : panel === "members" ? (
        <MembersPanel conversation={conv} me={me} onClose={() => setPanel(null)} />
      ) : panel === "files" ? (
        <FileLibrary
          conversationId={id}
          onClose={() => setPanel(null)}
          canDelete={(f) => f.uploader_id === meId || (me?.role === "admin" && myRole !== "guest") || (!!myRole && (myRole === "owner" || myRole === "admin"))}
        />
      ) : null}
    </div>
  );
}
