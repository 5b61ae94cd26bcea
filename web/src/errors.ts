// What an error says to the person using the app, in the app's language.
import { ApiError } from "./api";
import { isKey, translate, useLang } from "./i18n";

/** Field names the server gives, as people read them. */
const FIELDS: Record<string, { en: string; zh: string }> = {
  username: { en: "Username", zh: "用户名" },
  login: { en: "Username or e-mail", zh: "用户名或邮箱" },
  password: { en: "Password", zh: "密码" },
  current_password: { en: "Current password", zh: "当前密码" },
  new_password: { en: "New password", zh: "新密码" },
  display_name: { en: "Name", zh: "姓名" },
  email: { en: "E-mail", zh: "邮箱" },
  title: { en: "Title", zh: "职位" },
  name: { en: "Name", zh: "名称" },
  org_name: { en: "Organisation name", zh: "组织名称" },
  topic: { en: "Topic", zh: "主题" },
  description: { en: "Description", zh: "描述" },
  body: { en: "Message", zh: "消息" },
  q: { en: "Search", zh: "搜索内容" },
  emoji: { en: "Emoji", zh: "表情" },
  device_name: { en: "Device name", zh: "设备名称" },
  departments: { en: "Departments", zh: "部门" },
  department_id: { en: "Department", zh: "部门" },
  primary_department_id: { en: "Department", zh: "主部门" },
  parent_id: { en: "Parent department", zh: "上级部门" },
  user_ids: { en: "People", zh: "成员" },
  member_ids: { en: "Members", zh: "成员" },
  file_ids: { en: "Files", zh: "文件" },
  role: { en: "Role", zh: "角色" },
  token: { en: "Setup link", zh: "初始化链接" },
};

/** The server's common reasons, in Chinese; `undefined` for others. */
function reasonZh(message: string): string | undefined {
  const rules: [RegExp, (m: RegExpMatchArray) => string][] = [
    [/^must be at most (\d+) characters/, (m) => `最多 ${m[1]} 个字符`],
    [/^must be at least (\d+) characters/, (m) => `至少 ${m[1]} 个字符`],
    [/^must be (\d+) to (\d+) characters/, (m) => `须为 ${m[1]}–${m[2]} 个字符`],
    [/^must not be empty/, () => "不能为空"],
    [/^must be a single line/, () => "只能是一行，且不能含控制字符"],
    [/^may contain only letters a-z/, () => "只能包含字母 a-z、数字、“.”、“_” 和 “-”"],
    [/^must start with a letter or digit/, () => "须以字母或数字开头"],
    [/is reserved/, () => "是保留名称（@ 它会提醒所有人）"],
    [/^is not a valid e-mail address/, () => "不是有效的邮箱地址"],
    [/^must not be the username/, () => "不能与用户名相同"],
    // Search filters.
    [/^(\w+): needs a value right after the colon, without a space \((.+)\)$/, (m) => `中的 ${m[1]}: 后面要紧跟内容，不能有空格（如 ${m[2]}）`],
    [/^give (\w+): once per search/, (m) => `中的 ${m[1]}: 每次搜索只能用一次`],
    [/^(\w+):(\S*) is not a date \(YYYY-MM-DD\)/, (m) => `中的 ${m[1]}:${m[2]} 不是有效日期（格式 YYYY-MM-DD）`],
    [/^unknown filter has:(\S*)/, (m) => `中没有 has:${m[1]} 这个筛选（可用 has:file）`],
  ];
  for (const [re, say] of rules) {
    const m = message.match(re);
    if (m) return say(m);
  }
  return undefined;
}

/** An error as text. The server's messages are English and the most specific, so English
 * shows them (after the field's name, with the wait); Chinese shows the text for the error's
 * stable code, with the field's name and the reason where the server gave them, and the
 * server's words only for a code it does not know. */
export function errorText(e: unknown): string {
  const lang = useLang.getState().lang;
  if (!(e instanceof ApiError)) return e instanceof Error ? e.message : String(e);
  if (e.code === "network" || e.code === "timeout" || e.code === "cancelled" || e.code === "stalled") return translate(lang, `error.${e.code}`);
  if (e.code.startsWith("http_") || !e.message) return translate(lang, "error.http", { status: e.status });
  const field = e.field ? FIELDS[e.field] : undefined;
  if (lang === "en") {
    let text = e.code === "invalid_input" && field ? `${field.en}: ${e.message}` : e.message;
    if (e.code === "rate_limited" && e.retryAfter && !/\d+ s(econds?)?\b/.test(text)) text += ` (try again in ${e.retryAfter} s)`;
    if ((e.code === "internal" || e.code === "unavailable") && e.requestId) text += ` (reference ${e.requestId})`;
    return text;
  }
  if (e.code === "rate_limited" && e.retryAfter) return translate(lang, "error.rate_limited_wait", { seconds: e.retryAfter });
  if (e.code === "invalid_input" && e.field) {
    const name = field?.zh ?? e.field;
    const reason = reasonZh(e.message);
    // A reason this client cannot say in Chinese is shown as the server wrote it, set apart.
    return reason
      ? translate(lang, "error.invalid_input_reason", { field: name, reason })
      : translate(lang, "error.invalid_input_other", { field: name, reason: e.message });
  }
  const key = `error.${e.code}`;
  if (!isKey(key)) return translate(lang, "error.generic", { message: e.message });
  const text = translate(lang, key);
  // These codes cover several reasons: the server's own words say which.
  if (e.code === "conflict" || e.code === "payload_too_large") return `${text}（${e.message}）`;
  if ((e.code === "internal" || e.code === "unavailable") && e.requestId) return `${text}（编号 ${e.requestId}）`;
  return text;
}
