import { describe, expect, it } from "vitest";
import { parseLsn } from "./replica-health.ts";
import { WalSamples } from "./replica-lag.ts";

describe("a replica's lag from WAL samples", () => {
  it("is 0 for a replica at the newest sample, however old its last commit (an idle primary)", () => {
    const s = new WalSamples(10_000);
    s.add(1000, 500n);
    s.add(2000, 500n);
    expect(s.lagMs(500n, 3_600_000, 2100)).toBe(0);
    expect(s.lagMs(600n, null, 2100)).toBe(0);
  });

  it("is the age of the newest sample it replayed while the primary writes on", () => {
    const s = new WalSamples(10_000);
    s.add(1000, 100n);
    s.add(2000, 200n);
    s.add(3000, 300n);
    expect(s.lagMs(250n, null, 3100)).toBe(1100);
    expect(s.lagMs(200n, null, 3100)).toBe(1100);
    expect(s.lagMs(150n, null, 3100)).toBe(2100);
  });

  it("takes the age of the last replayed commit when that bound is tighter", () => {
    const s = new WalSamples(10_000);
    s.add(1000, 100n);
    s.add(2000, 200n);
    expect(s.lagMs(150n, 40, 2100)).toBe(40);
    expect(s.lagMs(150n, 5000, 2100)).toBe(1100);
    // Clocks of two servers: a commit "in the future" is no negative lag.
    expect(s.lagMs(150n, -3, 2100)).toBe(0);
  });

  it("grows without bound while replay stands still (paused) and the primary moves", () => {
    const s = new WalSamples(1000);
    s.add(0, 100n);
    const lags: number[] = [];
    for (let t = 500; t <= 5000; t += 500) {
      s.add(t, 100n + BigInt(t));
      lags.push(s.lagMs(100n, null, t));
    }
    expect(lags).toEqual([...lags].sort((a, b) => a - b));
    expect(lags.at(-1)).toBeGreaterThanOrEqual(1000);
  });

  it("is infinite without a sample or a replay position", () => {
    const s = new WalSamples(1000);
    expect(s.lagMs(5n, null, 0)).toBe(Number.POSITIVE_INFINITY);
    s.add(0, 5n);
    expect(s.lagMs(null, null, 0)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("parseLsn", () => {
  it("reads PostgreSQL's X/Y positions in order", () => {
    expect(parseLsn("0/1F000000")).toBe(0x1f000000n);
    expect(parseLsn("1/0")).toBe(1n << 32n);
    expect((parseLsn("1/0") as bigint) > (parseLsn("0/FFFFFFFF") as bigint)).toBe(true);
    expect(parseLsn(null)).toBeNull();
    expect(parseLsn("nonsense")).toBeNull();
  });
});
