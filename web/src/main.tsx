import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { translate, useLang } from "./i18n";
import "./styles.css";

document.documentElement.lang = useLang.getState().lang;
document.title = translate(useLang.getState().lang, "app.name");
createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

if ("serviceWorker" in navigator && import.meta.env.PROD) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js").catch(() => undefined);
  });
}
