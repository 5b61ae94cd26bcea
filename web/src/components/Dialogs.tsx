// Creating channels, DMs and group DMs, and the people picker they share.
import { useMemo, useState, type FormEvent } from "react";
import { api } from "../api";
import { useLang, useT } from "../i18n";
import { sortByName } from "../lib/collate";
import { matchesPerson } from "../lib/people";
import { navigate, paths } from "../router";
import { useApp } from "../state/store";
import type { ChannelKind } from "../types";
import { Avatar, Dialog, ErrorNote, useSubmit } from "./common";

const NOBODY: string[] = [];

/** Picks people by name. `exclude` should keep its identity between renders (a memo): the
 * matches are recomputed only when it, the query or the people change. */
export function PeoplePicker({ selected, onChange, exclude = NOBODY, label }: { selected: string[]; onChange: (ids: string[]) => void; exclude?: string[]; label: string }) {
  const users = useApp((s) => s.users);
  const meId = useApp((s) => s.me?.id);
  const lang = useLang((s) => s.lang);
  const [q, setQ] = useState("");
  const matches = useMemo(() => {
    if (!q) return [];
    // Sets: a channel of thousands against a directory of thousands, on every keystroke.
    const out = new Set([...exclude, ...selected]);
    const found = Object.values(users).filter((u) => u.status === "active" && u.id !== meId && !out.has(u.id) && matchesPerson(u, q));
    return sortByName(found, (u) => u.display_name, lang).slice(0, 8);
  }, [users, q, meId, exclude, selected, lang]);
  return (
    <div className="picker-box">
      <div className="chips">
        {selected.map((id) => (
          <button key={id} type="button" className="chip" onClick={() => onChange(selected.filter((x) => x !== id))} aria-label={`${users[id]?.display_name} ×`}>
            {users[id]?.display_name} ×
          </button>
        ))}
      </div>
      <input value={q} onChange={(e) => setQ(e.target.value)} placeholder={label} aria-label={label} />
      {q && (
        <ul className="people compact" role="listbox">
          {matches.map((u) => (
            <li key={u.id} role="option" aria-selected={false}>
              <button
                type="button"
                className="person"
                onClick={() => {
                  onChange([...selected, u.id]);
                  setQ("");
                }}
              >
                <Avatar user={u} size={22} /> <span>{u.display_name}</span> <span className="muted">@{u.username}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function NewChannelDialog({ onClose }: { onClose: () => void }) {
  const t = useT();
  const [name, setName] = useState("");
  const [topic, setTopic] = useState("");
  const [kind, setKind] = useState<ChannelKind>("public");
  const [members, setMembers] = useState<string[]>([]);
  // One channel per click: names need not be unique, so a second click would make two.
  const { error, busy, submit } = useSubmit(async () => {
    const it = await api.createChannel({ name, kind, topic: topic || undefined, member_ids: members });
    onClose();
    navigate(paths.conversation(it.conversation.id));
  });

  return (
    <Dialog title={t("create.title")} onClose={onClose}>
      <form onSubmit={submit}>
        <label>
          {t("field.name")}
          <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={80} />
        </label>
        <label>
          {t("field.topic")}
          <input value={topic} onChange={(e) => setTopic(e.target.value)} maxLength={250} />
        </label>
        <fieldset>
          <legend>{t("field.kind")}</legend>
          {(["public", "private", "announcement"] as const).map((k) => (
            <label key={k} className="radio">
              <input type="radio" name="kind" value={k} checked={kind === k} onChange={() => setKind(k)} />
              {t(`create.${k}`)}
            </label>
          ))}
        </fieldset>
        <PeoplePicker selected={members} onChange={setMembers} label={t("conv.invite")} />
        <ErrorNote error={error} />
        <button className="primary" disabled={busy}>
          {t("create.submit")}
        </button>
      </form>
    </Dialog>
  );
}

export function NewDmDialog({ onClose }: { onClose: () => void }) {
  const t = useT();
  const [people, setPeople] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    try {
      const it = people.length === 1 ? await api.openDm(people[0]) : await api.createGroup(people);
      onClose();
      navigate(paths.conversation(it.conversation.id));
    } catch (err) {
      setError(err);
    }
  }

  return (
    <Dialog title={t("dm.title")} onClose={onClose}>
      <form onSubmit={submit}>
        <p className="muted">{t("dm.pick")}</p>
        <PeoplePicker selected={people} onChange={setPeople} label={t("common.search")} />
        <ErrorNote error={error} />
        <button className="primary" disabled={!people.length}>
          {t("dm.start")}
        </button>
      </form>
    </Dialog>
  );
}
