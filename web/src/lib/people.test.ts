import { describe, expect, it } from "vitest";
import type { User } from "../types";
import { foldText, matchesPerson, namePinyin } from "./people";

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
    expect(foldText("乾")).toBe("乾"); // also in use in simplified text: left alone
    expect(matchesPerson(person("cw", "陳偉"), "陈伟")).toBe(true);
    expect(matchesPerson(person("cw", "陈伟"), "陳偉")).toBe(true);
    expect(matchesPerson(person("cw", "陳偉"), "chenwei")).toBe(true);
    expect(matchesPerson(person("cw", "陳偉"), "陈伦")).toBe(false);
  });
});
