// The threads I follow (those I started that got replies, replied in, or was mentioned in),
// most recent reply first, with their new replies and mentions of me; one opens in its
// conversation. The list is kept by events (model.ts) and read again on a reload.
import { useMemo } from "react";
import { formatDay, formatTime, useLang, useT } from "../i18n";
import { navigate, paths } from "../router";
import { conversationTitle } from "../state/model";
import { loadOlderThreads, useApp } from "../state/store";
import type { Department, Id, Message, User } from "../types";
import { Avatar, CountBadge, ErrorNote, PageHeader, useSubmit } from "./common";

/** A message's text on one line, short: mentions by name, without Markdown's emphasis and
 * code marks, cut at a whole character. */
function preview(m: Message, users: Record<Id, User>, departments: Record<Id, Department>): string {
  const line = m.body
    .replace(/<@&([0-9a-f-]{36})>/g, (_, id: string) => `@${departments[id]?.name ?? "…"}`)
    .replace(/<@([0-9a-f-]{36})>/g, (_, id: string) => `@${users[id]?.display_name ?? "…"}`)
    .replace(/\*\*|~~|`+/g, "")
    .replace(/\s+/g, " ")
    .trim();
  const chars = Array.from(line);
  const text = chars.length > 140 ? `${chars.slice(0, 140).join("")}…` : line;
  return text || (m.files ?? []).map((f) => f.name).join(", ");
}

export function ThreadsPage() {
  const t = useT();
  const lang = useLang((s) => s.lang);
  const followed = useApp((s) => s.followed);
  const conversations = useApp((s) => s.conversations);
  const users = useApp((s) => s.users);
  const departments = useApp((s) => s.departments);
  const meId = useApp((s) => s.me?.id);
  const more = useApp((s) => s.followedMore);
  const older = useSubmit(loadOlderThreads);
  const list = useMemo(
    () => Object.values(followed ?? {}).sort((a, b) => (b.last_reply_at ?? b.root.created_at) - (a.last_reply_at ?? a.root.created_at)),
    [followed],
  );
  return (
    <div className="page-content threads-page">
      <PageHeader title={t("threads.title")} />
      {followed && list.length === 0 && <p className="muted">{t("threads.none")}</p>}
      {!followed && <p className="muted">{t("common.loading")}</p>}
      <ul className="results" aria-label={t("threads.title")}>
        {list.map((th) => {
          const c = conversations[th.conversation_id]?.conv;
          const sender = users[th.root.sender_id];
          const at = th.last_reply_at ?? th.root.created_at;
          const replies = th.root.thread?.reply_count ?? 0;
          return (
            <li key={th.root_id}>
              <a
                href={paths.thread(th.conversation_id, th.root_id)}
                className={th.unread_count > 0 ? "result unread" : "result"}
                onClick={(e) => {
                  e.preventDefault();
                  navigate(paths.thread(th.conversation_id, th.root_id));
                }}
              >
                <div className="result-meta">
                  <Avatar user={sender} size={20} />
                  <strong>{sender?.display_name ?? "…"}</strong>
                  <span className="muted">
                    {c ? t("threads.in", { place: conversationTitle(c, meId, users) }) : ""} · {formatDay(at, lang)} {formatTime(at, lang)}
                  </span>
                  <CountBadge
                    mentions={th.mention_count}
                    unread={th.unread_count}
                    label={t("badge.unread", { n: th.unread_count })}
                    shown={t("threads.new", { n: th.unread_count })}
                  />
                </div>
                <p className="snippet">{th.root.deleted_at ? "…" : preview(th.root, users, departments)}</p>
                <p className="muted">{replies === 1 ? t("msg.reply1") : t("msg.replies", { n: replies })}</p>
              </a>
            </li>
          );
        })}
      </ul>
      {more && (
        <form onSubmit={older.submit}>
          <button type="submit" disabled={older.busy}>
            {older.busy ? t("common.loading") : t("threads.older")}
          </button>
        </form>
      )}
      <ErrorNote error={older.error} />
    </div>
  );
}
