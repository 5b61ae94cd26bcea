import { describe, expect, it, vi } from "vitest";
import { api, ApiError } from "./api";
import { parseRoute } from "./router";

const C = "0191f0a2-7c3b-7d4e-8f00-0123456789ab";
const M = "0191f0a2-7c3b-7d4e-8f00-ba9876543210";

describe("links", () => {
  it("name conversations, threads, messages and departments by their ids", () => {
    expect(parseRoute(`/c/${C}/t/${M}`, `?m=${M}`)).toEqual({ name: "conversation", id: C, thread: M, message: M });
    expect(parseRoute(`/c/${C.toUpperCase()}`)).toEqual({ name: "conversation", id: C, thread: undefined, message: undefined });
    expect(parseRoute(`/directory/${C}`)).toEqual({ name: "directory", department: C });
  });

  it("carry nothing else into the requests they lead to", () => {
    // A thread link whose "id" walks to another endpoint (the panel would POST to it).
    expect(parseRoute(`/c/${C}/t/..%2F..%2Fconversations%2F${C}%2Ffiles%23`)).toEqual({
      name: "conversation",
      id: C,
      thread: undefined,
      message: undefined,
    });
    expect(parseRoute(`/c/..%2Fusers`)).toEqual({ name: "home" });
    expect(parseRoute(`/c/${C}`, "?m=../../me")).toMatchObject({ message: undefined });
    expect(parseRoute(`/directory/x%2F..`)).toEqual({ name: "directory", department: undefined });
  });

  it("with a malformed escape open the app instead of failing to load", () => {
    expect(parseRoute("/c/%E0")).toEqual({ name: "home" });
  });
});

describe("API paths", () => {
  it("refuse anything but words and ids before a request is made", async () => {
    const fetch = vi.fn();
    vi.stubGlobal("fetch", fetch);
    for (const bad of ["../conversations", `${C}/../../users`, `${C}#`, `${C}?x=1`, "%2e%2e"]) {
      const err = await api.threadRead(bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).code).toBe("not_found");
    }
    expect(fetch).not.toHaveBeenCalled();
    vi.unstubAllGlobals();
  });
});
