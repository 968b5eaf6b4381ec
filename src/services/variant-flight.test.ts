/**
 * The cluster-wide single-flight with the in-process KV on a test clock and a Map as the store:
 * several "instances" are several VariantFlight objects sharing both, as API processes share Redis
 * and the bucket. Claims lapse only when the test moves the clock.
 */
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type AppError, ERRORS, isAppError } from "../domain/errors.ts";
import type { KeyValueStore } from "../kv/kv.ts";
import { MemoryKeyValueStore } from "../kv/memory.ts";
import { type ClaimOutcome, claimKey, VariantFlight } from "./variant-flight.ts";

const KEY = "variants/abc/w_64.jpg";
const TTL = 1_000;

/** A promise with its resolve and reject. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A KV as one process sees it: `kill()` makes its process silent (no renewals, no releases). */
function processView(kv: KeyValueStore) {
  let dead = false;
  const polled = deferred();
  const renewed: Array<() => void> = [];
  const view: KeyValueStore = Object.create(kv);
  view.get = (k) => {
    polled.resolve();
    return kv.get(k);
  };
  view.extendIfEquals = async (k, v, ttl) => {
    if (dead) return false;
    const held = await kv.extendIfEquals(k, v, ttl);
    for (const r of renewed.splice(0)) r();
    return held;
  };
  view.deleteIfEquals = async (k, v) => (dead ? false : kv.deleteIfEquals(k, v));
  return {
    kv: view,
    kill: () => {
      dead = true;
    },
    /** Resolves once this process has polled the claim (it is waiting). */
    polled: polled.promise,
    /** Resolves after this process's next completed renewal. */
    nextRenewal: () => new Promise<void>((r) => renewed.push(r)),
  };
}

