// First-run setup of the owner, and sign-in.
import { useState } from "react";
import { api } from "../api";
import { useT } from "../i18n";
import { passwordChanged, signOut, signedIn, useApp } from "../state/store";
import { ErrorNote, useSubmit } from "./common";
import { LanguageSwitch } from "./Settings";


export function SetupPage() {
  const t = useT();
  const orgName = useApp((s) => s.orgName);
  const [token, setToken] = useState(() => new URLSearchParams(location.hash.slice(1)).get("token") ?? "");
  const [org, setOrg] = useState(orgName);
  const [username, setUsername] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const { error, busy, submit } = useSubmit(async () => {
    await api.setup({ token: token.trim(), username, display_name: displayName, password, email: email || undefined, org_name: org || undefined });
    history.replaceState(null, "", "/");
    await signedIn();
  });

  return (
    <main className="auth">
      <form onSubmit={submit} className="card">
        <h1>{t("setup.title")}</h1>
        <p className="muted">{t("setup.intro")}</p>
        <label>
          {t("setup.token")}
          <input value={token} onChange={(e) => setToken(e.target.value)} required autoComplete="off" />
        </label>
        <label>
          {t("setup.org")}
          <input value={org} onChange={(e) => setOrg(e.target.value)} />
        </label>
        <label>
          {t("field.username")}
          <input value={username} onChange={(e) => setUsername(e.target.value)} required autoComplete="username" />
        </label>
        <label>
          {t("field.displayName")}
          <input value={displayName} onChange={(e) => setDisplayName(e.target.value)} required autoComplete="name" />
        </label>
        <label>
          {t("field.email")}
          <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} autoComplete="email" />
        </label>
        <label>
          {t("field.password")}
          <input type="password" value={password} onChange={(e) => setPassword(e.target.value)} required minLength={8} autoComplete="new-password" />
        </label>
        <ErrorNote error={error} />
        <button className="primary" disabled={busy}>
          {t("setup.submit")}
        </button>
        <LanguageSwitch />
      </form>
    </main>
  );
}

export function SignInPage() {
  const t = useT();
  const orgName = useApp((s) => s.orgName);
  const bootError = useApp((s) => s.error);
  const [login, setLogin] = useState("");
  const [password, setPassword] = useState("");
  const { error, busy, submit } = useSubmit(async () => {
    await api.signIn(login, password);
    await signedIn();
  });

  return (
    <main className="auth">
      <form onSubmit={submit} className="card">
        <h1>
          {t("app.name")}
          {orgName ? ` · ${orgName}` : ""}
        </h1>
        <h2>{t("signin.title")}</h2>
        <label>
          {t("signin.login")}
          <input value={login} onChange={(e) => setLogin(e.target.value)} required autoComplete="username" autoFocus />
        </label>
        <label>
          {t("signin.password")}
          <input type="password" value={password} onChange={(e) => setPassword(e.target.value)} required autoComplete="current-password" />
        </label>
        <ErrorNote error={error ?? bootError} />
        <button className="primary" disabled={busy}>
          {t("signin.submit")}
        </button>
        <LanguageSwitch />
      </form>
    </main>
  );
}

/** Shown after signing in with a temporary password: a new one must be chosen first. */
export function ChangePasswordPage() {
  const t = useT();
  const me = useApp((s) => s.me);
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const { error, busy, submit } = useSubmit(async () => {
    await api.changePassword(current, next);
    await passwordChanged();
  });

  return (
    <main className="auth">
      <form onSubmit={submit} className="card">
        <h1>{t("password.title")}</h1>
        <p className="muted">{t("password.intro", { name: me?.display_name ?? "" })}</p>
        <label>
          {t("password.temporary")}
          <input type="password" value={current} onChange={(e) => setCurrent(e.target.value)} required autoComplete="current-password" autoFocus />
        </label>
        <label>
          {t("field.newPassword")}
          <input type="password" value={next} onChange={(e) => setNext(e.target.value)} required minLength={8} autoComplete="new-password" />
        </label>
        <ErrorNote error={error} />
        <button className="primary" disabled={busy}>
          {t("password.submit")}
        </button>
        <button type="button" className="link" onClick={() => void signOut()}>
          {t("nav.signOut")}
        </button>
      </form>
    </main>
  );
}
