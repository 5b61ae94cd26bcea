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
    expect(errorText(new ApiError(422, "invalid_input", "unknown filter has:image", null, "q"))).toBe("请检查此项：搜索内容（unknown filter has:image）。");
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
