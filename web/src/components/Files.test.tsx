import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { ApiError, uploadFile } from "../api";
import { useLang } from "../i18n";
import { forgetAttachments } from "../state/attachments";
import { AttachmentList, useAttachments } from "./Files";

vi.mock("../api", async (original) => ({ ...(await original<typeof import("../api")>()), uploadFile: vi.fn() }));

let attachments: ReturnType<typeof useAttachments>;
function Chips() {
  attachments = useAttachments("c-1");
  return <AttachmentList items={attachments.items} onRemove={attachments.remove} onRetry={attachments.retry} />;
}

let root: Root | null = null;
let host: HTMLElement;

beforeAll(() => {
  (globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
});

/** Nothing on screen, no attachments kept. */
function reset() {
  act(() => root?.unmount());
  root = null;
  host?.remove();
  forgetAttachments();
}

afterEach(reset);

/** Adds a file whose upload fails with `error`, and gives the chip's buttons. */
async function failedUpload(error: ApiError): Promise<string[]> {
  useLang.setState({ lang: "en" });
  vi.mocked(uploadFile).mockReturnValue({ promise: Promise.reject(error), cancel: () => undefined });
  host = document.body.appendChild(document.createElement("div"));
  root = createRoot(host);
  act(() => root!.render(<Chips />));
  await act(async () => attachments.add([new File(["bytes"], "report.pdf")]));
  expect(host.querySelector("li.failed")).not.toBeNull();
  return [...host.querySelectorAll("li.failed button")].map((b) => b.textContent ?? "");
}

describe("a failed upload's chip", () => {
  it("offers to try again after a network failure or a server error", async () => {
    expect(await failedUpload(new ApiError(0, "network", "The server cannot be reached."))).toContain("Try again");
    reset();
    expect(await failedUpload(new ApiError(503, "unavailable", "retry shortly"))).toContain("Try again");
  });

  it("does not offer it for a file too large or over the quota, or a refusal", async () => {
    for (const e of [
      new ApiError(413, "payload_too_large", "The request body is too large."),
      new ApiError(413, "quota_exceeded", "Your file storage is full."),
      new ApiError(403, "forbidden", "You do not have permission to do this."),
    ]) {
      expect(await failedUpload(e)).toEqual(["×"]);
      reset();
    }
  });
});
