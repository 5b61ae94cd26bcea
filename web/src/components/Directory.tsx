// The directory: the department tree on one side, the people of the chosen department (or a
// search over everyone) on the other.
import { useEffect, useMemo, useState } from "react";
import { api } from "../api";
import { useLang, useT, type Lang } from "../i18n";
import { sortByName } from "../lib/collate";
import { navigate } from "../router";
import { useApp } from "../state/store";
import type { Department, User } from "../types";
import { Avatar, ErrorNote, PageHeader } from "./common";
import { ProfileCard } from "./ProfileCard";

/** Each department's sub-departments (the top ones under ""), by name in `lang`'s order. */
export function childrenOf(departments: Record<string, Department>, lang: Lang): Record<string, Department[]> {
  const out: Record<string, Department[]> = {};
  for (const d of sortByName(Object.values(departments), (x) => x.name, lang)) (out[d.parent_id ?? ""] ??= []).push(d);
  return out;
}

export function DepartmentTree({ selected, onSelect }: { selected?: string; onSelect: (id: string) => void }) {
  const departments = useApp((s) => s.departments);
  const lang = useLang((s) => s.lang);
  const kids = useMemo(() => childrenOf(departments, lang), [departments, lang]);
  const render = (d: Department, depth: number) => (
    <li key={d.id}>
      <button className={d.id === selected ? "tree-item active" : "tree-item"} style={{ paddingLeft: 8 + depth * 14 }} onClick={() => onSelect(d.id)} aria-current={d.id === selected}>
        {d.name}
      </button>
      {kids[d.id] && <ul>{kids[d.id].map((c) => render(c, depth + 1))}</ul>}
    </li>
  );
  return <ul className="tree">{(kids[""] ?? []).map((d) => render(d, 0))}</ul>;
}

export function Directory({ department }: { department?: string }) {
  const t = useT();
  const [q, setQ] = useState("");
  const [people, setPeople] = useState<User[]>([]);
  const [error, setError] = useState<unknown>(null);
  // Until the first answer for the current search, "nobody found" would be a guess.
  const [loaded, setLoaded] = useState(false);
  const [profile, setProfile] = useState<User | null>(null);

  useEffect(() => {
    const h = setTimeout(() => {
      api
        .users({ q: q.trim() || undefined, department_id: q.trim() ? undefined : department, recursive: true, limit: 200 })
        .then((r) => {
          setPeople(r.items);
          setError(null);
          setLoaded(true);
        })
        .catch(setError);
    }, 200);
    return () => clearTimeout(h);
  }, [q, department]);

  return (
    <div className="page-content two-columns">
      <PageHeader title={t("directory.title")} />
      <div className="columns">
        <DepartmentTree selected={department} onSelect={(id) => navigate(`/directory/${id}`)} />
        <div>
          <input className="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder={t("directory.search")} aria-label={t("directory.search")} />
          <ErrorNote error={error} />
          {people.length === 0 && !error && <p className="muted">{t(loaded ? "directory.none" : "common.loading")}</p>}
          <ul className="people">
            {people.map((u) => (
              <li key={u.id}>
                <button className="person" onClick={() => setProfile(u)}>
                  <Avatar user={u} size={32} />
                  <span>{u.display_name}</span>
                  <span className="muted">{u.title}</span>
                </button>
              </li>
            ))}
          </ul>
        </div>
      </div>
      {profile && <ProfileCard user={profile} onClose={() => setProfile(null)} />}
    </div>
  );
}
