import { describe, expect, it } from "vitest";
import { renderToStaticMarkup } from "react-dom/server";
import { renderMarkdown, type MentionNames } from "./markdown";
import { mentionQuery } from "../components/Composer";
import { detectLang, translate } from "../i18n";
import { buildRows } from "../components/ConversationView";

const names: MentionNames = {
  user: (id) => (id === "0190a0b0-0000-7000-8000-000000000001" ? "李雷" : undefined),
  username: (n) => (n === "hanmei" ? "韩梅梅" : undefined),
  department: () => "销售部",
  isMe: (x) => x === "hanmei",
};

const html = (s: string) => renderToStaticMarkup(<>{renderMarkdown(s, names)}</>);

describe("markdown", () => {
  it("renders emphasis, code and links", () => {
    expect(html("**粗体** and *italic* `a<b>`")).toBe("<p><strong>粗体</strong> and <em>italic</em> <code>a&lt;b&gt;</code></p>");
    expect(html("see [docs](https://example.com/x)")).toContain('<a href="https://example.com/x" target="_blank" rel="noopener noreferrer nofollow">docs</a>');
  });

  it("never produces markup from text or unsafe links", () => {
    const out = html('<img src=x onerror=alert(1)> [x](javascript:alert(1))');
    expect(out).not.toContain("<img");
    expect(out).not.toContain('href="javascript');
    expect(out).toContain("&lt;img");
  });

  it("renders mentions with names", () => {
    expect(html("<@0190a0b0-0000-7000-8000-000000000001> 你好 @hanmei @所有人")).toBe(
      '<p><span class="mention">@李雷</span> 你好 <span class="mention me" title="@hanmei">@韩梅梅</span> <span class="mention me">@所有人</span></p>',
    );
    expect(html("mail li@acme.cn")).toBe("<p>mail li@acme.cn</p>");
  });

  it("draws a department mention the server did not count as plain text", () => {
    const d = "0190a0b0-0000-7000-8000-0000000000d1";
    const with_ = (ids: string[]) =>
      renderToStaticMarkup(<>{renderMarkdown(`<@&${d}> 看一下`, { ...names, mentionedDepartments: ids })}</>);
    expect(with_([d])).toBe('<p><span class="mention">@销售部</span> 看一下</p>');
    expect(with_([])).toBe("<p><span>@销售部</span> 看一下</p>");
  });

  it("renders blocks: fences, quotes and lists", () => {
    expect(html("```\nlet x = **1**;\n```")).toBe("<pre><code>let x = **1**;</code></pre>");
    expect(html("> quoted\nafter")).toBe("<blockquote><p>quoted</p></blockquote><p>after</p>");
    expect(html("- a\n- b")).toBe("<ul><li>a</li><li>b</li></ul>");
    expect(html("line 1\nline 2")).toBe("<p>line 1<br/>line 2</p>");
  });
});

describe("composer", () => {
  it("finds the @query before the caret", () => {
    expect(mentionQuery("hi @li", 6)).toEqual({ start: 3, query: "li" });
    expect(mentionQuery("你好，@韩", 5)).toEqual({ start: 3, query: "韩" });
    expect(mentionQuery("mail li@acme", 12)).toBeNull();
  });
});

describe("i18n", () => {
  it("picks the browser's language and translates", () => {
    expect(detectLang(null, ["zh-CN", "en"])).toBe("zh-CN");
    expect(detectLang(null, ["fr", "en-GB"])).toBe("en");
    expect(detectLang("en", ["zh-CN"])).toBe("en");
    expect(translate("zh-CN", "signin.title")).toBe("登录");
    expect(translate("en", "msg.replies", { n: 3 })).toBe("3 replies");
  });
});

describe("timeline rows", () => {
  const base = { mentions: { user_ids: [], department_ids: [], channel: false }, reactions: [], conversation_id: "c", body: "x" };
  it("groups consecutive messages, separates days, marks the first unread", () => {
    const day = Date.UTC(2026, 10, 20, 10);
    const ms = [
      { ...base, id: "a", seq: 1, sender_id: "bob", created_at: day },
      { ...base, id: "b", seq: 2, sender_id: "bob", created_at: day + 60_000 },
      { ...base, id: "c", seq: 3, sender_id: "bob", created_at: day + 120_000 },
      { ...base, id: "d", seq: 4, sender_id: "ann", created_at: day + 86_400_000 },
    ];
    const rows = buildRows(ms, [], false, { after: 2, upto: 4 }, "me");
    expect(rows.map((r) => r.kind)).toEqual(["start", "day", "msg", "msg", "unread", "msg", "day", "msg"]);
    const msgs = rows.filter((r) => r.kind === "msg") as { grouped: boolean }[];
    expect(msgs.map((r) => r.grouped)).toEqual([false, true, false, false]);
    // Messages that arrived after opening do not count as "new" for the marker.
    expect(buildRows(ms, [], false, { after: 4, upto: 4 }, "me").some((r) => r.kind === "unread")).toBe(false);
  });
});

import { joinQuery, splitQuery } from "../components/Search";

describe("search query", () => {
  it("splits and joins filters", () => {
    const s = splitQuery('上海 "季度 报告" from:lilei has:file');
    expect(s).toEqual({ text: '上海 "季度 报告"', filters: { from: "lilei", has: "file" } });
    expect(joinQuery(s.text, { ...s.filters, has: "", in: "sales" })).toBe('上海 "季度 报告" from:lilei in:sales');
    // Keys in any case, as the server reads them: a picked sender replaces a typed one.
    const typed = splitQuery("From:lucy 周报");
    expect(typed).toEqual({ text: "周报", filters: { from: "lucy" } });
    expect(joinQuery(typed.text, { ...typed.filters, from: "nana" })).toBe("周报 from:nana");
  });
});
