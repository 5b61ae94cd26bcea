import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError, UPLOAD_STALL_MS, uploadFile } from "./api";
import { uploadRetryable } from "./state/attachments";

/** Stands in for the browser's XMLHttpRequest: the test fires its events. */
class FakeXhr {
  static last: FakeXhr;
  upload: { onprogress?: (e: { lengthComputable: boolean; loaded: number; total: number }) => void; onload?: () => void } = {};
  onload?: () => void;
  onloadend?: () => void;
  onerror?: () => void;
  onabort?: () => void;
  status = 0;
  statusText = "";
  responseText = "";
  aborted = false;
  constructor() {
    FakeXhr.last = this;
  }
  open() {}
  setRequestHeader() {}
  send() {}
  abort() {
    this.aborted = true;
    this.onabort?.();
    this.onloadend?.();
  }
  sent(loaded: number) {
    this.upload.onprogress?.({ lengthComputable: true, loaded, total: 100 });
    if (loaded === 100) this.upload.onload?.();
  }
  answer(status: number, body: unknown) {
    this.status = status;
    this.responseText = JSON.stringify(body);
    this.onload?.();
    this.onloadend?.();
  }
}

describe("uploads", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.stubGlobal("XMLHttpRequest", FakeXhr);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("one that stops making progress is given up as stalled, and may be retried", async () => {
    const progress = vi.fn();
    const up = uploadFile("c1", new Blob(["x"]), "a.txt", progress);
    const failed = up.promise.catch((e) => e);
    vi.advanceTimersByTime(UPLOAD_STALL_MS / 2);
    FakeXhr.last.sent(40);
    expect(progress).toHaveBeenCalledWith(0.4);
    vi.advanceTimersByTime(UPLOAD_STALL_MS - 1);
    expect(FakeXhr.last.aborted).toBe(false); // progress restarts the wait
    vi.advanceTimersByTime(1);
    expect(FakeXhr.last.aborted).toBe(true);
    const e = await failed;
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).code).toBe("stalled");
    expect(uploadRetryable(e)).toBe(true);
  });

  it("one that keeps moving finishes, and nothing fires after", async () => {
    const up = uploadFile("c1", new Blob(["x"]), "a.txt", () => undefined);
    for (let i = 1; i <= 5; i++) {
      vi.advanceTimersByTime(UPLOAD_STALL_MS - 1000);
      FakeXhr.last.sent(i * 20);
    }
    FakeXhr.last.answer(201, { id: "f1" });
    await expect(up.promise).resolves.toEqual({ id: "f1" });
    vi.advanceTimersByTime(UPLOAD_STALL_MS * 2);
    expect(FakeXhr.last.aborted).toBe(false);
  });

  it("once every byte is sent, the answer is waited for however long the server takes", async () => {
    const up = uploadFile("c1", new Blob(["x"]), "big.png", () => undefined);
    FakeXhr.last.sent(100);
    vi.advanceTimersByTime(UPLOAD_STALL_MS * 5); // storing and thumbnailing a large image
    expect(FakeXhr.last.aborted).toBe(false);
    FakeXhr.last.answer(201, { id: "f2" });
    await expect(up.promise).resolves.toEqual({ id: "f2" });
  });

  it("one cancelled says so, and is not offered again", async () => {
    const up = uploadFile("c1", new Blob(["x"]), "a.txt", () => undefined);
    up.cancel();
    const e = await up.promise.catch((err) => err);
    expect((e as ApiError).code).toBe("cancelled");
    expect(uploadRetryable(e)).toBe(false);
  });
});
