// Public channels anyone on the staff can find and join.
import { useEffect, useState } from "react";
import { api } from "../api";
import { useT } from "../i18n";
import { navigate, paths } from "../router";
import type { ConversationItem } from "../types";
import { ErrorNote, PageHeader } from "./common";

export function BrowseChannels() {
  const t = useT();
  const [q, setQ] = useState("");
  const [items, setItems] = useState<ConversationItem[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    const h = setTimeout(() => {
      api
        .browse(q.trim())
        .then((r) => setItems(r.items))
        .catch(setError);
    }, 200);
    return () => clearTimeout(h);
  }, [q]);

  async function join(id: string) {
    try {
      await api.join(id);
      navigate(paths.conversation(id));
    } catch (e) {
      setError(e);
    }
  }

  return (
    <div className="page-content">
      <PageHeader title={t("browse.title")} />
      <input className="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder={t("browse.search")} aria-label={t("browse.search")} />
      <ErrorNote error={error} />
      {items && items.length === 0 && <p className="muted">{t("browse.none")}</p>}
      <ul className="cards">
        {items?.map(({ conversation: c, me }) => (
          <li key={c.id} className="card-row">
            <div>
              <a
                href={paths.conversation(c.id)}
                onClick={(e) => {
                  e.preventDefault();
                  navigate(paths.conversation(c.id));
                }}
              >
                <strong># {c.name}</strong>
              </a>
              <p className="muted">
                {c.topic} {c.topic ? "· " : ""}
                {c.member_count === 1 ? t("browse.member1") : t("browse.members", { n: c.member_count })}
              </p>
            </div>
            {!me && (
              <button className="small" onClick={() => void join(c.id)}>
                {t("conv.join")}
              </button>
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}
