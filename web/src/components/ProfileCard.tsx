// A person's card: name, title, department, presence, and a button to message them.
import { useState } from "react";
import { api } from "../api";
import { useT } from "../i18n";
import { navigate, paths } from "../router";
import { useApp } from "../state/store";
import type { User } from "../types";
import { Avatar, Dialog, ErrorNote } from "./common";

export function departmentPath(id: string, departments: Record<string, { name: string; parent_id?: string | null }>): string {
  const names: string[] = [];
  let cur: string | null | undefined = id;
  for (let i = 0; cur && i < 32; i++) {
    const d: { name: string; parent_id?: string | null } | undefined = departments[cur];
    if (!d) break;
    names.unshift(d.name);
    cur = d.parent_id;
  }
  return names.slice(names.length > 1 ? 1 : 0).join(" / ");
}

export function ProfileCard({ user, onClose }: { user: User; onClose: () => void }) {
  const t = useT();
  const departments = useApp((s) => s.departments);
  const presence = useApp((s) => s.presence[user.id] ?? "offline");
  const meId = useApp((s) => s.me?.id);

  const [error, setError] = useState<unknown>(null);

  async function message() {
    setError(null);
    try {
      const it = await api.openDm(user.id);
      onClose();
      navigate(paths.conversation(it.conversation.id));
    } catch (e) {
      setError(e);
    }
  }

  return (
    <Dialog title={user.display_name} onClose={onClose}>
      <div className="profile">
        <Avatar user={user} size={64} />
        <div>
          <p className="big">{user.display_name}</p>
          <p className="muted">@{user.username} · {t(`presence.${presence}` as const)}</p>
          <dl>
            {user.title && (
              <>
                <dt>{t("profile.title")}</dt>
                <dd>{user.title}</dd>
              </>
            )}
            <dt>{t("profile.department")}</dt>
            <dd>{departmentPath(user.primary_department_id, departments)}</dd>
            {user.email && (
              <>
                <dt>{t("profile.email")}</dt>
                <dd>{user.email}</dd>
              </>
            )}
            <dt>{t("field.role")}</dt>
            <dd>{t(`role.${user.role}` as const)}</dd>
          </dl>
          {user.id !== meId && user.status === "active" && (
            <button className="primary" onClick={() => void message()}>
              {t("directory.message")}
            </button>
          )}
          <ErrorNote error={error} />
        </div>
      </div>
    </Dialog>
  );
}
