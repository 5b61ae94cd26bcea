// The signed-in layout: sidebar, the current page, the connection banner. On a phone-size
// screen the sidebar and the page take turns.
import { useT } from "../i18n";
import { useRoute } from "../router";
import { reconnectNow, useApp } from "../state/store";
import { AdminDepartments, AdminUsers } from "./Admin";
import { BrowseChannels } from "./Browse";
import { ConversationView } from "./ConversationView";
import { Directory } from "./Directory";
import { SearchPage } from "./Search";
import { Settings } from "./Settings";
import { Sidebar } from "./Sidebar";
import { ThreadsPage } from "./Threads";

function Banner() {
  const t = useT();
  const connection = useApp((s) => s.connection);
  if (connection === "online") return null;
  return (
    <div className={`banner ${connection}`} role="status" aria-live="polite">
      {connection === "offline" ? t("banner.offline") : connection === "crowded" ? t("banner.crowded") : t("banner.connecting")}
      {(connection === "offline" || connection === "crowded") && (
        <button className="link" onClick={reconnectNow}>
          {t("banner.retry")}
        </button>
      )}
    </div>
  );
}

export function Shell() {
  const route = useRoute((s) => s.route);
  const t = useT();
  let page;
  switch (route.name) {
    case "conversation":
      page = <ConversationView key={route.id} id={route.id} thread={route.thread} jumpTo={route.message} />;
      break;
    case "browse":
      page = <BrowseChannels />;
      break;
    case "directory":
      page = <Directory department={route.department} />;
      break;
    case "admin-users":
      page = <AdminUsers />;
      break;
    case "admin-departments":
      page = <AdminDepartments />;
      break;
    case "settings":
      page = <Settings />;
      break;
    case "search":
      page = <SearchPage q={route.q} />;
      break;
    case "threads":
      page = <ThreadsPage />;
      break;
    default:
      page = (
        <div className="empty-page">
          <p>{t("conv.pick")}</p>
        </div>
      );
  }
  return (
    <div className={route.name === "home" ? "shell at-home" : "shell"}>
      <Banner />
      <Sidebar />
      <main className="page">{page}</main>
    </div>
  );
}
