// A thread beside its conversation: the root, its replies, and a composer for replying.
import { useEffect, useMemo, useRef, useState } from "react";
import { api } from "../api";
import { useT } from "../i18n";
import { openThread, placeKey, useApp } from "../state/store";
import type { Id } from "../types";
import { Composer } from "./Composer";
import { ErrorNote, TypingNotice } from "./common";
import { MessageItem, PendingItem } from "./MessageItem";

export function ThreadPanel({ conversationId, rootId, canPost, onClose }: { conversationId: Id; rootId: Id; canPost: boolean; onClose: () => void }) {
  const t = useT();
  const view = useApp((s) => s.threads[rootId]);
  const pendingAll = useApp((s) => s.pending);
  const [error, setError] = useState<unknown>(null);
  const end = useRef<HTMLDivElement>(null);
  const pending = useMemo(() => pendingAll.filter((p) => p.threadRootId === rootId), [pendingAll, rootId]);

  // Read when opened, and again when its state was dropped (joining the conversation drops
  // what was read of it as a visitor).
  const missing = !view;
  useEffect(() => {
    if (missing) openThread(rootId).catch(setError);
  }, [rootId, missing]);

  const count = (view?.replies.length ?? 0) + pending.length;
  // As the server counts them (deleted replies stay as tombstones but do not count).
  const replyCount = view?.root?.thread?.reply_count ?? view?.replies.filter((r) => !r.deleted_at).length ?? 0;
  const loaded = !!view;
  useEffect(() => {
    end.current?.scrollIntoView({ block: "end" });
    // Read when replies are on screen: when they load or grow (not on a reaction or an edit,
    // which change the view), and only while the tab is visible — or once it becomes so.
    if (!loaded || !count) return;
    const read = () => {
      if (document.visibilityState === "visible") api.threadRead(rootId).catch(() => undefined);
    };
    read();
    document.addEventListener("visibilitychange", read);
    return () => document.removeEventListener("visibilitychange", read);
  }, [count, loaded, rootId]);

  return (
    <aside className="side-panel thread" aria-label={t("thread.title")}>
      <header>
        <h2>{t("thread.title")}</h2>
        <button className="icon close" onClick={onClose} aria-label={t("thread.close")} title={t("thread.close")}>
          ×
        </button>
      </header>
      <ErrorNote error={error} />
      <div className="thread-messages">
        {!view && !error && <p className="muted">{t("common.loading")}</p>}
        {view?.root && <MessageItem message={view.root} grouped={false} inThread canPost={canPost} onError={setError} />}
        {view && replyCount > 0 && <div className="thread-count muted">{replyCount === 1 ? t("msg.reply1") : t("msg.replies", { n: replyCount })}</div>}
        {view?.replies.map((m, i) => (
          <MessageItem
            key={m.id}
            message={m}
            grouped={i > 0 && view.replies[i - 1].sender_id === m.sender_id && m.created_at - view.replies[i - 1].created_at < 300_000}
            inThread
            canPost={canPost}
            onError={setError}
          />
        ))}
        {pending.map((p) => (
          <PendingItem key={p.key} p={p} />
        ))}
        <div ref={end} />
      </div>
      <TypingNotice place={placeKey(conversationId, rootId)} />
      {canPost && view?.root && !view.root.deleted_at && <Composer key={rootId} conversationId={conversationId} threadRootId={rootId} placeholder={t("composer.replyPlaceholder")} onError={setError} />}
    </aside>
  );
}
