// "Jump to" (Ctrl+K / ⌘K): find one of your conversations by channel name, by the name of
// the person or people in a DM, or by their pinyin (xmz finds 项目组, zw finds 张伟), and
// open it with Enter. With nothing typed it lists the most recently active ones.
import { useEffect, useMemo, useState, type KeyboardEvent } from "react";
import { useT } from "../i18n";
import { matchesConversation } from "../lib/people";
import { navigate, paths } from "../router";
import { byRecent, conversationTitle } from "../state/model";
import { useApp } from "../state/store";
import type { Conversation } from "../types";
import { Dialog } from "./common";

const SHOWN = 10;

export function QuickSwitcher({ onClose }: { onClose: () => void }) {
  const t = useT();
  const conversations = useApp((s) => s.conversations);
  const users = useApp((s) => s.users);
  const meId = useApp((s) => s.me?.id);
  const [q, setQ] = useState("");
  const [selected, setSelected] = useState(0);
  const found = useMemo(() => {
    return Object.values(conversations)
      .map((c) => c.conv)
      .filter((c) => c.archived_at == null && matchesConversation(c, q, meId, users))
      .sort(byRecent)
      .slice(0, SHOWN);
  }, [conversations, users, meId, q]);
  // The list may change under the cursor (a new message reorders it): stay inside it.
  const current = Math.min(selected, Math.max(found.length - 1, 0));

  const open = (c: Conversation | undefined) => {
    if (!c) return;
    onClose();
    navigate(paths.conversation(c.id));
  };
  const onKey = (e: KeyboardEvent<HTMLInputElement>) => {
    // Keys that an input method (pinyin) is composing with are its own.
    if (e.nativeEvent.isComposing || e.keyCode === 229) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const step = e.key === "ArrowDown" ? 1 : -1;
      setSelected(found.length ? (current + step + found.length) % found.length : 0);
    } else if (e.key === "Enter") {
      e.preventDefault();
      open(found[current]);
    }
  };
  return (
    <Dialog title={t("jump.title")} onClose={onClose}>
      <input
        className="search"
        value={q}
        onChange={(e) => {
          setQ(e.target.value);
          setSelected(0);
        }}
        onKeyDown={onKey}
        placeholder={t("jump.placeholder")}
        aria-label={t("jump.placeholder")}
        role="combobox"
        aria-expanded={found.length > 0}
        aria-controls="jump-results"
        aria-activedescendant={found[current] ? `jump-${found[current].id}` : undefined}
      />
      {found.length === 0 ? (
        <p className="muted">{t("jump.none")}</p>
      ) : (
        <ul className="people compact jump" id="jump-results" role="listbox" aria-label={t("jump.title")}>
          {found.map((c, i) => (
            <li key={c.id} id={`jump-${c.id}`} role="option" aria-selected={i === current}>
              <button type="button" className={i === current ? "person selected" : "person"} onMouseEnter={() => setSelected(i)} onClick={() => open(c)}>
                <span aria-hidden="true">{c.kind === "dm" || c.kind === "group" ? "@" : "#"}</span>
                <span>{conversationTitle(c, meId, users)}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </Dialog>
  );
}

const MAC = typeof navigator !== "undefined" && /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);

/** The shortcut's label: ⌘K on a Mac (where Ctrl+K edits text), Ctrl K elsewhere. */
export const JUMP_KEYS = MAC ? "⌘K" : "Ctrl K";

/** Opens the quick switcher on Ctrl+K (⌘K on a Mac), wherever the focus is. */
export function useJumpShortcut(open: () => void) {
  useEffect(() => {
    const onKey = (e: globalThis.KeyboardEvent) => {
      if ((MAC ? e.metaKey && !e.ctrlKey : e.ctrlKey && !e.metaKey) && !e.altKey && !e.shiftKey && e.key.toLowerCase() === "k") {
        e.preventDefault();
        open();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [open]);
}
