import { describe, expect, it } from "vitest";
import { expireTyping } from "./store";

describe("typing notices", () => {
  it("run out: expired people go, and places left empty go, as new objects (so views update)", () => {
    const before = { c1: { ann: 100, bob: 200 }, "c1:t1": { ann: 50 } };
    const after = expireTyping(before, 150);
    expect(after).toEqual({ c1: { bob: 200 } });
    expect(after.c1).not.toBe(before.c1);
    expect(before.c1).toEqual({ ann: 100, bob: 200 }); // not changed in place
    // Where nothing ran out, the same object (its view need not render again).
    const calm = { c2: { dan: 900 } };
    expect(expireTyping(calm, 150).c2).toBe(calm.c2);
  });
});
