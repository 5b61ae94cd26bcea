import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { EventHold } from "./hold";

/** A load the test settles by hand. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((ok, fail) => ((resolve = ok), (reject = fail)));
  return { promise, resolve, reject };
}

describe("EventHold", () => {
  let applied: number[];
  let hold: EventHold<number>;
  beforeEach(() => {
    vi.useFakeTimers();
    applied = [];
    hold = new EventHold((e) => applied.push(e), 5, 10_000);
  });
  afterEach(() => vi.useRealTimers());

  it("applies events at once when nothing loads, and after every load otherwise, in order", async () => {
    hold.event(1);
    const first = deferred<string>();
    const second = deferred<string>();
    const a = hold.during(() => first.promise);
    const b = hold.during(() => second.promise);
    hold.event(2);
    hold.event(3);
    first.resolve("a");
    expect(await a).toBe("a");
    expect(applied).toEqual([1]); // the second load still runs
    second.resolve("b");
    await b;
    expect(applied).toEqual([1, 2, 3]);
    hold.event(4);
    expect(applied).toEqual([1, 2, 3, 4]);
  });

  it("counts the releases its bounds forced while a load ran (its result may be older)", async () => {
    const slow = deferred<string>();
    const load = hold.during(() => slow.promise);
    hold.event(1);
    expect(hold.overflows).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(applied).toEqual([1]);
    expect(hold.overflows).toBe(1);
    slow.resolve("late");
    await load;
    const full = deferred<string>();
    const again = hold.during(() => full.promise);
    for (let e = 2; e <= 6; e++) hold.event(e);
    expect(hold.overflows).toBe(2);
    full.resolve("x");
    await again;
    // A load that finishes in time forces nothing.
    await hold.during(async () => hold.event(7));
    expect(hold.overflows).toBe(2);
    expect(applied).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("releases what it holds when a load fails", async () => {
    const load = deferred<void>();
    const running = hold.during(() => load.promise);
    hold.event(1);
    load.reject(new Error("network"));
    await expect(running).rejects.toThrow("network");
    expect(applied).toEqual([1]);
  });

  it("stops holding for a load that hangs, and for too many events, without losing or reordering any", async () => {
    const hung = deferred<void>();
    void hold.during(() => hung.promise);
    for (let i = 1; i <= 7; i++) hold.event(i);
    // Five held at most: they go, in order; the next ones wait again.
    expect(applied).toEqual([1, 2, 3, 4, 5]);
    vi.advanceTimersByTime(10_000);
    expect(applied).toEqual([1, 2, 3, 4, 5, 6, 7]);
    hold.event(8);
    expect(applied).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // The hung load settling later changes nothing more.
    hung.resolve();
    await vi.runAllTimersAsync();
    hold.event(9);
    expect(applied).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("stops a release when an event in it ends the session", async () => {
    const ending = new EventHold<number>((e) => {
      applied.push(e);
      if (e === 2) ending.clear(); // a held session.revoked, say
    });
    const load = deferred<void>();
    const running = ending.during(() => load.promise);
    for (const e of [1, 2, 3]) ending.event(e);
    load.resolve();
    await running;
    expect(applied).toEqual([1, 2]);
  });

  it("forgets what it holds when the session ends", async () => {
    const load = deferred<void>();
    const running = hold.during(() => load.promise);
    hold.event(1);
    hold.clear();
    load.resolve();
    await running;
    expect(applied).toEqual([]);
  });
});
