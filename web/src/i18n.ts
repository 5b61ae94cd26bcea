// UI text in English and Simplified Chinese. The language defaults to the browser's and can
// be switched in the app (kept in localStorage).
import { create } from "zustand";

const en = {
  "app.name": "Qiao",
  "setup.title": "Create the first owner",
  "setup.intro": "This organisation has no owner yet. The owner manages people, departments and settings.",
  "setup.token": "Setup token",
  "setup.org": "Organisation name",
  "setup.submit": "Create owner and sign in",
  "signin.title": "Sign in",
  "signin.login": "Username or e-mail",
  "signin.password": "Password",
  "signin.submit": "Sign in",
  "password.title": "Choose a new password",
  "password.intro": "Welcome, {name}. You signed in with a temporary password: choose your own to continue.",
  "password.temporary": "Temporary password",
  "password.submit": "Set password and continue",
  "field.username": "Username",
  "field.displayName": "Display name",
  "field.email": "E-mail (optional)",
  "field.title": "Job title",
  "field.password": "Password",
  "field.newPassword": "New password",
  "field.currentPassword": "Current password",
  "field.role": "Role",
  "field.department": "Department",
  "field.name": "Name",
  "field.topic": "Topic",
  "field.kind": "Kind",
  "nav.channels": "Channels",
  "nav.dms": "Direct messages",
  "nav.directory": "Directory",
  "nav.admin": "Administration",
  "nav.users": "Users",
  "nav.departments": "Departments",
  "nav.sessions": "Devices",
  "nav.browse": "Browse channels",
  "nav.newChannel": "New channel",
  "nav.newDm": "New message",
  "nav.signOut": "Sign out",
  "nav.menu": "Menu",
  "nav.back": "Back",
  "nav.language": "Language",
  "banner.offline": "Disconnected. Reconnecting…",
  "banner.connecting": "Connecting…",
  "banner.retry": "Reconnect now",
  "conv.empty": "No messages yet. Say hello!",
  "conv.loadingOlder": "Loading earlier messages…",
  "conv.beginning": "This is the beginning of the conversation.",
  "conv.newMessages": "New messages",
  "conv.jumpUnread": "Jump to first unread",
  "conv.jumpLatest": "Jump to latest",
  "conv.members": "Members",
  "conv.leave": "Leave",
  "conv.join": "Join",
  "conv.archive": "Archive",
  "conv.unarchive": "Unarchive",
  "conv.archived": "This conversation is archived.",
  "conv.readOnly": "Only channel admins and posters can post here.",
  "conv.invite": "Add people",
  "conv.remove": "Remove",
  "conv.pick": "Pick a conversation on the left, or start a new one.",
  "conv.notFound": "This conversation does not exist or you cannot see it.",
  "composer.placeholder": "Message {name}",
  "composer.replyPlaceholder": "Reply…",
  "composer.send": "Send",
  "composer.hint": "Enter to send · Shift+Enter for a new line",
  "msg.edited": "(edited)",
  "msg.deleted": "This message was deleted.",
  "msg.edit": "Edit",
  "msg.delete": "Delete",
  "msg.confirmDelete": "Delete this message? This cannot be undone.",
  "msg.reply": "Reply in thread",
  "msg.react": "Add reaction",
  "msg.replies": "{n} replies",
  "msg.reply1": "1 reply",
  "msg.sending": "Sending…",
  "msg.failed": "Not sent: {error}",
  "msg.retry": "Retry",
  "msg.discard": "Discard",
  "msg.save": "Save",
  "msg.cancel": "Cancel",
  "msg.markUnread": "Mark unread",
  "thread.title": "Thread",
  "thread.close": "Close thread",
  "typing.one": "{name} is typing…",
  "typing.many": "Several people are typing…",
  "create.title": "New channel",
  "create.public": "Public: anyone in the organisation can find and join",
  "create.private": "Private: by invitation",
  "create.announcement": "Announcements: only admins and posters post",
  "create.submit": "Create",
  "dm.title": "New message",
  "dm.pick": "Choose one person for a direct message, or several for a group.",
  "dm.start": "Start conversation",
  "browse.title": "Browse channels",
  "browse.search": "Search channels",
  "browse.none": "No channels found.",
  "browse.members": "{n} members",
  "directory.title": "Directory",
  "directory.search": "Search people by name, username or e-mail",
  "directory.message": "Message",
  "directory.none": "Nobody found.",
  "profile.department": "Department",
  "profile.title": "Title",
  "profile.email": "E-mail",
  "admin.users": "Users",
  "admin.newUser": "New user",
  "admin.create": "Create user",
  "admin.disable": "Disable",
  "admin.enable": "Enable",
  "admin.reset": "Reset password",
  "admin.tempPassword": "Temporary password for {name}: {password} (shown once)",
  "admin.disabled": "disabled",
  "admin.departments": "Departments",
  "admin.newDepartment": "New sub-department",
  "admin.rename": "Rename",
  "admin.delete": "Delete",
  "admin.move": "Move under",
  "sessions.title": "Your devices",
  "sessions.current": "this device",
  "sessions.revoke": "Sign out",
  "sessions.revokeOthers": "Sign out all other devices",
  "sessions.lastUsed": "last used {when}",
  "settings.profile": "Profile",
  "settings.save": "Save",
  "settings.saved": "Saved.",
  "settings.password": "Change password",
  "presence.online": "online",
  "presence.away": "away",
  "presence.dnd": "do not disturb",
  "presence.offline": "offline",
  "role.owner": "Owner",
  "role.admin": "Admin",
  "role.department_admin": "Department admin",
  "role.member": "Member",
  "role.guest": "Guest",
  "common.close": "Close",
  "common.search": "Search",
  "common.loading": "Loading…",
  "common.today": "Today",
  "common.yesterday": "Yesterday",
  "error.generic": "Something went wrong: {message}",
} as const;

