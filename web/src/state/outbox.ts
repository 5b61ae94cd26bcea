// Optimistic sends: a message shows at once as pending and is posted with a client key; a
// transient failure (offline, server restarting, overload) is retried with the same key, so
// the server stores it once however many attempts reach it.
import type { FileInfo } from "../types";
import type { Pending } from "./model";

export const MAX_ATTEMPTS = 8;

/** Delay before attempt `n` (1-based): 0.5 s doubling to 15 s. */
export function retryDelay(attempt: number): number {
  return Math.min(15_000, 500 * 2 ** Math.max(0, attempt - 1));
}

export function newPending(conversationId: string, body: string, threadRootId: string | null, now: number, files: FileInfo[] = []): Pending {
  return {
    key: crypto.randomUUID(),
    conversationId,
    threadRootId,
    body,
    files,
    createdAt: now,
    status: "sending",
    attempts: 0,
  };
}
