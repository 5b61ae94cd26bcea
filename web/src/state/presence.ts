// Whose presence this client follows: the people whose avatars are shown now (mounted: the
// sidebar's DMs, the open conversation's senders and members, the directory page), counted
// per avatar. The server follows at most PRESENCE_MAX people per connection, replaces the
// whole set with each `presence_subscribe` and answers it with the current status of each
// person it adds; it takes about one subscription a second per connection. So the set is
// sent again only when it changed, at most once per `delayMs` (1 s), and at once (after the
// render that changed it) when the last one is older than that, so a conversation just
// opened shows presence without waiting. A company of thousands thus shows presence
// wherever a face is shown, without following everyone.
import type { Id } from "../types";

/** The server's limit on people followed per connection (docs/realtime.md). */
export const PRESENCE_MAX = 500;

export class PresenceInterest {
  private readonly counts = new Map<Id, number>();
  /** The set the server has, or null when it has none (not connected yet, or reconnected). */
  private sent: Set<Id> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** When a subscription was last sent (ms). */
  private lastSent = -Infinity;
  /** The last subscription may have been refused: send the set even if it did not change. */
  private resend = false;

  /**
   * @param subscribe sends a subscription; false when it could not (no live connection).
   * @param forget called with people no longer followed: their last known status goes stale.
   */
  constructor(
    private readonly subscribe: (ids: Id[]) => boolean,
    private readonly forget: (ids: Id[]) => void,
    private readonly delayMs = 1000,
  ) {}

  /** An avatar of `id` appeared. */
  want(id: Id): void {
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
    this.schedule();
  }

  /** An avatar of `id` went away. */
  unwant(id: Id): void {
    const n = this.counts.get(id) ?? 0;
    if (n <= 1) this.counts.delete(id);
    else this.counts.set(id, n - 1);
    this.schedule();
  }

  /** Who should be followed: the longest-shown first, at most PRESENCE_MAX. */
  private wanted(): Id[] {
    return Array.from(this.counts.keys()).slice(0, PRESENCE_MAX);
  }

  /** A new connection is ready: the server follows nobody for it yet. */
  connected(): void {
    const before = this.sent;
    this.sent = null;
    this.resend = false;
    if (before) {
      // Who left the screen while the connection was down keeps no stale status.
      const wanted = new Set(this.wanted());
      const gone = Array.from(before).filter((id) => !wanted.has(id));
      if (gone.length) this.forget(gone);
    }
    this.flush();
  }

  /** Whether the server was last asked to follow `id` (statuses of others are stale). */
  follows(id: Id): boolean {
    return this.sent?.has(id) ?? false;
  }

  /** Sends the wanted set if the server's differs. */
  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const ids = this.wanted();
    const sent = this.sent;
    if (!this.resend && sent && sent.size === ids.length && ids.every((id) => sent.has(id))) return;
    if (!this.subscribe(ids)) return;
    this.resend = false;
    this.lastSent = Date.now();
    const now = new Set(ids);
    if (sent) {
      const dropped = Array.from(sent).filter((id) => !now.has(id));
      if (dropped.length) this.forget(dropped);
    }
    this.sent = now;
  }

  /** The server refused a frame that may have been the last subscription: send it again
   * after a pause (it answers only the people a subscription adds). */
  retryLater(pauseMs = 2000): void {
    // The set is kept (statuses of people in it still count meanwhile), only sent again.
    this.resend = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), pauseMs);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.sent = null;
    this.resend = false;
  }

  private schedule(): void {
    if (this.timer) return;
    const wait = Math.max(0, this.lastSent + this.delayMs - Date.now());
    this.timer = setTimeout(() => this.flush(), wait);
  }
}
