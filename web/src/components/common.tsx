// Small shared pieces: avatars, presence dots, dialogs, error text, typing notices, badges.
import { useEffect, useRef, useState, type FormEvent, type ReactNode } from "react";
import { errorText } from "../errors";
import { useT } from "../i18n";
import { navigate } from "../router";
import { showsPresenceOf, useApp } from "../state/store";
import type { Id, User } from "../types";

const COLORS = ["#1f6feb", "#8250df", "#bf3989", "#cf222e", "#bc4c00", "#4d2d00", "#1a7f37", "#0a3069", "#6639ba"];

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return Math.abs(h);
}

export function initials(name: string): string {
  const t = name.trim();
  if (!t) return "?";
  // Chinese names: the last one or two characters are what colleagues call each other.
  if (/[\u3400-\u9fff]/.test(t)) return Array.from(t).slice(-2).join("");
  const words = t.split(/\s+/);
  return (words[0][0] + (words.length > 1 ? words[words.length - 1][0] : "")).toUpperCase();
}

export function Avatar({ user, size = 32 }: { user?: User; size?: number }) {
  const name = user?.display_name ?? "?";
  const presence = useApp((s) => (user ? s.presence[user.id] : undefined));
  const id = user?.id;
  useEffect(() => (id ? showsPresenceOf(id) : undefined), [id]);
  return (
    <span className="avatar" style={{ width: size, height: size, background: COLORS[hash(user?.id ?? name) % COLORS.length], fontSize: size * 0.38 }} aria-hidden="true">
      {initials(name)}
      {presence && presence !== "offline" && <span className={`dot ${presence}`} />}
    </span>
  );
}

export function useUser(id: Id | null | undefined): User | undefined {
  return useApp((s) => (id ? s.users[id] : undefined));
}

export { errorText } from "../errors";

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p className="error" role="alert">
      {errorText(error)}
    </p>
  );
}

/** Back to the conversation list (on phones, where pages replace each other). */
export function BackButton() {
  const t = useT();
  return (
    <button className="icon back" onClick={() => navigate("/")} aria-label={t("nav.back")}>
      ‹
    </button>
  );
}

/** A full page's header: the back button and its title. */
export function PageHeader({ title }: { title: string }) {
  return (
    <header className="page-header">
      <BackButton />
      <h1>{title}</h1>
    </header>
  );
}

export function Dialog({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ReactNode; wide?: boolean }) {
  const t = useT();
  const ref = useRef<HTMLDivElement>(null);
  // The latest onClose, so that the effect below runs once: callers pass a new function at
  // every render, and running it again would pull the focus back to the first field.
  const close = useRef(onClose);
  useEffect(() => {
    close.current = onClose;
  }, [onClose]);
  useEffect(() => {
    // Focus comes back to what opened the dialog when it closes.
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    const onKey = (e: KeyboardEvent) => {
      // Escape during pinyin input ends the composition, not the dialog.
      if (e.key === "Escape" && !e.isComposing && e.keyCode !== 229) close.current();
      // Tab stays inside the dialog (it is modal).
      if (e.key === "Tab" && ref.current) {
        const focusable = [
          ...ref.current.querySelectorAll<HTMLElement>("a[href], button:not([disabled]), input:not([disabled]), textarea, select, [tabindex]:not([tabindex='-1'])"),
        ];
        if (focusable.length === 0) return;
        const [first, last] = [focusable[0], focusable[focusable.length - 1]];
        const inside = ref.current.contains(document.activeElement);
        if (e.shiftKey && (document.activeElement === first || !inside)) {
          e.preventDefault();
          last.focus();
        } else if (!e.shiftKey && (document.activeElement === last || !inside)) {
          e.preventDefault();
          first.focus();
        }
      }
    };
    window.addEventListener("keydown", onKey);
    ref.current?.querySelector<HTMLElement>("input, textarea, select, button:not(.close)")?.focus();
    return () => {
      window.removeEventListener("keydown", onKey);
      opener?.focus();
    };
  }, []);
  return (
    <div className="overlay" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div className={wide ? "dialog wide" : "dialog"} role="dialog" aria-modal="true" aria-label={title} ref={ref}>
        <header>
          <h2>{title}</h2>
          <button className="icon close" onClick={onClose} aria-label={t("common.close")} title={t("common.close")}>
            ×
          </button>
        </header>
        {children}
      </div>
    </div>
  );
}

/** Who is typing at `place` (a conversation, or `conv:root` for a thread: `placeKey`). */
export function TypingNotice({ place }: { place: string }) {
  const t = useT();
  const typing = useApp((s) => s.typing[place]);
  const users = useApp((s) => s.users);
  const names = Object.entries(typing ?? {})
    .filter(([, until]) => until > Date.now())
    .map(([u]) => users[u]?.display_name ?? "…");
  return (
    <div className="typing muted" aria-live="polite">
      {names.length === 1 ? t("typing.one", { name: names[0] }) : names.length > 1 ? t("typing.many") : ""}
    </div>
  );
}

/** A count badge: mentions of me (`@n`) before anything else new (`unread`, shown as
 * `shown` or the count, labelled `label`). Nothing when there is neither. */
export function CountBadge({ mentions, unread, label, shown }: { mentions: number; unread: number; label: string; shown?: string }) {
  const t = useT();
  if (mentions > 0) {
    return (
      <span className="badge mention" aria-label={t("badge.mentions", { n: mentions })}>
        @{mentions}
      </span>
    );
  }
  if (unread <= 0) return null;
  return (
    <span className="badge" aria-label={label}>
      {shown ?? (unread > 99 ? "99+" : unread)}
    </span>
  );
}

/** A form's submit handler, with its busy flag and the last error. A submit while the last
 * is under way is ignored (a double click must not create two of something). */
export function useSubmit(action: () => Promise<void>) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const running = useRef(false);
  async function submit(e: FormEvent) {
    e.preventDefault();
    if (running.current) return;
    running.current = true;
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(err);
    } finally {
      running.current = false;
      setBusy(false);
    }
  }
  return { error, busy, submit };
}
