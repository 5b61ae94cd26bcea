import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Gateway, READY_TIMEOUT_MS, type ConnectionState } from "./realtime";

/** A stand-in for the browser's WebSocket: the test opens, answers and closes it. */
class FakeSocket {
  static all: FakeSocket[] = [];
  static readonly OPEN = 1;
  readyState = 0;
  sent: string[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: { code: number }) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(data);
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  ready() {
    this.onmessage?.({ data: JSON.stringify({ op: "ready", protocol: 1, user_id: "u", session_id: "s", head: 1, resumed: false, heartbeat_ms: 25000 }) });
  }
  closeWith(code: number) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}

describe("Gateway", () => {
  let states: ConnectionState[];
  let gateway: Gateway;

  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.all = [];
    vi.stubGlobal("WebSocket", FakeSocket);
    states = [];
    gateway = new Gateway(
      { onReady: () => {}, onFrame: () => {}, onState: (s) => states.push(s), onUnauthenticated: () => {} },
      () => null,
    );
    gateway.start();
  });
  afterEach(() => {
    gateway.stop();
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("gives up on a connection that never says ready, and tries again", () => {
    const ws = FakeSocket.all[0];
    ws.open();
    vi.advanceTimersByTime(READY_TIMEOUT_MS - 1);
    expect(FakeSocket.all.length).toBe(1);
    vi.advanceTimersByTime(1);
    expect(ws.readyState).toBe(3);
    vi.advanceTimersByTime(1000);
    expect(FakeSocket.all.length).toBe(2);
    // One that does is kept.
    FakeSocket.all[1].open();
    FakeSocket.all[1].ready();
    vi.advanceTimersByTime(READY_TIMEOUT_MS * 2);
    expect(FakeSocket.all.length).toBe(2);
  });

  it("does not hammer a server that refuses the client's hello as broken", () => {
    FakeSocket.all[0].open();
    FakeSocket.all[0].closeWith(4400);
    vi.advanceTimersByTime(30_000);
    expect(FakeSocket.all.length).toBe(1);
    vi.advanceTimersByTime(30_000);
    expect(FakeSocket.all.length).toBe(2);
  });

  it("says hello, and sends frames that need a session only after ready", () => {
    const ws = FakeSocket.all[0];
    ws.open();
    expect(ws.sent).toEqual([JSON.stringify({ op: "hello" })]);
    expect(gateway.sendLive({ op: "active" })).toBe(false);
    ws.ready();
    expect(gateway.sendLive({ op: "active" })).toBe(true);
    expect(states.at(-1)).toBe("online");
  });

  it("gives up a connection that hears nothing (not even its pongs) and reconnects", () => {
    const ws = FakeSocket.all[0];
    ws.open();
    ws.ready();
    // Answered pings keep it: 25 s apart, each pong heard.
    for (let i = 0; i < 4; i++) {
      vi.advanceTimersByTime(25_000);
      expect(ws.sent.at(-1)).toBe(JSON.stringify({ op: "ping" }));
      ws.onmessage?.({ data: JSON.stringify({ op: "pong" }) });
    }
    expect(FakeSocket.all.length).toBe(1);
    // Then silence: after two intervals (and a margin for a hidden tab's throttled timers) it
    // is dead, without waiting for the browser to notice.
    vi.advanceTimersByTime(75_000);
    expect(ws.readyState).toBe(1);
    vi.advanceTimersByTime(25_000);
    expect(ws.readyState).toBe(3);
    expect(states.at(-1)).toBe("offline");
    vi.advanceTimersByTime(200);
    expect(FakeSocket.all.length).toBe(2);
    // Its late close event changes nothing.
    ws.closeWith(1006);
    vi.advanceTimersByTime(10_000);
    expect(FakeSocket.all.length).toBe(2);
  });

  it("waits a few seconds after connecting too often (4030)", () => {
    FakeSocket.all[0].open();
    FakeSocket.all[0].closeWith(4030);
    vi.advanceTimersByTime(2_900);
    expect(FakeSocket.all.length).toBe(1);
    vi.advanceTimersByTime(2_200);
    expect(FakeSocket.all.length).toBe(2);
  });

  it("waits as long as the server says after connecting too often, and no longer than that next time", () => {
    const ws = FakeSocket.all[0];
    ws.open();
    ws.onmessage?.({ data: JSON.stringify({ op: "error", code: "rate_limited", message: "wait 7 s", retry_after_secs: 7 }) });
    ws.closeWith(4030);
    vi.advanceTimersByTime(6_900);
    expect(FakeSocket.all.length).toBe(1);
    vi.advanceTimersByTime(2_200);
    expect(FakeSocket.all.length).toBe(2);
    // The next refusal without a figure waits the usual few seconds, not the 7 s said before.
    FakeSocket.all[1].open();
    FakeSocket.all[1].closeWith(4030);
    vi.advanceTimersByTime(5_100);
    expect(FakeSocket.all.length).toBe(3);
  });

  it("reconnects, and does not sign out, when the server heard no hello in time (4009)", () => {
    let signedOut = false;
    gateway.stop();
    gateway = new Gateway(
      { onReady: () => {}, onFrame: () => {}, onState: () => {}, onUnauthenticated: () => (signedOut = true) },
      () => null,
    );
    gateway.start();
    const ws = FakeSocket.all[FakeSocket.all.length - 1];
    ws.open();
    ws.closeWith(4009);
    vi.advanceTimersByTime(1_000);
    expect(signedOut).toBe(false);
    expect(FakeSocket.all[FakeSocket.all.length - 1]).not.toBe(ws);
  });

  it("waits 30 s after being refused for too many connections, and says why", () => {
    const ws = FakeSocket.all[0];
    ws.open();
    ws.closeWith(4029);
    expect(states.at(-1)).toBe("crowded");
    vi.advanceTimersByTime(29_000);
    expect(FakeSocket.all.length).toBe(1);
    vi.advanceTimersByTime(1_000);
    expect(FakeSocket.all.length).toBe(2);
  });

  it("spreads the return of a node's clients when it goes away (1001)", () => {
    const waits = new Set<number>();
    for (const r of [0, 0.5, 0.999]) {
      vi.spyOn(Math, "random").mockReturnValue(r);
      const ws = FakeSocket.all.at(-1)!;
      ws.open();
      ws.ready();
      vi.advanceTimersByTime(11_000);
      const before = FakeSocket.all.length;
      ws.closeWith(1001);
      let waited = 0;
      while (FakeSocket.all.length === before) {
        vi.advanceTimersByTime(10);
        waited += 10;
      }
      waits.add(waited);
      vi.restoreAllMocks();
    }
    expect(Math.min(...waits)).toBeLessThanOrEqual(210);
    expect(Math.max(...waits)).toBeGreaterThanOrEqual(1190);
  });

  it("backs off when the server keeps closing soon after ready, and not after a long connection", () => {
    const reconnectAfter = () => {
      const before = FakeSocket.all.length;
      let waited = 0;
      while (FakeSocket.all.length === before && waited < 60_000) {
        vi.advanceTimersByTime(50);
        waited += 50;
      }
      return waited;
    };
    const cycle = (lastsMs: number) => {
      const ws = FakeSocket.all.at(-1)!;
      ws.open();
      ws.ready();
      vi.advanceTimersByTime(lastsMs);
      ws.closeWith(1011);
      return reconnectAfter();
    };
    expect(cycle(100)).toBeLessThanOrEqual(250);
    const waits = [cycle(100), cycle(100), cycle(100)];
    expect(waits[2]).toBeGreaterThan(1_000);
    // A connection that lasted starts the backoff over.
    expect(cycle(11_000)).toBeLessThanOrEqual(250);
  });
});
