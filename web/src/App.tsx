import { useEffect } from "react";
import { useT } from "./i18n";
import { navigate, useRoute } from "./router";
import { boot, useApp } from "./state/store";
import { errorText } from "./errors";
import { ChangePasswordPage, SetupPage, SignInPage } from "./components/Auth";
import { Shell } from "./components/Shell";

export function App() {
  const phase = useApp((s) => s.phase);
  const error = useApp((s) => s.error);
  const route = useRoute((s) => s.route);
  const t = useT();

  useEffect(() => {
    void boot();
  }, []);

  useEffect(() => {
    if (phase === "setup" && route.name !== "setup") navigate("/setup" + location.hash, true);
    if (phase === "signin" && route.name !== "signin" && route.name !== "setup") navigate("/signin", true);
    if (phase === "ready" && (route.name === "signin" || route.name === "setup")) navigate("/", true);
  }, [phase, route.name]);

  if (phase === "loading") {
    // A server that cannot be reached at start is retried by itself: say so, and why.
    return (
      <div className="splash" role="status">
        <p>{t("common.loading")}</p>
        {error != null && (
          <>
            <p className="error">{errorText(error)}</p>
            <p className="muted">{t("boot.retrying")}</p>
            <button onClick={() => location.reload()}>{t("boot.retryNow")}</button>
          </>
        )}
      </div>
    );
  }
  if (phase === "setup" || (phase === "signin" && route.name === "setup")) return <SetupPage />;
  if (phase === "signin") return <SignInPage />;
  if (phase === "password") return <ChangePasswordPage />;
  return <Shell />;
}
