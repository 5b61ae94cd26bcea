import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { PRESENCE_MAX, PresenceInterest } from "./presence";

describe("PresenceInterest", () => {
  let sent: string[][];
  let forgotten: string[][];
  let online: boolean;
  let p: PresenceInterest;

  beforeEach(() => {
    vi.useFakeTimers();
    sent = [];
    forgotten = [];
    online = true;
    p = new PresenceInterest(
      (ids) => {
        if (online) sent.push(ids);
        return online;
      },
      (ids) => forgotten.push(ids),
      1000,
    );
  });
  afterEach(() => vi.useRealTimers());

  it("follows the people on screen, sending each change at most once a second", () => {
    p.connected();
    expect(sent).toEqual([[]]);
    p.want("a");
    p.want("b");
    p.want("a"); // a second avatar of a
    expect(sent.length).toBe(1);
    vi.advanceTimersByTime(999);
    expect(sent.length).toBe(1);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual([[], ["a", "b"]]);
    // One of a's two avatars goes: nothing changes.
    p.unwant("a");
    vi.advanceTimersByTime(1000);
    expect(sent.length).toBe(2);
    // A remount (gone and back before the pause ends) sends nothing either.
    p.unwant("b");
    p.want("b");
    vi.advanceTimersByTime(1000);
    expect(sent.length).toBe(2);
    // b's last avatar goes: b is dropped, and its last status forgotten.
    p.unwant("b");
    vi.advanceTimersByTime(1000);
    expect(sent[2]).toEqual(["a"]);
    expect(forgotten).toEqual([["b"]]);
  });

  it("sends at once (after the render) when nothing was sent for a while", () => {
    p.connected();
    vi.advanceTimersByTime(5000);
    p.want("a");
    p.want("b");
    expect(sent.length).toBe(1);
    vi.advanceTimersByTime(0);
    expect(sent).toEqual([[], ["a", "b"]]);
  });

  it("sends the whole set again on every new connection, and waits for one", () => {
    online = false;
    p.want("a");
    vi.advanceTimersByTime(1000);
    expect(sent).toEqual([]);
    online = true;
    p.connected();
    expect(sent).toEqual([["a"]]);
    // Reconnected: the server follows nobody for the new connection.
    p.connected();
    expect(sent).toEqual([["a"], ["a"]]);
    expect(forgotten).toEqual([]);
  });

  it("forgets, on a new connection, who left the screen while it was down", () => {
    p.want("a");
    p.want("b");
    p.connected();
    online = false;
    p.unwant("b");
    vi.advanceTimersByTime(1000);
    expect(forgotten).toEqual([]);
    online = true;
    p.connected();
    expect(sent.at(-1)).toEqual(["a"]);
    expect(forgotten).toEqual([["b"]]);
    expect(p.follows("a")).toBe(true);
    expect(p.follows("b")).toBe(false);
  });

  it("sends the set again after a refusal, once the pause is over", () => {
    p.want("a");
    p.connected();
    expect(sent).toEqual([["a"]]);
    p.retryLater(2000);
    expect(p.follows("a")).toBe(true); // statuses still count while waiting
    vi.advanceTimersByTime(1999);
    expect(sent.length).toBe(1);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual([["a"], ["a"]]);
    expect(forgotten).toEqual([]);
  });

  it("fits the most people one may follow in one frame the server accepts (32 KiB)", () => {
    const ids = Array.from({ length: PRESENCE_MAX }, (_, i) => `01a1fccf-0000-7000-8000-${i.toString(16).padStart(12, "0")}`);
    expect(JSON.stringify({ op: "presence_subscribe", user_ids: ids }).length).toBeLessThanOrEqual(32 * 1024);
  });

  it("stays within the server's limit, the longest shown first", () => {
    for (let i = 0; i < PRESENCE_MAX + 20; i++) p.want(`u${i}`);
    p.connected();
    expect(sent[0].length).toBe(PRESENCE_MAX);
    expect(sent[0][0]).toBe("u0");
    expect(sent[0]).not.toContain(`u${PRESENCE_MAX}`);
    // Someone leaves the screen: the next in line takes the place.
    p.unwant("u0");
    vi.advanceTimersByTime(1000);
    expect(sent[1]).toContain(`u${PRESENCE_MAX}`);
    expect(forgotten).toEqual([["u0"]]);
  });
});
