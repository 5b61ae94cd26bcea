// One message: sender and time (for the first of a group), Markdown body, reactions, thread
// summary, and actions on hover or focus.
import { memo, useMemo, useState } from "react";
import { api } from "../api";
import { formatTime, useLang, useT } from "../i18n";
import { renderMarkdown, type MentionNames } from "../lib/markdown";
import { navigate, paths } from "../router";
import { applyMyEdit, applyMyReaction, discardPending, markUnread as markUnreadFrom, reactionMark, retryPending, useApp } from "../state/store";
import type { Pending } from "../state/model";
import { openEdits } from "../state/edits";
import type { Message } from "../types";
import { Avatar, errorText, useUser } from "./common";
import { MessageFiles } from "./Files";
import { Icon } from "./icons";
import { ProfileCard } from "./ProfileCard";

export const QUICK_REACTIONS = ["👍", "❤️", "😄", "🎉", "👀", "✅"];

export function useMentionNames(): MentionNames {
  const users = useApp((s) => s.users);
  const departments = useApp((s) => s.departments);
  const me = useApp((s) => s.me);
  // Every message on screen asks: build the username index once per directory change.
  return useMemo(() => {
    const byUsername: Record<string, string> = {};
    for (const u of Object.values(users)) byUsername[u.username] = u.display_name;
    return {
      user: (id) => users[id]?.display_name,
      username: (n) => byUsername[n],
      department: (id) => departments[id]?.name,
      isMe: (x) => !!me && (x === me.id || x === me.username),
    };
  }, [users, departments, me]);
}

interface Props {
  message: Message;
  grouped: boolean;
  highlight?: boolean;
  inThread?: boolean;
  canPost: boolean;
  onError(e: unknown): void;
}

