// The composers' attachments, per place (a conversation, or a thread of it), outside React:
// a composer that goes away (another conversation opened) finds them again when it comes
// back, their uploads still running meanwhile.
import { ApiError } from "../api";
import type { Attachment } from "../components/Files";

const byPlace = new Map<string, Attachment[]>();
const listeners = new Set<() => void>();
export const NO_ATTACHMENTS: Attachment[] = [];

export function attachmentsAt(place: string): Attachment[] {
  return byPlace.get(place) ?? NO_ATTACHMENTS;
}

export function updateAttachments(place: string, f: (list: Attachment[]) => Attachment[]): void {
  const next = f(attachmentsAt(place));
  if (next.length) byPlace.set(place, next);
  else byPlace.delete(place);
  listeners.forEach((l) => l());
}

export function subscribeAttachments(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

/** Signing out: running uploads stop, and nothing is left for the next person. */
export function forgetAttachments(): void {
  for (const list of byPlace.values()) for (const a of list) a.handle?.cancel();
  byPlace.clear();
  listeners.forEach((l) => l());
}

/**
 * Whether a failed upload may succeed if tried again as it is: the network failed, the
 * request timed out, or the server was overloaded, restarting or failing (5xx, `unavailable`,
 * `rate_limited`). Not a file too large or over the quota (413: `payload_too_large`,
 * `quota_exceeded`), nor a refusal (`forbidden`, `not_found`, `invalid_input`, …): the
 * same file would be refused again.
 */
export function uploadRetryable(e: unknown): boolean {
  if (!(e instanceof ApiError)) return false;
  if (e.code === "cancelled") return false;
  if (e.code === "network" || e.code === "timeout" || e.code === "rate_limited" || e.code === "unavailable") return true;
  return e.status === 0 || e.status === 408 || e.status === 429 || e.status >= 500;
}