export type Key = keyof typeof en;

const zh: Record<Key, string> = {
  "app.name": "桥",
  "setup.title": "创建第一位所有者",
  "setup.intro": "本组织还没有所有者。所有者负责管理成员、部门和设置。",
  "setup.token": "设置令牌",
  "setup.org": "组织名称",
  "setup.submit": "创建所有者并登录",
  "signin.title": "登录",
  "signin.login": "用户名或邮箱",
  "signin.password": "密码",
  "signin.submit": "登录",
  "password.title": "设置新密码",
  "password.intro": "欢迎，{name}。你使用临时密码登录，请先设置自己的密码。",
  "password.temporary": "临时密码",
  "password.submit": "设置密码并继续",
  "field.username": "用户名",
  "field.displayName": "显示名称",
  "field.email": "邮箱（可选）",
  "field.title": "职位",
  "field.password": "密码",
  "field.newPassword": "新密码",
  "field.currentPassword": "当前密码",
  "field.role": "角色",
  "field.department": "部门",
  "field.name": "名称",
  "field.topic": "主题",
  "field.kind": "类型",
  "nav.channels": "频道",
  "nav.dms": "私信",
  "nav.directory": "通讯录",
  "nav.admin": "管理",
  "nav.users": "用户",
  "nav.departments": "部门",
  "nav.sessions": "设备",
  "nav.browse": "浏览频道",
  "nav.newChannel": "新建频道",
  "nav.newDm": "发起会话",
  "nav.signOut": "退出登录",
  "nav.menu": "菜单",
  "nav.back": "返回",
  "nav.language": "语言",
  "banner.offline": "连接已断开，正在重新连接…",
  "banner.connecting": "正在连接…",
  "banner.retry": "立即重连",
  "conv.empty": "还没有消息，打个招呼吧！",
  "conv.loadingOlder": "正在加载更早的消息…",
  "conv.beginning": "这是会话的开始。",
  "conv.newMessages": "新消息",
  "conv.jumpUnread": "跳到第一条未读",
  "conv.jumpLatest": "跳到最新",
  "conv.members": "成员",
  "conv.leave": "退出",
  "conv.join": "加入",
  "conv.archive": "归档",
  "conv.unarchive": "取消归档",
  "conv.archived": "此会话已归档。",
  "conv.readOnly": "只有频道管理员和发布者可以在此发言。",
  "conv.invite": "添加成员",
  "conv.remove": "移除",
  "conv.pick": "在左侧选择一个会话，或发起新的会话。",
  "conv.notFound": "会话不存在或你无权查看。",
  "composer.placeholder": "发消息给 {name}",
  "composer.replyPlaceholder": "回复…",
  "composer.send": "发送",
  "composer.hint": "Enter 发送 · Shift+Enter 换行",
  "msg.edited": "（已编辑）",
  "msg.deleted": "此消息已删除。",
  "msg.edit": "编辑",
  "msg.delete": "删除",
  "msg.confirmDelete": "删除这条消息？此操作无法撤销。",
  "msg.reply": "在话题中回复",
  "msg.react": "添加表情回应",
  "msg.replies": "{n} 条回复",
  "msg.reply1": "1 条回复",
  "msg.sending": "发送中…",
  "msg.failed": "未发送：{error}",
  "msg.retry": "重试",
  "msg.discard": "放弃",
  "msg.save": "保存",
  "msg.cancel": "取消",
  "msg.markUnread": "标为未读",
  "thread.title": "话题",
  "thread.close": "关闭话题",
  "typing.one": "{name} 正在输入…",
  "typing.many": "多人正在输入…",
  "create.title": "新建频道",
  "create.public": "公开：组织内任何人都可以找到并加入",
  "create.private": "私有：仅限邀请",
  "create.announcement": "公告：仅管理员和发布者可发言",
  "create.submit": "创建",
  "dm.title": "发起会话",
  "dm.pick": "选择一人发起私信，或选择多人建群。",
  "dm.start": "开始会话",
  "browse.title": "浏览频道",
  "browse.search": "搜索频道",
  "browse.none": "没有找到频道。",
  "browse.members": "{n} 位成员",
  "directory.title": "通讯录",
  "directory.search": "按姓名、用户名或邮箱搜索",
  "directory.message": "发消息",
  "directory.none": "没有找到任何人。",
  "profile.department": "部门",
  "profile.title": "职位",
  "profile.email": "邮箱",
  "admin.users": "用户",
  "admin.newUser": "新建用户",
  "admin.create": "创建用户",
  "admin.disable": "停用",
  "admin.enable": "启用",
  "admin.reset": "重置密码",
  "admin.tempPassword": "{name} 的临时密码：{password}（仅显示一次）",
  "admin.disabled": "已停用",
  "admin.departments": "部门",
  "admin.newDepartment": "新建子部门",
  "admin.rename": "重命名",
  "admin.delete": "删除",
  "admin.move": "移动到",
  "sessions.title": "你的设备",
  "sessions.current": "当前设备",
  "sessions.revoke": "退出",
  "sessions.revokeOthers": "退出其他所有设备",
  "sessions.lastUsed": "最近使用 {when}",
  "settings.profile": "个人资料",
  "settings.save": "保存",
  "settings.saved": "已保存。",
  "settings.password": "修改密码",
  "presence.online": "在线",
  "presence.away": "离开",
  "presence.dnd": "勿扰",
  "presence.offline": "离线",
  "role.owner": "所有者",
  "role.admin": "管理员",
  "role.department_admin": "部门管理员",
  "role.member": "成员",
  "role.guest": "访客",
  "common.close": "关闭",
  "common.search": "搜索",
  "common.loading": "加载中…",
  "common.today": "今天",
  "common.yesterday": "昨天",
  "error.generic": "出错了：{message}",
};

