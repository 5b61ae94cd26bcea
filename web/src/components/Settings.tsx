// The signed-in person's own settings: profile, password, language, devices (sessions).
import { useEffect, useState, type FormEvent } from "react";
import { api } from "../api";
import { formatDay, formatTime, setLang, useLang, useT } from "../i18n";
import { signOut, useApp } from "../state/store";
import type { Session } from "../types";
import { ErrorNote, PageHeader } from "./common";

export function LanguageSwitch() {
  const t = useT();
  const lang = useLang((s) => s.lang);
  return (
    <label className="lang">
      <span>{t("nav.language")}</span>
      <select value={lang} onChange={(e) => setLang(e.target.value as "en" | "zh-CN")}>
        <option value="en">English</option>
        <option value="zh-CN">简体中文</option>
      </select>
    </label>
  );
}

export function Settings() {
  const t = useT();
  const lang = useLang((s) => s.lang);
  const me = useApp((s) => s.me);
  const [sessions, setSessions] = useState<Session[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [profile, setProfile] = useState({ display_name: me?.display_name ?? "", title: me?.title ?? "" });
  const [pw, setPw] = useState({ current: "", next: "" });

  async function loadSessions() {
    try {
      setSessions((await api.sessions()).items);
    } catch (e) {
      setError(e);
    }
  }
  useEffect(() => {
    void loadSessions();
  }, []);

  async function run(f: () => Promise<unknown>, message?: string) {
    setError(null);
    setSaved(null);
    try {
      await f();
      if (message) setSaved(message);
    } catch (e) {
      setError(e);
    }
  }

  return (
    <div className="page-content">
      <PageHeader title={t("settings.profile")} />
      <ErrorNote error={error} />
      {saved && (
        <p className="notice" role="status">
          {saved}
        </p>
      )}
      <form
        className="inline-form"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void run(async () => {
            const u = await api.updateMe(profile);
            useApp.setState((s) => ({ me: u, users: { ...s.users, [u.id]: u } }));
          }, t("settings.saved"));
        }}
      >
        <label>
          {t("field.displayName")}
          <input value={profile.display_name} onChange={(e) => setProfile({ ...profile, display_name: e.target.value })} required />
        </label>
        <label>
          {t("field.title")}
          <input value={profile.title} onChange={(e) => setProfile({ ...profile, title: e.target.value })} />
        </label>
        <button className="primary">{t("settings.save")}</button>
      </form>
      <LanguageSwitch />
      <form
        className="inline-form"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void run(() => api.changePassword(pw.current, pw.next).then(() => setPw({ current: "", next: "" })), t("settings.saved"));
        }}
      >
        <h2>{t("settings.password")}</h2>
        <label>
          {t("field.currentPassword")}
          <input type="password" value={pw.current} onChange={(e) => setPw({ ...pw, current: e.target.value })} required autoComplete="current-password" />
        </label>
        <label>
          {t("field.newPassword")}
          <input type="password" value={pw.next} onChange={(e) => setPw({ ...pw, next: e.target.value })} required minLength={8} autoComplete="new-password" />
        </label>
        <button>{t("settings.password")}</button>
      </form>
      <h2>{t("sessions.title")}</h2>
      {sessions.length === 0 && !error && <p className="muted">{t("common.loading")}</p>}
      <ul className="cards" aria-label={t("sessions.title")}>
        {sessions.map((s) => (
          <li key={s.id} className="card-row">
            <div>
              <strong>{s.device_name}</strong> {s.current && <span className="tag">{t("sessions.current")}</span>}
              <p className="muted">
                {s.ip} · {t("sessions.lastUsed", { when: `${formatDay(s.last_used_at, lang)} ${formatTime(s.last_used_at, lang)}` })}
              </p>
            </div>
            <button
              className="small"
              onClick={() => void (s.current ? signOut() : run(() => api.revokeSession(s.id).then(loadSessions)))}
            >
              {t("sessions.revoke")}
            </button>
          </li>
        ))}
      </ul>
      {sessions.length > 1 && (
        <button className="small" onClick={() => void run(() => api.revokeOthers().then(loadSessions))}>
          {t("sessions.revokeOthers")}
        </button>
      )}
    </div>
  );
}
