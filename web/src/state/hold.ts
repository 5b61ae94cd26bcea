// Loads from HTTP that events must not overtake. While a page or list is read over HTTP,
// events wait and are applied (in order) once every such load is done: a page read before
// an event cannot then undo it, and state read after an event is not changed by it twice
// (applying is idempotent against what HTTP returned: see `counted` in model.ts). Past a
// number of held events, or a time one load may hold them, what is held is applied and
// events flow again, so a load that hangs cannot stop the client or grow without bound.

export class EventHold<E> {
  private loads = 0;
  private held: E[] = [];
  /** Counts `clear`s: a release under way stops when the session it held for has ended. */
  private generation = 0;
  /** Counts releases forced by the bounds while a load was still running: what such a load
   * applies may be older than events already let through (the caller reads again). */
  overflows = 0;

  constructor(
    private readonly apply: (e: E) => void,
    private readonly max = 10_000,
    private readonly holdMs = 10_000,
  ) {}

  /** Runs `load`, holding events that arrive meanwhile. */
  async during<T>(load: () => Promise<T>): Promise<T> {
    this.loads++;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.loads--;
      if (this.loads === 0) this.release();
    };
    const timer = setTimeout(() => {
      this.overflows++;
      finish();
    }, this.holdMs);
    try {
      return await load();
    } finally {
      clearTimeout(timer);
      finish();
    }
  }

  /** An event: applied now, or after the loads under way. */
  event(e: E): void {
    if (this.loads === 0) {
      this.apply(e);
      return;
    }
    this.held.push(e);
    if (this.held.length >= this.max) {
      this.overflows++;
      this.release();
    }
  }

  /** Drops what is held (the session ended). */
  clear(): void {
    this.held = [];
    this.generation++;
  }

  private release(): void {
    const generation = this.generation;
    while (this.held.length) {
      const events = this.held;
      this.held = [];
      for (const e of events) {
        if (this.generation !== generation) return; // an event ended the session
        this.apply(e);
      }
    }
  }
}
