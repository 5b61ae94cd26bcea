// Conversations grouped into channels and direct messages, with unread and mention badges.
import { useCallback, useMemo, useState, type ReactNode } from "react";
import { useLang, useT, type Lang } from "../i18n";
import { sortByName } from "../lib/collate";
import { navigate, paths, useRoute } from "../router";
import { byRecent, conversationTitle, unreadThreads, type Model } from "../state/model";
import { setMyPresence, signOut, useApp } from "../state/store";
import type { Conversation, MyState } from "../types";
import { Avatar, CountBadge } from "./common";
import { Icon, type IconName } from "./icons";
import { NewChannelDialog, NewDmDialog } from "./Dialogs";
import { JUMP_KEYS, QuickSwitcher, useJumpShortcut } from "./QuickSwitcher";
import { SearchBox } from "./Search";
import { LanguageSwitch } from "./Settings";

const CHANNEL_ICON: Record<string, IconName> = { private: "lock", announcement: "megaphone", department: "building", project: "diamond" };

function Item({ conv, me, active }: { conv: Conversation; me: MyState | null; active: boolean }) {
  const meId = useApp((s) => s.me?.id);
  const users = useApp((s) => s.users);
  const title = conversationTitle(conv, meId, users);
  const unread = me?.unread_count ?? 0;
  const mentions = me?.mention_count ?? 0;
  // Unsent text in this conversation (its own composer), from any of my devices.
  const hasDraft = useApp((s) => !!s.drafts[conv.id]);
  const t = useT();
  const isDm = conv.kind === "dm" || conv.kind === "group";
  const other = conv.kind === "dm" ? users[conv.participant_ids.find((p) => p !== meId) ?? meId ?? ""] : undefined;
  return (
    <li>
      <a
        href={paths.conversation(conv.id)}
        className={`conv-item${active ? " active" : ""}${unread ? " unread" : ""}`}
        aria-current={active ? "page" : undefined}
        onClick={(e) => {
          e.preventDefault();
          navigate(paths.conversation(conv.id));
        }}
      >
        {isDm ? (
          conv.kind === "dm" ? (
            <Avatar user={other} size={20} />
          ) : (
            <span className="conv-icon">
              <Icon name="group" />
            </span>
          )
        ) : (
          <span className="conv-icon" aria-hidden="true">
            {CHANNEL_ICON[conv.kind] ? <Icon name={CHANNEL_ICON[conv.kind]} size={14} /> : "#"}
          </span>
        )}
        <span className="conv-name">{title}</span>
        {hasDraft && !active ? (
          <span className="draft-mark" title={t("conv.draft")} aria-label={t("conv.draft")}>
            <Icon name="pencil" size={12} />
          </span>
        ) : null}
        <CountBadge mentions={mentions} unread={unread} label={t("badge.unread", { n: unread })} />
      </a>
    </li>
  );
}

/** "Threads", with how many followed threads have new replies (@ when one mentions me). */
function ThreadsBadge() {
  const t = useT();
  const followed = useApp((s) => s.followed);
  const unread = useMemo(() => unreadThreads({ followed }), [followed]);
  const mentions = unread.reduce((n, th) => n + th.mention_count, 0);
  return <CountBadge mentions={mentions} unread={unread.length} label={t("badge.threads", { n: unread.length })} />;
}

/** A link to one of the app's pages (navigated to without a reload). */
function NavLink({ path, label, active, children }: { path: string; label: string; active: boolean; children?: ReactNode }) {
  return (
    <a
      href={path}
      className={active ? "nav-link active" : "nav-link"}
      aria-current={active ? "page" : undefined}
      onClick={(e) => {
        e.preventDefault();
        navigate(path);
      }}
    >
      {label}
      {children}
    </a>
  );
}

type Entry = Model["conversations"][string];

/** The sidebar's lists: channels by name in `lang`'s order, direct and group messages by
 * their last activity, latest first, as the server lists conversations (a thread reply is
 * activity too; a tie goes to the greater id). */
