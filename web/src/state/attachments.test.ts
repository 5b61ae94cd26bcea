import { describe, expect, it, vi } from "vitest";
import { attachmentsAt, forgetAttachments, subscribeAttachments, updateAttachments } from "./attachments";

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
