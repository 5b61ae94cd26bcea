// The message composer: Enter sends, Shift+Enter adds a line (and Enter while an input method
// is composing Chinese text does neither), @ opens completion of people and departments, the
// draft is kept per conversation and thread.
import { useEffect, useLayoutEffect, useMemo, useRef, useState, type ClipboardEvent, type KeyboardEvent, type MutableRefObject } from "react";
import { useT } from "../i18n";
import { placeKey, sendMessage, sendTyping, setDraft, useApp } from "../state/store";
import { matchesPerson, matchesText } from "../lib/people";
import type { Id } from "../types";
import { Avatar } from "./common";
import { AttachmentList, useAttachments, useVoiceSender, VoiceRecorder } from "./Files";
import { Icon } from "./icons";

export const MAX_BODY = 10_000; // the server's limit (characters)

interface Suggestion {
  key: string;
  label: string;
  detail: string;
  insert: string;
  userId?: Id;
}

/** Characters as the server counts them (code points, not UTF-16 units). */
export function charCount(s: string): number {
  return s.length > MAX_BODY / 2 ? [...s].length : s.length;
}

/** The `@query` being typed just before the caret, if any. */
export function mentionQuery(text: string, caret: number): { start: number; query: string } | null {
  const before = text.slice(0, caret);
  const m = before.match(/(^|[\s(（，。,])@([^\s@<>]{0,30})$/u);
  if (!m) return null;
  return { start: caret - m[2].length - 1, query: m[2] };
}

interface ComposerProps {
  conversationId: Id;
  threadRootId?: Id | null;
  placeholder: string;
  disabled?: boolean;
  /** Set to a function that adds files (for a drop zone around the composer). */
  attachRef?: MutableRefObject<((files: File[]) => void) | null>;
  onError?: (e: unknown) => void;
}

export function Composer({ conversationId, threadRootId, placeholder, disabled, attachRef, onError }: ComposerProps) {
  const t = useT();
  const draftKey = placeKey(conversationId, threadRootId);
  const initial = useApp.getState().drafts[draftKey] ?? "";
  const [text, setText] = useState(initial);
  const [caret, setCaret] = useState(initial.length);
  const [selected, setSelected] = useState(0);
  const [dismissed, setDismissed] = useState<number | null>(null);
  const ref = useRef<HTMLTextAreaElement>(null);
  const users = useApp((s) => s.users);
  const departments = useApp((s) => s.departments);
  const meId = useApp((s) => s.me?.id);
  const att = useAttachments(conversationId, draftKey);
  const fileInput = useRef<HTMLInputElement>(null);
  if (attachRef) attachRef.current = att.add;
  const voice = useVoiceSender(conversationId, (files) => sendMessage(conversationId, "", threadRootId ?? null, files), (e) => onError?.(e));

  useEffect(() => {
    if (!disabled) ref.current?.focus();
  }, [conversationId, threadRootId, disabled]);

  // The draft changed elsewhere (another device, or the server's copy on start): show it.
  // What this composer types goes into the store first, so its own changes match here.
  const stored = useApp((s) => s.drafts[draftKey] ?? "");
  const shown = useRef(text);
  shown.current = text;
  useEffect(() => {
    if (stored !== shown.current) {
      setText(stored);
      setCaret(stored.length);
    }
  }, [stored]);

  const mq = mentionQuery(text, caret);
  const suggestions = useMemo<Suggestion[]>(() => {
    if (!mq || mq.start === dismissed) return [];
    const q = mq.query;
    const people = Object.values(users)
      .filter((u) => u.status === "active" && u.id !== meId)
      .filter((u) => matchesPerson(u, q))
      .slice(0, 8)
      .map((u) => ({ key: u.id, label: u.display_name, detail: "@" + u.username, insert: "@" + u.username + " ", userId: u.id }));
    const depts = Object.values(departments)
      .filter((d) => matchesText(d.name, q))
      .slice(0, 4)
      .map((d) => ({ key: d.id, label: d.name, detail: t("field.department"), insert: `<@&${d.id}> ` }));
    return [...people, ...depts];
  }, [mq?.query, mq?.start, dismissed, users, departments, meId, t]);

  function update(value: string, pos: number) {
    setText(value);
    setCaret(pos);
    setSelected(0);
    setDraft(draftKey, value);
    if (value.trim()) sendTyping(conversationId, threadRootId ?? null);
  }

  function choose(s: Suggestion) {
    if (!mq) return;
    const value = text.slice(0, mq.start) + s.insert + text.slice(caret);
    const pos = mq.start + s.insert.length;
    caretAfterRender.current = pos;
    update(value, pos);
  }

  // Where the caret goes once the chosen mention is in the textarea: set as the render is
  // committed, before the next key is handled (a later frame would put it back before what
  // a fast typist typed meanwhile).
  const caretAfterRender = useRef<number | null>(null);
  useLayoutEffect(() => {
    const pos = caretAfterRender.current;
    if (pos === null) return;
    caretAfterRender.current = null;
    ref.current?.setSelectionRange(pos, pos);
    ref.current?.focus();
  });

  function send() {
    const body = text.trim();
    const files = att.ready;
    if ((!body && !files.length) || charCount(body) > MAX_BODY || att.uploading) return;
    sendMessage(conversationId, body, threadRootId ?? null, files);
    att.clear();
    update("", 0);
  }

  function onPaste(e: ClipboardEvent<HTMLTextAreaElement>) {
    const files = Array.from(e.clipboardData.files);
    // Cells copied from a spreadsheet or a document come with a picture of themselves beside
    // their text: the text is what was meant. A screenshot has no text.
    const text = e.clipboardData.getData("text/plain");
    const office =
      e.clipboardData.types.includes("text/rtf") || /<table|urn:schemas-microsoft-com:office/i.test(e.clipboardData.getData("text/html"));
    if (office && text.trim() && files.every((f) => f.type.startsWith("image/"))) return;
    if (files.length) {
      e.preventDefault();
      att.add(files);
    }
  }

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.nativeEvent.isComposing || e.keyCode === 229) return;
    if (suggestions.length) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const n = suggestions.length;
        setSelected((i) => (e.key === "ArrowDown" ? (i + 1) % n : (i + n - 1) % n));
        return;
      }
      if (e.key === "Enter" || e.key === "Tab") {
        e.preventDefault();
        choose(suggestions[selected] ?? suggestions[0]);
        return;
      }
      if (e.key === "Escape") {
        e.preventDefault();
        setDismissed(mq?.start ?? null);
        return;
      }
    }
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      send();
    }
  }

  const length = charCount(text);
  const tooLong = length > MAX_BODY;
  const canSend = !disabled && !tooLong && !att.uploading && (!!text.trim() || att.ready.length > 0);
  return (
    <div className="composer">
      <AttachmentList items={att.items} onRemove={att.remove} onRetry={att.retry} />
      {suggestions.length > 0 && (
        <ul className="suggestions" role="listbox" aria-label="@">
          {suggestions.map((s, i) => (
            <li
              key={s.key}
              role="option"
              aria-selected={i === selected}
              className={i === selected ? "selected" : ""}
              onMouseDown={(e) => {
                e.preventDefault();
                choose(s);
              }}
            >
              {s.userId ? <Avatar user={users[s.userId]} size={20} /> : <span className="conv-icon">
                  <Icon name="building" />
                </span>}
              <span>{s.label}</span>
              <span className="muted">{s.detail}</span>
            </li>
          ))}
        </ul>
      )}
      <textarea
        ref={ref}
        value={text}
        rows={1}
        disabled={disabled}
        placeholder={placeholder}
        aria-label={placeholder}
        aria-autocomplete="list"
        onChange={(e) => update(e.target.value, e.target.selectionStart)}
        onSelect={(e) => setCaret(e.currentTarget.selectionStart)}
        onKeyDown={onKeyDown}
        onPaste={onPaste}
      />
      <input
        ref={fileInput}
        type="file"
        multiple
        hidden
        onChange={(e) => {
          att.add(Array.from(e.target.files ?? []));
          e.target.value = "";
        }}
      />
      <button className="attach" onClick={() => fileInput.current?.click()} disabled={disabled} aria-label={t("files.attach")} title={t("files.attach")}>
        +
      </button>
      <VoiceRecorder onRecorded={voice.send} disabled={disabled} />
      {voice.uploads.map((u) =>
        u.progress === "failed" ? (
          <span key={u.id} className="voice-failed" role="alert">
            <span className="error">{t("files.voiceFailed")}</span>{" "}
            <button className="small" onClick={() => voice.retry(u)}>
              {t("files.retry")}
            </button>{" "}
            <button className="small" onClick={() => voice.discard(u)}>
              {t("msg.discard")}
            </button>
          </span>
        ) : (
          <span key={u.id} className="muted voice-progress" role="status">
            {t("files.voiceSending", { percent: Math.round(u.progress * 100) })}
          </span>
        ),
      )}
      <button className="primary send" onClick={send} disabled={!canSend} aria-label={t("composer.send")}>
        {t("composer.send")}
      </button>
      {tooLong && (
        <p className="error" role="alert">
          {t("composer.tooLong", { n: length, max: MAX_BODY })}
        </p>
      )}
    </div>
  );
}