export type Lang = "en" | "zh-CN";
const LANG_KEY = "qiao.lang";

export function detectLang(saved: string | null, browser: readonly string[]): Lang {
  if (saved === "en" || saved === "zh-CN") return saved;
  for (const l of browser) {
    if (l.toLowerCase().startsWith("zh")) return "zh-CN";
    if (l.toLowerCase().startsWith("en")) return "en";
  }
  return "en";
}

function initialLang(): Lang {
  let saved: string | null = null;
  try {
    saved = localStorage.getItem(LANG_KEY);
  } catch {
    /* no storage */
  }
  return detectLang(saved, navigator.languages?.length ? navigator.languages : [navigator.language]);
}

export const useLang = create<{ lang: Lang }>(() => ({ lang: initialLang() }));

export function setLang(lang: Lang): void {
  try {
    localStorage.setItem(LANG_KEY, lang);
  } catch {
    /* no storage */
  }
  document.documentElement.lang = lang;
  useLang.setState({ lang });
}

export function translate(lang: Lang, key: Key, vars?: Record<string, string | number>): string {
  let s: string = (lang === "zh-CN" ? zh : en)[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replace(`{${k}}`, String(v));
  return s;
}

/** The translation function for the current language (re-renders when it changes). */
export function useT(): (key: Key, vars?: Record<string, string | number>) => string {
  const lang = useLang((s) => s.lang);
  return (key, vars) => translate(lang, key, vars);
}

export function formatTime(ms: number, lang: Lang): string {
  return new Date(ms).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
}

export function formatDay(ms: number, lang: Lang, now = Date.now()): string {
  const d = new Date(ms);
  const today = new Date(now);
  const startOf = (x: Date) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const diff = Math.round((startOf(today) - startOf(d)) / 86_400_000);
  if (diff === 0) return translate(lang, "common.today");
  if (diff === 1) return translate(lang, "common.yesterday");
  return d.toLocaleDateString(lang, { year: "numeric", month: "long", day: "numeric", weekday: "short" });
}
