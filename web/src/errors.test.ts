import { afterEach, describe, expect, it } from "vitest";
import { ApiError } from "./api";
import { errorText } from "./errors";
import { useLang } from "./i18n";

describe("error text", () => {
  afterEach(() => useLang.setState({ lang: "en" }));

  it("shows the server's own words in English", () => {
    useLang.setState({ lang: "en" });
    expect(errorText(new ApiError(403, "forbidden", "Guests cannot browse channels."))).toBe("Guests cannot browse channels.");
    expect(errorText(new ApiError(0, "network", "x"))).toBe("The server cannot be reached; check the connection.");
    expect(errorText(new ApiError(502, "http_502", ""))).toBe("The server answered with an error (502).");
    expect(errorText(new ApiError(422, "invalid_input", "must not be empty", null, "display_name"))).toBe("Name: must not be empty");
    expect(errorText(new ApiError(429, "rate_limited", "Too many password checks.", 7))).toBe("Too many password checks. (try again in 7 s)");
    expect(errorText(new ApiError(500, "internal", "Something went wrong.", null, null, "abc123"))).toBe("Something went wrong. (reference abc123)");
  });

  it("shows the text for the code in Chinese, with the field or the wait", () => {
    useLang.setState({ lang: "zh-CN" });
    expect(errorText(new ApiError(409, "username_taken", "That username is already taken."))).toBe("该用户名已被使用。");
    expect(errorText(new ApiError(422, "invalid_input", "must not be empty", null, "display_name"))).toBe("姓名不能为空。");
    expect(errorText(new ApiError(422, "invalid_input", "must be at least 8 characters", null, "new_password"))).toBe("新密码至少 8 个字符。");
    expect(errorText(new ApiError(422, "invalid_input", "may contain only letters a-z, digits, '.', '_' and '-'", null, "username"))).toBe(
      "用户名只能包含字母 a-z、数字、“.”、“_” 和 “-”。",
    );
    // A reason the client does not know keeps the server's words, after the field's name.
    expect(errorText(new ApiError(422, "invalid_input", "something new", null, "q"))).toBe("请检查此项：搜索内容（something new）。");
    // The search filters' reasons.
    expect(errorText(new ApiError(422, "invalid_input", "unknown filter has:image (use has:file)", null, "q"))).toBe(
      "搜索内容中没有 has:image 这个筛选（可用 has:file）。",
    );
    expect(
      errorText(new ApiError(422, "invalid_input", "from: needs a value right after the colon, without a space (from:username)", null, "q")),
    ).toBe("搜索内容中的 from: 后面要紧跟内容，不能有空格（如 from:username）。");
    expect(errorText(new ApiError(422, "invalid_input", "give in: once per search", null, "q"))).toBe("搜索内容中的 in: 每次搜索只能用一次。");
    expect(errorText(new ApiError(422, "invalid_input", "after:2026-02-30 is not a date (YYYY-MM-DD)", null, "q"))).toBe(
      "搜索内容中的 after:2026-02-30 不是有效日期（格式 YYYY-MM-DD）。",
    );
    // Codes that cover several reasons say which.
    expect(errorText(new ApiError(409, "conflict", "The conversation is archived."))).toBe("内容已被更改，请刷新后重试。（The conversation is archived.）");
    expect(errorText(new ApiError(500, "internal", "x", null, null, "abc123"))).toContain("abc123");
    expect(errorText(new ApiError(429, "rate_limited", "Too many", 3))).toBe("操作太频繁，请 3 秒后再试。");
    expect(errorText(new ApiError(0, "network", "x"))).toBe("无法连接服务器，请检查网络。");
    // A code this client does not know keeps the server's words.
    expect(errorText(new ApiError(400, "brand_new", "Something new."))).toBe("出错了：Something new.");
    expect(errorText(new Error("plain"))).toBe("plain");
  });
});
