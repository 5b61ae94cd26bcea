// The realtime connection (docs/realtime.md): hello with the last applied position, then
// events; reconnects by itself with backoff and resumes where it left off.
import type { ClientMessage, ServerFrame } from "./types";

/** `crowded`: refused because this person holds the most connections allowed (close 4029). */
export type ConnectionState = "connecting" | "online" | "offline" | "crowded";

export interface GatewayHandlers {
  /** `ready`: `resumed` false means the client must reload its state over HTTP. */
  onReady(frame: Extract<ServerFrame, { op: "ready" }>): void;
  onFrame(frame: ServerFrame): void;
  onState(state: ConnectionState): void;
  /** The server said the session is over (close 4001/4003). */
  onUnauthenticated(): void;
}

/** How long a connection may take to say `ready` before it is given up and tried again. */
export const READY_TIMEOUT_MS = 45_000;

/** Close codes that say the client broke the protocol (docs/realtime.md). */
const PROTOCOL_ERRORS = [1002, 1007, 1009, 4400];

export class Gateway {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private pinger: ReturnType<typeof setInterval> | null = null;
  private stopped = false;
  /** The current connection got `ready`. */
  private live = false;
  /** When it did: the backoff starts over only after a connection that lasted. */
  private readyAt = 0;
  /** When the current connection last heard anything from the server. */
  private heardAt = 0;
  /** Seconds the server said to wait before connecting again (its `rate_limited` frame). */
  private waitSecs: number | null = null;
  /** Gives up on a connection that has not said `ready` in time. */
  private readyTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly handlers: GatewayHandlers,
    private readonly resumeFrom: () => number | null,
  ) {}

  start(): void {
    this.stopped = false;
    this.connect();
    window.addEventListener("online", this.reconnectNow);
  }

  stop(): void {
    this.stopped = true;
    window.removeEventListener("online", this.reconnectNow);
    if (this.timer) clearTimeout(this.timer);
    if (this.pinger) clearInterval(this.pinger);
    if (this.readyTimer) clearTimeout(this.readyTimer);
    this.ws?.close(1000);
    this.ws = null;
  }

  send(frame: ClientMessage): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  /** Sends a frame that needs a session (after `ready`); false when there is none now. */
  sendLive(frame: ClientMessage): boolean {
    if (!this.live || this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Drops the current connection and reconnects at once (e.g. the network came back). */
  reconnectNow = (): void => {
    if (this.stopped) return;
    this.attempt = 0;
    if (this.timer) clearTimeout(this.timer);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) return;
    this.ws?.close();
    this.connect();
  };

  private connect(): void {
    if (this.stopped) return;
    this.handlers.onState("connecting");
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/ws`);
    this.ws = ws;
    this.live = false;
    // A connection that opens (or hangs opening) but never says `ready` is given up: the
    // server answers `hello` at once, with the catch-up.
    if (this.readyTimer) clearTimeout(this.readyTimer);
    this.readyTimer = setTimeout(() => {
      if (this.ws !== ws || this.live) return;
      ws.close();
      this.ended(ws, 1006);
    }, READY_TIMEOUT_MS);
    ws.onopen = () => {
      const from = this.resumeFrom();
      ws.send(JSON.stringify(from ? { op: "hello", resume_from: from } : { op: "hello" }));
    };
    ws.onmessage = (e) => {
      this.heardAt = Date.now();
      let frame: ServerFrame;
      try {
        frame = JSON.parse(e.data as string);
      } catch {
        return;
      }
      if (frame.op === "error" && frame.retry_after_secs != null) this.waitSecs = frame.retry_after_secs;
      if (frame.op === "ready") {
        this.live = true;
        if (this.readyTimer) clearTimeout(this.readyTimer);
        this.readyAt = Date.now();
        this.handlers.onState("online");
        if (this.pinger) clearInterval(this.pinger);
        // Client pings too, and the server answers each: a connection that hears nothing for
        // two intervals (and a margin over the minute a hidden tab's timers may wait) is dead
        // (a laptop that slept, a network that changed without telling the browser), and the
        // browser would otherwise keep it "open" for many minutes.
        const every = Math.max(5000, frame.heartbeat_ms);
        this.heardAt = Date.now();
        this.pinger = setInterval(() => {
          if (this.ws !== ws) return;
          if (Date.now() - this.heardAt > 2 * every + 45_000) {
            ws.close();
            this.ended(ws, 1006);
            return;
          }
          this.send({ op: "ping" });
        }, every);
        this.handlers.onReady(frame);
      } else {
        this.handlers.onFrame(frame);
      }
    };
    ws.onclose = (e) => this.ended(ws, e.code);
  }

  /** The connection `ws` ended with `code` (or was given up as dead): reconnect as it says. */
  private ended(ws: WebSocket, code: number): void {
    if (this.ws !== ws) return;
    this.ws = null;
    this.live = false;
    if (this.pinger) clearInterval(this.pinger);
    if (this.stopped) return;
    if (code === 4001 || code === 4003) {
      this.handlers.onState("offline");
      this.handlers.onUnauthenticated();
      return;
    }
    if (code === 4029) {
      // Too many tabs and devices: retrying soon would be refused again.
      this.handlers.onState("crowded");
      this.readyAt = 0;
      this.timer = setTimeout(() => this.connect(), 30_000);
      return;
    }
    this.handlers.onState("offline");
    const waitSecs = this.waitSecs;
    this.waitSecs = null;
    if (code === 4030) {
      // Connecting too often: wait as long as the server said (a few seconds if it did not),
      // spread over two more so that a browser's tabs do not come back together.
      this.readyAt = 0;
      const wait = Math.min(60, Math.max(1, waitSecs ?? 3)) * 1000;
      this.timer = setTimeout(() => this.connect(), wait + Math.random() * 2000);
      return;
    }
    const hadReady = this.readyAt > 0;
    // A connection the server keeps closing soon after `ready` backs off like a failed one.
    if (this.readyAt && Date.now() - this.readyAt > 10_000) this.attempt = 0;
    this.readyAt = 0;
    this.attempt++;
    const delay = Math.min(10_000, 300 * 2 ** Math.min(this.attempt - 1, 6)) * (0.75 + Math.random() * 0.5);
    // A node going away (1001) closes all its clients at once: spread their return over a
    // second, so they do not all land on the other nodes (or the restarted one) together.
    const first = code === 1001 ? 200 + Math.random() * 1000 : 200;
    if (PROTOCOL_ERRORS.includes(code) && !hadReady) {
      // "Fix the client" before the session even started (its hello refused): a bug here,
      // which trying again at once will not cure; try now and then (a newer version of the
      // page may be loaded meanwhile) instead of hammering. Later (frames refused while the
      // server could not check them, say) the usual backoff applies.
      this.timer = setTimeout(() => this.connect(), 60_000);
      return;
    }
    this.timer = setTimeout(() => this.connect(), this.attempt === 1 ? first : delay);
  }
}
