// Search: the box in the sidebar and the results page, with filters that edit the query
// (from:, in:, has:file, after:, before:) and highlighted snippets; a result opens the
// message in its conversation with the messages around it.
import { useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { api } from "../api";
import { formatDay, formatTime, useLang, useT } from "../i18n";
import { sortByName } from "../lib/collate";
import { navigate, paths } from "../router";
import { conversationTitle } from "../state/model";
import { useApp } from "../state/store";
import type { Conversation, Id, SearchHit } from "../types";
import { Avatar, ErrorNote, PageHeader } from "./common";

type Hit = SearchHit;

export function SearchBox() {
  const t = useT();
  const [q, setQ] = useState("");
  return (
    <form
      className="search-box"
      role="search"
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        if (q.trim()) navigate(paths.search(q.trim()));
      }}
    >
      <input value={q} onChange={(e) => setQ(e.target.value)} placeholder={t("search.placeholder")} aria-label={t("search.placeholder")} />
    </form>
  );
}

/** Splits a query into its free text and its filters. */
export function splitQuery(q: string): { text: string; filters: Record<string, string> } {
  const filters: Record<string, string> = {};
  const words: string[] = [];
  for (const part of q.match(/"[^"]*"|“[^”]*”|\S+/g) ?? []) {
    // Keys in any case, as the server reads them (a phone may capitalise `From:`).
    const m = part.match(/^(from|in|has|before|after):(.+)$/i);
    if (m) filters[m[1].toLowerCase()] = m[2];
    else words.push(part);
  }
  return { text: words.join(" "), filters };
}

export function joinQuery(text: string, filters: Record<string, string>): string {
  const f = Object.entries(filters)
    .filter(([, v]) => v)
    .map(([k, v]) => `${k}:${v}`);
  return [text.trim(), ...f].filter(Boolean).join(" ");
}

export function SearchPage({ q }: { q: string }) {
  const t = useT();
  const lang = useLang((s) => s.lang);
  const users = useApp((s) => s.users);
  const conversations = useApp((s) => s.conversations);
  const meId = useApp((s) => s.me?.id);
  const initial = useMemo(() => splitQuery(q), [q]);
  const [text, setText] = useState(initial.text);
  const [filters, setFilters] = useState(initial.filters);
  const [hits, setHits] = useState<Hit[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const [next, setNext] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  // Public channels the person has not joined (staff search them too), for their names.
  const [others, setOthers] = useState<Record<Id, Conversation>>({});
  const asked = useRef(new Set<Id>());

  useEffect(() => {
    for (const id of new Set(hits.map((h) => h.message.conversation_id))) {
      if (conversations[id] || asked.current.has(id)) continue;
      asked.current.add(id);
      api
        .conversation(id)
        .then((it) => setOthers((o) => ({ ...o, [id]: it.conversation })))
        .catch(() => asked.current.delete(id));
    }
  }, [hits, conversations]);

  useEffect(() => {
    setText(initial.text);
    setFilters(initial.filters);
    setError(null);
    setHits([]);
    setTotal(null);
    if (!q.trim()) return;
    setBusy(true);
    api
      .search(q)
      .then((r) => {
        setHits(r.items);
        setTotal(r.total);
        setNext(r.next_offset ?? null);
      })
      .catch(setError)
      .finally(() => setBusy(false));
  }, [q, initial]);

  async function more() {
    if (next === null) return;
    try {
      const r = await api.search(q, next);
      setHits((h) => [...h, ...r.items]);
      setNext(r.next_offset ?? null);
    } catch (e) {
      setError(e);
    }
  }

  const apply = (f: Record<string, string>) => navigate(paths.search(joinQuery(text, f)));
  // Sorted again when the directory, the conversations or the language change (not as one types).
  const people = useMemo(() => sortByName(Object.values(users).filter((u) => u.status === "active"), (u) => u.display_name, lang), [users, lang]);
  const channels = useMemo(
    () => sortByName(Object.values(conversations).map((c) => c.conv).filter((c) => c.name), (c) => c.name, lang),
    [conversations, lang],
  );

  return (
    <div className="page-content search-page">
      <PageHeader title={t("search.title")} />
      <form
        className="row"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          apply(filters);
        }}
      >
        <input className="search" value={text} onChange={(e) => setText(e.target.value)} aria-label={t("search.placeholder")} placeholder={t("search.placeholder")} />
        <button className="primary">{t("common.search")}</button>
      </form>
      <div className="row filters" aria-label={t("search.filters")}>
        <select value={filters.from ?? ""} onChange={(e) => apply({ ...filters, from: e.target.value })} aria-label={t("search.from")}>
          <option value="">{t("search.anyone")}</option>
          {people.map((u) => (
            <option key={u.id} value={u.username}>
              {u.display_name}
            </option>
          ))}
        </select>
        <select value={filters.in ?? ""} onChange={(e) => apply({ ...filters, in: e.target.value })} aria-label={t("search.in")}>
          <option value="">{t("search.anywhere")}</option>
          {channels.map((c) => (
            <option key={c.id} value={c.name.includes(" ") ? c.id : c.name}>
              {c.name}
            </option>
          ))}
        </select>
        <label className="radio">
          <input type="checkbox" checked={filters.has === "file"} onChange={(e) => apply({ ...filters, has: e.target.checked ? "file" : "" })} />
          {t("search.hasFile")}
        </label>
        <label className="inline">
          {t("search.after")}
          <input type="date" value={filters.after ?? ""} onChange={(e) => apply({ ...filters, after: e.target.value })} />
        </label>
        <label className="inline">
          {t("search.before")}
          <input type="date" value={filters.before ?? ""} onChange={(e) => apply({ ...filters, before: e.target.value })} />
        </label>
      </div>
      <ErrorNote error={error} />
      {busy && <p className="muted">{t("common.loading")}</p>}
      {total !== null && <p className="muted">{total === 1 ? t("search.count1") : t("search.count", { n: total })}</p>}
      <ul className="results" aria-label={t("search.results")}>
        {hits.map((h) => {
          const c = conversations[h.message.conversation_id]?.conv ?? others[h.message.conversation_id];
          const sender = users[h.message.sender_id];
          return (
            <li key={h.message.id}>
              <a
                href={paths.message(h.message.conversation_id, h.message.id)}
                className="result"
                onClick={(e) => {
                  e.preventDefault();
                  navigate(paths.message(h.message.conversation_id, h.message.id));
                }}
              >
                <div className="result-meta">
                  <Avatar user={sender} size={20} />
                  <strong>{sender?.display_name ?? "…"}</strong>
                  <span className="muted">
                    {c ? conversationTitle(c, meId, users) : ""} · {formatDay(h.message.created_at, lang)} {formatTime(h.message.created_at, lang)}
                  </span>
                </div>
                <p className="snippet">
                  {h.snippet.map((p, i) => (p.highlight ? <mark key={i}>{p.text}</mark> : <span key={i}>{p.text}</span>))}
                </p>
              </a>
            </li>
          );
        })}
      </ul>
      {next !== null && (
        <button className="small" onClick={() => void more()}>
          {t("search.more")}
        </button>
      )}
    </div>
  );
}
