// Administration: people (create, edit role and department, disable, reset password) and the
// department tree (create, rename, move, delete when empty). The server checks every action.
import { useEffect, useMemo, useState, type FormEvent } from "react";
import { api } from "../api";
import { useLang, useT } from "../i18n";
import { sortByName } from "../lib/collate";
import { loadDepartments, useApp } from "../state/store";
import type { Role, User } from "../types";
import { Avatar, ErrorNote, PageHeader } from "./common";
import { DepartmentTree } from "./Directory";
import { departmentPath } from "./ProfileCard";

const ROLES: Role[] = ["owner", "admin", "department_admin", "member", "guest"];

/** A department picker; `label` is shown, or only read out where the table's heading says it. */
function DepartmentSelect({ value, onChange, label, quiet }: { value: string; onChange: (id: string) => void; label: string; quiet?: boolean }) {
  const departments = useApp((s) => s.departments);
  const lang = useLang((s) => s.lang);
  const options = useMemo(
    () => sortByName(Object.values(departments).map((d) => ({ id: d.id, path: departmentPath(d.id, departments) || d.name })), (o) => o.path, lang),
    [departments, lang],
  );
  return (
    <label>
      {!quiet && label}
      <select value={value} onChange={(e) => onChange(e.target.value)} aria-label={quiet ? label : undefined}>
        {options.map((o) => (
          <option key={o.id} value={o.id}>
            {o.path}
          </option>
        ))}
      </select>
    </label>
  );
}

function rootDepartment(): string {
  return Object.values(useApp.getState().departments).find((d) => !d.parent_id)?.id ?? "";
}

