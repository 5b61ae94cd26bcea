import { describe, expect, it } from "vitest";
import { collator, sortByName } from "./collate";

describe("sorting names in the app's language", () => {
  const names = ["Zoe", "北辰", "安娜", "alice"];

  it("orders by the language given: Chinese by pinyin and first, English alphabetically", () => {
    expect(sortByName(names, (n) => n, "zh-CN")).toEqual(["安娜", "北辰", "alice", "Zoe"]);
    expect(sortByName(names, (n) => n, "en")).toEqual(["alice", "Zoe", "北辰", "安娜"]);
    expect(names).toEqual(["Zoe", "北辰", "安娜", "alice"]); // a copy is sorted
  });

  it("orders numbers in names by value", () => {
    const rooms = ["Room 10", "Room 2", "会议室 12", "会议室 3"];
    expect(sortByName(rooms, (n) => n, "en")).toEqual(["Room 2", "Room 10", "会议室 3", "会议室 12"]);
    expect(sortByName(rooms, (n) => n, "zh-CN")).toEqual(["会议室 3", "会议室 12", "Room 2", "Room 10"]);
  });

  it("keeps one collator per language", () => {
    expect(collator("zh-CN")).toBe(collator("zh-CN"));
    expect(collator("en")).not.toBe(collator("zh-CN"));
    expect(collator("zh-CN").resolvedOptions().locale).toMatch(/^zh/);
  });
});
