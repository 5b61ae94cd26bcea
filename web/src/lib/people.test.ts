import { describe, expect, it } from "vitest";
import type { Conversation, User } from "../types";
import { foldText, matchesConversation, matchesPerson, matchesText, namePinyin, textPinyin } from "./people";

function person(username: string, display_name: string, email: string | null = null): User {
  return {
    id: username,
    username,
    display_name,
    email,
    title: "",
    role: "member",
    status: "active",
    primary_department_id: "d",
    secondary_department_ids: [],
    managed_department_ids: [],
    must_change_password: false,
    created_at: 0,
    updated_at: 0,
  } as User;
}

describe("people", () => {
  it("reads names in pinyin, surnames as surnames", () => {
    expect(namePinyin("张伟")).toEqual(["zhang", "wei"]);
    expect(namePinyin("陳偉")).toEqual(["chen", "wei"]);
    expect(namePinyin("區志明")).toEqual(["ou", "zhi", "ming"]); // a traditional surname, read as a surname
    expect(namePinyin("曾国藩")).toEqual(["zeng", "guo", "fan"]);
    expect(namePinyin("Alice 吕布")).toEqual(["lv", "bu"]);
    expect(namePinyin("Alice")).toEqual([]);
  });

  it("finds people by name, pinyin, initials, username and e-mail", () => {
    const zw = person("zw01", "张伟", "wei@corp.cn");
    for (const q of ["张", "张伟", "zhangwei", "Zhang Wei", "zw", "ｚｈａｎｇ", "ZW01", "corp.cn", " wei ", ""]) {
      expect(matchesPerson(zw, q), q).toBe(true);
    }
    for (const q of ["李", "zhangwe i", "lw", "x"]) {
      expect(matchesPerson(zw, q), q).toBe(false);
    }
    expect(matchesPerson(person("lucy", "Lucy Ｗａｎｇ"), "lucy wang")).toBe(true);
  });

  it("folds traditional characters to simplified, both in names and in what is typed", () => {
    expect(foldText("陳偉 會議 ＰＭ")).toBe("陈伟 会议 pm");
    expect(foldText("著")).toBe("著"); // also in use in simplified text: left alone
    expect(foldText("下週這裡")).toBe("下周这里"); // forms written in Taiwan and Hong Kong
    expect(foldText("José Zürich")).toBe("jose zurich");
    expect(matchesPerson(person("cw", "陳偉"), "陈伟")).toBe(true);
    expect(matchesPerson(person("cw", "陈伟"), "陳偉")).toBe(true);
    expect(matchesPerson(person("cw", "陳偉"), "chenwei")).toBe(true);
    expect(matchesPerson(person("cw", "陳偉"), "陈伦")).toBe(false);
  });

  it("finds channel names by folded text and pinyin, without surname readings", () => {
    expect(textPinyin("单元测试")).toEqual(["dan", "yuan", "ce", "shi"]);
    for (const q of ["项目", "項目組", "xiangmuzu", "xiang mu", "xmz", "ALPHA", ""]) {
      expect(matchesText("项目组 Alpha", q), q).toBe(true);
    }
    for (const q of ["xmx", "beta", "项目部"]) {
      expect(matchesText("项目组 Alpha", q), q).toBe(false);
    }
  });

  it("finds a conversation by its name or, for a DM, by the other people in it", () => {
    const me = person("me", "我");
    const zw = person("zw01", "张伟");
    const users = { me: me, zw01: zw };
    const conv = (kind: string, name: string, participant_ids: string[]) =>
      ({ id: name || kind, kind, name, participant_ids, created_at: 0 }) as unknown as Conversation;
    const dm = conv("dm", "", ["me", "zw01"]);
    expect(matchesConversation(dm, "zw", "me", users)).toBe(true);
    expect(matchesConversation(dm, "张伟", "me", users)).toBe(true);
    expect(matchesConversation(dm, "wo", "me", users)).toBe(false); // not by my own name
    const channel = conv("public", "周会", ["me", "zw01"]);
    expect(matchesConversation(channel, "zh", "me", users)).toBe(true);
    expect(matchesConversation(channel, "zw", "me", users)).toBe(false); // a channel is found by its name only
    expect(matchesConversation(channel, " ", "me", users)).toBe(true);
  });
});