export function AdminUsers() {
  const t = useT();
  const [q, setQ] = useState("");
  const [people, setPeople] = useState<User[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [form, setForm] = useState({ username: "", display_name: "", email: "", title: "", role: "member" as Role, dept: rootDepartment() });

  async function load() {
    try {
      setPeople((await api.users({ q: q.trim() || undefined, include_disabled: true, limit: 200 })).items);
    } catch (e) {
      setError(e);
    }
  }

  useEffect(() => {
    const h = setTimeout(() => void load(), 200);
    return () => clearTimeout(h);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [q]);

  async function create(e: FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      const r = await api.createUser({
        username: form.username,
        display_name: form.display_name,
        email: form.email || undefined,
        title: form.title || undefined,
        role: form.role,
        primary_department_id: form.dept || undefined,
      });
      setNotice(r.temporary_password ? t("admin.tempPassword", { name: r.user.display_name, password: r.temporary_password }) : null);
      setForm({ ...form, username: "", display_name: "", email: "", title: "" });
      await load();
    } catch (err) {
      setError(err);
    }
  }

  async function act(f: () => Promise<unknown>) {
    setError(null);
    try {
      await f();
      await load();
    } catch (e) {
      setError(e);
    }
  }

  return (
    <div className="page-content">
      <PageHeader title={t("admin.users")} />
      <form className="inline-form" onSubmit={create} aria-label={t("admin.newUser")}>
        <h2>{t("admin.newUser")}</h2>
        <label>
          {t("field.username")}
          <input value={form.username} onChange={(e) => setForm({ ...form, username: e.target.value })} required />
        </label>
        <label>
          {t("field.displayName")}
          <input value={form.display_name} onChange={(e) => setForm({ ...form, display_name: e.target.value })} required />
        </label>
        <label>
          {t("field.email")}
          <input type="email" value={form.email} onChange={(e) => setForm({ ...form, email: e.target.value })} />
        </label>
        <label>
          {t("field.title")}
          <input value={form.title} onChange={(e) => setForm({ ...form, title: e.target.value })} />
        </label>
        <label>
          {t("field.role")}
          <select value={form.role} onChange={(e) => setForm({ ...form, role: e.target.value as Role })}>
            {ROLES.filter((r) => r !== "owner").map((r) => (
              <option key={r} value={r}>
                {t(`role.${r}` as const)}
              </option>
            ))}
          </select>
        </label>
        <DepartmentSelect value={form.dept} onChange={(dept) => setForm({ ...form, dept })} label={t("field.department")} />
        <button className="primary">{t("admin.create")}</button>
      </form>
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      <ErrorNote error={error} />
      <input className="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder={t("directory.search")} aria-label={t("directory.search")} />
      <table className="table">
        <tbody>
          {people.map((u) => (
            <tr key={u.id} className={u.status === "disabled" ? "disabled" : ""}>
              <td>
                <Avatar user={u} size={24} /> {u.display_name} <span className="muted">@{u.username}</span>
                {u.status === "disabled" && <span className="tag">{t("admin.disabled")}</span>}
              </td>
              <td>
                <select value={u.role} aria-label={t("field.role")} onChange={(e) => void act(() => api.updateUser(u.id, { role: e.target.value as Role }))}>
                  {ROLES.map((r) => (
                    <option key={r} value={r}>
                      {t(`role.${r}` as const)}
                    </option>
                  ))}
                </select>
              </td>
              <td>
                <DepartmentSelect value={u.primary_department_id} label={t("field.department")} quiet onChange={(dept) => void act(() => api.updateUser(u.id, { primary_department_id: dept }))} />
              </td>
              <td className="row">
                {u.status === "active" ? (
                  <button
                    className="small"
                    onClick={() => confirm(t("admin.confirmDisable", { name: u.display_name })) && void act(() => api.disableUser(u.id))}
                  >
                    {t("admin.disable")}
                  </button>
                ) : (
                  <button className="small" onClick={() => void act(() => api.enableUser(u.id))}>
                    {t("admin.enable")}
                  </button>
                )}
                <button
                  className="small"
                  onClick={() =>
                    confirm(t("admin.confirmReset", { name: u.display_name })) &&
                    void act(async () => {
                      const r = await api.resetPassword(u.id);
                      setNotice(t("admin.tempPassword", { name: u.display_name, password: r.temporary_password }));
                    })
                  }
                >
                  {t("admin.reset")}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function AdminDepartments() {
  const t = useT();
  const departments = useApp((s) => s.departments);
  const [selected, setSelected] = useState<string>(rootDepartment());
  const [name, setName] = useState("");
  const [rename, setRename] = useState("");
  const [parent, setParent] = useState("");
  const [error, setError] = useState<unknown>(null);
  const current = departments[selected];

  useEffect(() => {
    setRename(current?.name ?? "");
    setParent(current?.parent_id ?? "");
  }, [current?.id, current?.name, current?.parent_id]);

  /** Runs an action and reloads; false (the error shown) when it failed. */
  async function act(f: () => Promise<unknown>): Promise<boolean> {
    setError(null);
    try {
      await f();
      await loadDepartments();
      return true;
    } catch (e) {
      setError(e);
      return false;
    }
  }

  return (
    <div className="page-content two-columns">
      <PageHeader title={t("admin.departments")} />
      <div className="columns">
        <DepartmentTree selected={selected} onSelect={setSelected} />
        {current && (
          <div className="stack">
            <h2>{current.name}</h2>
            <ErrorNote error={error} />
            <form
              className="row"
              onSubmit={(e) => {
                e.preventDefault();
                // The name stays when creating fails (a name taken here): fix it, send again.
                void act(() => api.createDepartment(name, current.id)).then((ok) => ok && setName(""));
              }}
            >
              <input value={name} onChange={(e) => setName(e.target.value)} placeholder={t("admin.newDepartment")} aria-label={t("admin.newDepartment")} required />
              <button className="primary small">{t("admin.newDepartment")}</button>
            </form>
            <form
              className="row"
              onSubmit={(e) => {
                e.preventDefault();
                void act(() => api.updateDepartment(current.id, { name: rename }));
              }}
            >
              <input value={rename} onChange={(e) => setRename(e.target.value)} aria-label={t("admin.rename")} required />
              <button className="small">{t("admin.rename")}</button>
            </form>
            {current.parent_id && (
              <div className="row">
                <DepartmentSelect value={parent} onChange={setParent} label={t("admin.move")} />
                <button className="small" disabled={!parent || parent === current.parent_id} onClick={() => void act(() => api.updateDepartment(current.id, { parent_id: parent }))}>
                  {t("admin.move")}
                </button>
                <button
                  className="small danger"
                  onClick={() =>
                    void act(async () => {
                      await api.deleteDepartment(current.id);
                      setSelected(current.parent_id ?? rootDepartment());
                    })
                  }
                >
                  {t("admin.delete")}
                </button>
              </div>
            )}
          </div>
        )}
      </div>
    </div>
  );
}
