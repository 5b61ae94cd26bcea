import { describe, expect, it, vi } from "vitest";
import { ApiError } from "../api";
import { attachmentsAt, forgetAttachments, subscribeAttachments, updateAttachments, uploadRetryable } from "./attachments";

describe("attachments kept per place", () => {
  it("outlive the composer and go at sign-out, running uploads cancelled", () => {
    const heard = vi.fn();
    const stop = subscribeAttachments(heard);
    const cancel = vi.fn();
    const running = { localId: "a", name: "报告.pdf", size: 10, progress: 0.5, handle: { promise: new Promise(() => undefined), cancel } };
    updateAttachments("c1", (list) => [...list, running as never]);
    updateAttachments("c1:t1", (list) => [...list, { localId: "b", name: "x", size: 1, progress: 1 }]);
    expect(attachmentsAt("c1").map((a) => a.name)).toEqual(["报告.pdf"]);
    expect(attachmentsAt("c1:t1").length).toBe(1);
    expect(attachmentsAt("c2")).toEqual([]);
    forgetAttachments();
    expect(cancel).toHaveBeenCalledOnce();
    expect(attachmentsAt("c1")).toEqual([]);
    expect(heard).toHaveBeenCalledTimes(3);
    stop();
  });
});

describe("which failed uploads may be tried again", () => {
  it("those a retry can cure: the network, a timeout, overload, a restart, a server failure", () => {
    expect(uploadRetryable(new ApiError(0, "network", "The server cannot be reached."))).toBe(true);
    expect(uploadRetryable(new ApiError(408, "http_408", "Request Timeout"))).toBe(true);
    expect(uploadRetryable(new ApiError(504, "http_504", "Gateway Timeout"))).toBe(true);
    expect(uploadRetryable(new ApiError(429, "rate_limited", "Too many attempts", 3))).toBe(true);
    expect(uploadRetryable(new ApiError(503, "unavailable", "retry shortly"))).toBe(true);
    expect(uploadRetryable(new ApiError(500, "internal", "Something went wrong"))).toBe(true);
    expect(uploadRetryable(new ApiError(502, "http_502", "Bad Gateway"))).toBe(true);
  });

  it("not those the same file would meet again: too large, over the quota, refused", () => {
    expect(uploadRetryable(new ApiError(413, "payload_too_large", "The request body is too large."))).toBe(false);
    expect(uploadRetryable(new ApiError(413, "http_413", "Request Entity Too Large"))).toBe(false); // a proxy's limit
    expect(uploadRetryable(new ApiError(413, "quota_exceeded", "Your file storage is full"))).toBe(false);
    expect(uploadRetryable(new ApiError(403, "forbidden", "You do not have permission"))).toBe(false);
    expect(uploadRetryable(new ApiError(404, "not_found", "Not found."))).toBe(false);
    expect(uploadRetryable(new ApiError(422, "invalid_input", "bad name", null, "name"))).toBe(false);
    expect(uploadRetryable(new ApiError(0, "cancelled", "Cancelled."))).toBe(false);
    expect(uploadRetryable(new Error("a bug"))).toBe(false);
  });
});
