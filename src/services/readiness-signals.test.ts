import pino from "pino";
import { describe, expect, it, vi } from "vitest";
import { MemoryKeyValueStore } from "../kv/memory.ts";
import { checkReadiness } from "./readiness.ts";
import {
  HealthSignals,
  publishHeartbeat,
  runLoopCheck,
  UPLOAD_MARK_INTERVAL_MS,
} from "./readiness-signals.ts";

const log = pino({ level: "silent" });

function setup() {
  let t = 1_000_000;
  const clock = { now: () => t, advance: (ms: number) => (t += ms) };
  const kv = new MemoryKeyValueStore({ now: clock.now });
  const signals = new HealthSignals(kv, log, clock.now);
  // Fire-and-forget writes land on the in-process KV within a few microtask turns.
  const settle = () => new Promise((r) => setImmediate(r));
  return { clock, kv, signals, settle };
}

describe("HealthSignals", () => {
  it("worker heartbeat: none seen, fresh, then 'no worker heartbeat for N s' past the threshold", async () => {
    const { clock, signals } = setup();
    expect(await signals.workerHeartbeat(10_000)).toBe("degraded: no worker heartbeat seen");
    await signals.workerAlive(clock.now());
    expect(await signals.workerHeartbeat(10_000)).toBe("ok");
    clock.advance(10_000);
    expect(await signals.workerHeartbeat(10_000)).toBe("ok");
    clock.advance(2_000);
    expect(await signals.workerHeartbeat(10_000)).toBe("degraded: no worker heartbeat for 12 s");
  });

  it("storage events: ok while nothing is expected; degraded once an issued upload waited past the threshold; an event clears it", async () => {
    const { clock, signals, settle } = setup();
    expect(await signals.storageEvents(5_000)).toBe("ok");
    signals.uploadIssued();
    await settle();
    clock.advance(5_000);
    expect(await signals.storageEvents(5_000)).toBe("ok");
    clock.advance(1_000);
    // Later uploads do not move the first one's mark.
    signals.uploadIssued();
    await settle();
    expect(await signals.storageEvents(5_000)).toBe(
      "degraded: no storage event seen while uploads were issued (the first 6 s ago)",
    );
    signals.storageEventSeen();
    await settle();
    expect(await signals.storageEvents(5_000)).toBe("ok");
    clock.advance(60_000);
    signals.uploadIssued();
    await settle();
    clock.advance(7_000);
    expect(await signals.storageEvents(5_000)).toBe(
      "degraded: no storage event for 67 s while uploads were issued (the first 7 s ago)",
    );
  });

  it("uploadIssued: N calls within the interval make one KV write, and one more at its end with the first unwritten call's time", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const { clock, kv, signals, settle } = setup();
      const writes: string[] = [];
      const setIfAbsent = kv.setIfAbsent.bind(kv);
      kv.setIfAbsent = (key, value, ttl) => {
        writes.push(value);
        return setIfAbsent(key, value, ttl);
      };
      const first = clock.now();
      for (let i = 0; i < 50; i++) {
        signals.uploadIssued();
        clock.advance(10);
      }
      await settle();
      expect(writes).toEqual([String(first)]);
      // The interval ends: the calls inside it are recorded once, as of the first of them.
      clock.advance(UPLOAD_MARK_INTERVAL_MS - 500);
      vi.advanceTimersByTime(UPLOAD_MARK_INTERVAL_MS);
      await settle();
      expect(writes).toEqual([String(first), String(first + 10)]);
      // Quiet for longer than the interval: the next call writes at once, and nothing is left pending.
      clock.advance(5 * UPLOAD_MARK_INTERVAL_MS);
      signals.uploadIssued();
      vi.advanceTimersByTime(5 * UPLOAD_MARK_INTERVAL_MS);
      await settle();
      expect(writes).toHaveLength(3);
      expect(await kv.get("health:uploads-waiting-since")).toBe(String(first));
    } finally {
      vi.useRealTimers();
    }
  });

  it("uploadIssued: the last upload before events stop is recorded even inside the interval; an event forgets earlier ones", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const { clock, signals, settle } = setup();
      signals.uploadIssued();
      clock.advance(100);
      signals.storageEventSeen();
      await settle();
      // Issued inside the interval after the event cleared the mark: its write comes at the interval's end.
      clock.advance(100);
      const last = clock.now();
      signals.uploadIssued();
      await settle();
      clock.advance(UPLOAD_MARK_INTERVAL_MS);
      vi.advanceTimersByTime(UPLOAD_MARK_INTERVAL_MS);
      await settle();
      clock.advance(5_000);
      expect(await signals.storageEvents(5_000)).toBe(
        `degraded: no storage event for 6 s while uploads were issued (the first ${Math.round((clock.now() - last) / 1000)} s ago)`,
      );
      // Issued, then an event before the interval ends: nothing is left waiting.
      signals.storageEventSeen();
      await settle();
      signals.uploadIssued();
      signals.uploadIssued();
      signals.storageEventSeen();
      vi.advanceTimersByTime(UPLOAD_MARK_INTERVAL_MS);
      await settle();
      clock.advance(60_000);
      expect(await signals.storageEvents(5_000)).toBe("ok");
    } finally {
      vi.useRealTimers();
    }
  });

  it("a KV that fails reads as degraded, never as a failed check (the kv check reports the KV)", async () => {
    const { kv, signals } = setup();
    kv.get = () => Promise.reject(new Error("connection refused"));
    const result = await checkReadiness(
      { workers: () => signals.workerHeartbeat(1000), storageEvents: () => signals.storageEvents(1000) },
      1000,
    );
    expect(result).toEqual({
      workers: "degraded: worker heartbeat unknown (the KV did not answer)",
      storageEvents: "degraded: storage events unknown (the KV did not answer)",
    });
  });
});

describe("the worker's run loop", () => {
  it("runLoop fails /readyz once the loop has not ticked for the stall threshold", async () => {
    const { clock } = setup();
    const loop = { lastTickAt: clock.now() };
    const check = { runLoop: runLoopCheck(loop, 30_000, clock.now) };
    expect(await checkReadiness(check, 1000)).toEqual({ runLoop: "ok" });
    clock.advance(31_000);
    expect(await checkReadiness(check, 1000)).toEqual({ runLoop: "run loop has not ticked for 31 s" });
    loop.lastTickAt = clock.now();
    expect(await checkReadiness(check, 1000)).toEqual({ runLoop: "ok" });
  });

  it("publishes the loop's last tick every interval, and nothing for a stalled loop", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const { clock, kv, signals, settle } = setup();
    const loop = { lastTickAt: clock.now() };
    const beat = publishHeartbeat(loop, signals, { intervalMs: 1000, stallMs: 30_000, log, now: clock.now });
    try {
      await settle();
      expect(await kv.get("health:worker-heartbeat")).toBe(String(loop.lastTickAt));
      clock.advance(1000);
      loop.lastTickAt = clock.now();
      vi.advanceTimersByTime(1000);
      await settle();
      expect(await kv.get("health:worker-heartbeat")).toBe(String(loop.lastTickAt));
      // Stalled past 30 s: the beats go on but write nothing, so the API sees the heartbeat age.
      clock.advance(31_000);
      await kv.delete("health:worker-heartbeat");
      vi.advanceTimersByTime(3000);
      await settle();
      expect(await kv.get("health:worker-heartbeat")).toBeNull();
    } finally {
      beat.stop();
      vi.useRealTimers();
    }
  });
});