export function sidebarLists(conversations: Model["conversations"], lang: Lang): { channels: Entry[]; dms: Entry[] } {
  const all = Object.values(conversations);
  const isDm = (c: Entry) => c.conv.kind === "dm" || c.conv.kind === "group";
  return {
    channels: sortByName(all.filter((c) => !isDm(c)), (c) => c.conv.name, lang),
    dms: all.filter(isDm).sort((a, b) => byRecent(a.conv, b.conv)),
  };
}

export function Sidebar() {
  const t = useT();
  const lang = useLang((s) => s.lang);
  const conversations = useApp((s) => s.conversations);
  const me = useApp((s) => s.me);
  const myPresence = useApp((s) => (s.me ? s.presence[s.me.id] : undefined));
  const orgName = useApp((s) => s.orgName);
  const route = useRoute((s) => s.route);
  const [dialog, setDialog] = useState<"channel" | "dm" | "jump" | null>(null);
  // Another dialog open keeps what is typed in it: the shortcut waits until it is closed.
  const openJump = useCallback(() => setDialog((d) => d ?? "jump"), []);
  const closeDialog = useCallback(() => setDialog(null), []);
  useJumpShortcut(openJump);
  const activeId = route.name === "conversation" ? route.id : null;

  const { channels, dms } = useMemo(() => sidebarLists(conversations, lang), [conversations, lang]);

  const staff = me && me.role !== "guest";
  const admin = me && (me.role === "owner" || me.role === "admin" || me.role === "department_admin");

  return (
    <nav className="sidebar" aria-label={t("nav.menu")}>
      <header className="org">
        <strong>{orgName || t("app.name")}</strong>
        <span className="me">
          <Avatar user={me ?? undefined} size={22} /> {me?.display_name}
          <button
            className="dnd-toggle"
            aria-pressed={myPresence === "dnd"}
            title={t("presence.dndHint")}
            onClick={() => setMyPresence(myPresence === "dnd" ? "online" : "dnd")}
          >
            {t("presence.dndToggle")}
          </button>
        </span>
      </header>
      <SearchBox />
      <button className="jump-button" onClick={openJump} aria-keyshortcuts="Control+K Meta+K">
        {t("jump.title")} <kbd>{JUMP_KEYS}</kbd>
      </button>
      <div className="nav-links">
        <NavLink path="/threads" label={t("nav.threads")} active={route.name === "threads"}>
          <ThreadsBadge />
        </NavLink>
        {staff && <NavLink path="/browse" label={t("nav.browse")} active={route.name === "browse"} />}
        {staff && <NavLink path="/directory" label={t("nav.directory")} active={route.name === "directory"} />}
        {admin && <NavLink path="/admin/users" label={t("nav.users")} active={route.name === "admin-users"} />}
        {admin && <NavLink path="/admin/departments" label={t("nav.departments")} active={route.name === "admin-departments"} />}
        <NavLink path="/settings" label={t("nav.sessions")} active={route.name === "settings"} />
      </div>
      <section>
        <h3>
          {t("nav.channels")}
          {staff && (
            <button className="icon" onClick={() => setDialog("channel")} aria-label={t("nav.newChannel")} title={t("nav.newChannel")}>
              +
            </button>
          )}
        </h3>
        <ul className="conv-list" aria-label={t("nav.channels")}>
          {channels.map((c) => (
            <Item key={c.conv.id} conv={c.conv} me={c.me} active={c.conv.id === activeId} />
          ))}
        </ul>
      </section>
      <section>
        <h3>
          {t("nav.dms")}
          <button className="icon" onClick={() => setDialog("dm")} aria-label={t("nav.newDm")} title={t("nav.newDm")}>
            +
          </button>
        </h3>
        <ul className="conv-list" aria-label={t("nav.dms")}>
          {dms.map((c) => (
            <Item key={c.conv.id} conv={c.conv} me={c.me} active={c.conv.id === activeId} />
          ))}
        </ul>
      </section>
      <footer>
        <LanguageSwitch />
        <button className="link" onClick={() => void signOut()}>
          {t("nav.signOut")}
        </button>
      </footer>
      {dialog === "channel" && <NewChannelDialog onClose={closeDialog} />}
      {dialog === "dm" && <NewDmDialog onClose={closeDialog} />}
      {dialog === "jump" && <QuickSwitcher onClose={closeDialog} />}
    </nav>
  );
}