describe("VariantFlight", () => {
  let now: number;
  let kv: MemoryKeyValueStore;
  let stored: Map<string, Buffer>;
  let failures: Map<string, AppError>;
  let outcomes: ClaimOutcome[];
  let works: number;

  beforeEach(() => {
    now = 1_000_000;
    kv = new MemoryKeyValueStore({ now: () => now });
    stored = new Map();
    failures = new Map();
    outcomes = [];
    works = 0;
  });
  afterEach(() => kv.close());

  function instance(view: KeyValueStore = kv, opts: { maxWaitMs?: number; heartbeatMs?: number } = {}) {
    return new VariantFlight(
      {
        kv: view,
        stored: async (k) => stored.get(k) ?? null,
        failure: async (k) => failures.get(k) ?? null,
        onOutcome: (o) => outcomes.push(o),
        log: pino({ level: "silent" }),
      },
      {
        claimTtlMs: TTL,
        heartbeatMs: opts.heartbeatMs ?? 60_000,
        maxWaitMs: opts.maxWaitMs ?? 1e9,
        pollMinMs: 1,
        pollMaxMs: 4,
        now: () => now,
      },
    );
  }

  /** Work that counts itself, runs once released, and stores its bytes like transformAndStore. */
  function gatedWork(bytes: Buffer) {
    const gate = deferred();
    const entered = deferred();
    const work = async () => {
      works++;
      entered.resolve();
      await gate.promise;
      stored.set(KEY, bytes);
      return bytes;
    };
    return { work, gate, entered: entered.promise };
  }

  it("two instances asking at once: one does the work, the other gets its stored result", async () => {
    const a = gatedWork(Buffer.from("made by a"));
    const b = gatedWork(Buffer.from("made by b"));
    const bView = processView(kv);
    const first = instance().run(KEY, a.work);
    await a.entered;
    const second = instance(bView.kv).run(KEY, b.work);
    await bView.polled;
    a.gate.resolve();
    expect((await first).toString()).toBe("made by a");
    expect((await second).toString()).toBe("made by a");
    expect(works).toBe(1);
    expect(outcomes.sort()).toEqual(["taken", "waited"]);
    // Released on completion: a later miss (the variant was deleted) may claim again at once.
    expect(await kv.get(claimKey(KEY))).toBeNull();
  });

  it("a claimant that dies (stops renewing) is taken over by a waiter once its claim lapses", async () => {
    const aView = processView(kv);
    const bView = processView(kv);
    const a = gatedWork(Buffer.from("never"));
    const b = gatedWork(Buffer.from("made by b"));
    void instance(aView.kv).run(KEY, a.work);
    await a.entered;
    const waiter = instance(bView.kv).run(KEY, b.work);
    await bView.polled;
    aView.kill();
    now += TTL + 1;
    b.gate.resolve();
    expect((await waiter).toString()).toBe("made by b");
    expect(works).toBe(2);
    expect(outcomes).toEqual(["taken", "took_over"]);
  });

  it("a living claimant's heartbeat keeps its claim past the TTL", async () => {
    const aView = processView(kv);
    const a = gatedWork(Buffer.from("made by a"));
    const first = instance(aView.kv, { heartbeatMs: 5 }).run(KEY, a.work);
    await a.entered;
    const token = await kv.get(claimKey(KEY));
    now += TTL - 100;
    await aView.nextRenewal();
    now += TTL - 100;
    expect(await kv.get(claimKey(KEY))).toBe(token);
    a.gate.resolve();
    await first;
    expect(await kv.get(claimKey(KEY))).toBeNull();
  });

  it("a remembered failure ends every waiter with that error", async () => {
    const bView = processView(kv);
    const gate = deferred();
    const entered = deferred();
    const failing = instance().run(KEY, async () => {
      works++;
      entered.resolve();
      await gate.promise;
      const err = ERRORS.unprocessableImage("out of time", { extra: { reason: "timeout" } });
      failures.set(KEY, err);
      throw err;
    });
    await entered.promise;
    const waiter = instance(bView.kv).run(KEY, async () => {
      works++;
      return Buffer.from("should not run");
    });
    await bView.polled;
    gate.resolve();
    const [a, b] = await Promise.allSettled([failing, waiter]);
    for (const r of [a, b]) {
      expect(r.status).toBe("rejected");
      const err = (r as PromiseRejectedResult).reason;
      expect(isAppError(err) && `${err.code} ${err.extra.reason}`).toBe("unprocessable_image timeout");
    }
    expect(works).toBe(1);
    expect(outcomes.sort()).toEqual(["failed", "taken"]);
  });

  it("a claimant that fails without a remembered failure hands the work to a waiter", async () => {
    const bView = processView(kv);
    const gate = deferred();
    const entered = deferred();
    const failing = instance().run(KEY, async () => {
      entered.resolve();
      await gate.promise;
      throw ERRORS.unavailable("this instance's queue is full");
    });
    await entered.promise;
    const waiter = instance(bView.kv).run(KEY, async () => Buffer.from("made by b"));
    await bView.polled;
    gate.resolve();
    await expect(failing).rejects.toThrow("queue is full");
    expect((await waiter).toString()).toBe("made by b");
    expect(outcomes).toEqual(["taken", "took_over"]);
  });

  it("a waiter gives up after maxWaitMs with a 503 and Retry-After", async () => {
    const bView = processView(kv);
    const a = gatedWork(Buffer.from("slow"));
    const first = instance().run(KEY, a.work);
    await a.entered;
    const waiter = instance(bView.kv, { maxWaitMs: 5_000 }).run(KEY, async () => Buffer.from("no"));
    await bView.polled;
    now += 5_000;
    const err = await waiter.catch((e) => e);
    expect(isAppError(err) && [err.status, err.headers["Retry-After"]]).toEqual([503, "1"]);
    expect(outcomes).toEqual(["taken", "timed_out"]);
    a.gate.resolve();
    await first;
  });

  it("works uncoordinated when the KV does not answer", async () => {
    const broken: KeyValueStore = Object.create(kv);
    broken.setIfAbsent = async () => {
      throw new Error("ECONNREFUSED");
    };
    const got = await instance(broken).run(KEY, async () => Buffer.from("alone"));
    expect(got.toString()).toBe("alone");
    expect(outcomes).toEqual(["uncoordinated"]);
  });
});