export const MessageItem = memo(function MessageItem({ message: m, grouped, highlight, inThread, canPost, onError }: Props) {
  const t = useT();
  const lang = useLang((s) => s.lang);
  const sender = useUser(m.sender_id);
  const meId = useApp((s) => s.me?.id);
  const names = useMentionNames();
  // Kept outside the component (`openEdits`): unmounting it loses nothing typed.
  const [editing, setEditingShown] = useState(() => openEdits.has(m.id));
  const [draft, setDraftShown] = useState(() => openEdits.get(m.id) ?? m.body);
  const setDraft = (text: string) => {
    openEdits.set(m.id, text);
    setDraftShown(text);
  };
  const setEditing = (on: boolean) => {
    if (!on) openEdits.delete(m.id);
    else if (!openEdits.has(m.id)) openEdits.set(m.id, draft);
    setEditingShown(on);
  };
  const [showProfile, setShowProfile] = useState(false);
  const [picker, setPicker] = useState(false);
  const mine = m.sender_id === meId;
  const deleted = !!m.deleted_at;

  async function react(emoji: string) {
    setPicker(false);
    // Say what is wanted when it is known (a retried request then changes nothing twice);
    // beyond the reactors listed, whether mine is among them is not known here: toggle.
    const r0 = m.reactions.find((r) => r.emoji === emoji);
    const mineThere = !!meId && !!r0?.user_ids.includes(meId);
    const add = mineThere ? false : !r0 || r0.count <= r0.user_ids.length ? true : undefined;
    try {
      const mark = reactionMark(m.id, emoji);
      const r = await api.react(m.id, emoji, add);
      applyMyReaction(m.id, emoji, r.added, mark);
    } catch (e) {
      onError(e);
    }
  }

  async function saveEdit() {
    const body = draft.trim();
    if (!body || body === m.body) return setEditing(false);
    try {
      applyMyEdit(await api.edit(m.id, body));
      setEditing(false);
    } catch (e) {
      onError(e);
    }
  }

  async function remove() {
    if (!confirm(t("msg.confirmDelete"))) return;
    try {
      await api.deleteMessage(m.id);
    } catch (e) {
      onError(e);
    }
  }

  async function markUnread() {
    try {
      await markUnreadFrom(m.conversation_id, m.id);
    } catch (e) {
      onError(e);
    }
  }

  return (
    <article
      className={`msg${grouped ? " grouped" : ""}${highlight ? " highlight" : ""}${deleted ? " deleted" : ""}`}
      data-seq={m.seq}
      data-id={m.id}
      aria-label={`${sender?.display_name ?? ""} ${formatTime(m.created_at, lang)}`}
      tabIndex={-1}
    >
      <div className="gutter">
        {grouped ? (
          <time className="hover-time">{formatTime(m.created_at, lang)}</time>
        ) : (
          <button className="avatar-button" onClick={() => setShowProfile(true)} aria-label={sender?.display_name}>
            <Avatar user={sender} size={36} />
          </button>
        )}
      </div>
      <div className="content">
        {!grouped && (
          <div className="meta">
            <button className="name" onClick={() => setShowProfile(true)}>
              {sender?.display_name ?? "…"}
            </button>
            <time dateTime={new Date(m.created_at).toISOString()}>{formatTime(m.created_at, lang)}</time>
          </div>
        )}
        {deleted ? (
          <p className="muted tombstone">{t("msg.deleted")}</p>
        ) : editing ? (
          <div className="edit">
            <textarea
              value={draft}
              onChange={(e) => setDraft(e.target.value)}
              aria-label={t("msg.edit")}
              autoFocus
              onKeyDown={(e) => {
                if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
                  e.preventDefault();
                  void saveEdit();
                }
                if (e.key === "Escape" && !e.nativeEvent.isComposing && e.keyCode !== 229) setEditing(false);
              }}
            />
            <div className="row">
              <button className="primary small" onClick={() => void saveEdit()}>
                {t("msg.save")}
              </button>
              <button className="small" onClick={() => setEditing(false)}>
                {t("msg.cancel")}
              </button>
            </div>
          </div>
        ) : (
          <div className="body">
            {renderMarkdown(m.body, { ...names, mentionedDepartments: m.mentions.department_ids })}
            {m.edited_at && <span className="edited muted">{t("msg.edited")}</span>}
          </div>
        )}
        {!deleted && m.files && m.files.length > 0 && <MessageFiles files={m.files} />}
        {!deleted && !m.body && !m.files?.length && <p className="muted tombstone">{t("files.gone")}</p>}
        {!deleted && m.reactions.length > 0 && (
          <div className="reactions">
            {m.reactions.map((r) => (
              <button
                key={r.emoji}
                className={meId && r.user_ids.includes(meId) ? "reaction mine" : "reaction"}
                onClick={() => void react(r.emoji)}
                aria-pressed={!!meId && r.user_ids.includes(meId)}
                aria-label={`${r.emoji} ${r.count}`}
              >
                {r.emoji} <span>{r.count}</span>
              </button>
            ))}
          </div>
        )}
        {!inThread && m.thread && m.thread.reply_count > 0 && (
          <button className="thread-summary link" onClick={() => navigate(paths.thread(m.conversation_id, m.id))}>
            {m.thread.reply_count === 1 ? t("msg.reply1") : t("msg.replies", { n: m.thread.reply_count })}
          </button>
        )}
      </div>
      {!deleted && !editing && (
        <div className="actions" role="toolbar" aria-label={t("msg.actions")}>
          <button className="icon" onClick={() => setPicker((x) => !x)} aria-label={t("msg.react")} title={t("msg.react")}>
            <Icon name="smile" />
          </button>
          {!inThread && canPost && (
            <button className="icon" onClick={() => navigate(paths.thread(m.conversation_id, m.id))} aria-label={t("msg.reply")} title={t("msg.reply")}>
              <Icon name="reply" />
            </button>
          )}
          {!inThread && !mine && (
            <button className="icon" onClick={() => void markUnread()} aria-label={t("msg.markUnread")} title={t("msg.markUnread")}>
              <Icon name="unread" />
            </button>
          )}
          {mine && (
            <button
              className="icon"
              onClick={() => {
                setDraft(m.body);
                setEditing(true);
              }}
              aria-label={t("msg.edit")}
              title={t("msg.edit")}
            >
              <Icon name="pencil" />
            </button>
          )}
          {mine && (
            <button className="icon danger" onClick={() => void remove()} aria-label={t("msg.delete")} title={t("msg.delete")}>
              <Icon name="trash" />
            </button>
          )}
          {picker && (
            <div className="picker" role="menu">
              {QUICK_REACTIONS.map((e) => (
                <button key={e} role="menuitem" className="icon" onClick={() => void react(e)} aria-label={e}>
                  {e}
                </button>
              ))}
            </div>
          )}
        </div>
      )}
      {showProfile && sender && <ProfileCard user={sender} onClose={() => setShowProfile(false)} />}
    </article>
  );
});

export function PendingItem({ p }: { p: Pending }) {
  const t = useT();
  const me = useApp((s) => s.me);
  const names = useMentionNames();
  return (
    <article className={`msg pending ${p.status}`} aria-busy={p.status === "sending"}>
      <div className="gutter">
        <Avatar user={me ?? undefined} size={36} />
      </div>
      <div className="content">
        <div className="meta">
          <span className="name">{me?.display_name}</span>
          <span className="muted">{p.status === "sending" ? t("msg.sending") : ""}</span>
        </div>
        <div className="body">{renderMarkdown(p.body, names)}</div>
        {p.files.length > 0 && (
          <ul className="attachments pending-files">
            {p.files.map((f) => (
              <li key={f.id}>{f.name}</li>
            ))}
          </ul>
        )}
        {p.status === "failed" && (
          <p className="error" role="alert">
            {t("msg.failed", { error: p.error === undefined ? "" : errorText(p.error) })}{" "}
            <button className="link" onClick={() => retryPending(p.key)}>
              {t("msg.retry")}
            </button>{" "}
            <button className="link" onClick={() => discardPending(p.key)}>
              {t("msg.discard")}
            </button>
          </p>
        )}
      </div>
    </article>
  );
}

