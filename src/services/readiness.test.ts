import pino from "pino";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../config.ts";
import { MemoryKeyValueStore } from "../kv/memory.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import { checkReadiness, isDegraded, type ReadinessCheck, roleReadiness } from "./readiness.ts";
import { HealthSignals } from "./readiness-signals.ts";

describe("checkReadiness", () => {
  it("a dependency that hangs reads as timed out, is aborted, and does not hold up the others", async () => {
    let aborted: unknown = null;
    const hanging = (signal: AbortSignal) =>
      new Promise<never>((_, reject) => {
        signal.addEventListener("abort", () => {
          aborted = signal.reason;
          // A check that ignores its signal is what readiness must survive: never settle.
          void reject;
        });
      });
    const result = await checkReadiness(
      { db: hanging, kv: async () => "PONG", storage: async () => undefined },
      50,
    );
    expect(result).toEqual({ db: "timed out after 50 ms", kv: "ok", storage: "ok" });
    expect(aborted).toBeInstanceOf(Error);
  });

  it("a failing dependency reports its error; an error without a message still says something", async () => {
    const result = await checkReadiness(
      {
        db: async () => {
          throw new Error("connect ECONNREFUSED 127.0.0.1:5432");
        },
        kv: () => Promise.reject(new Error("")),
        storage: () => Promise.reject("bucket gone"),
      },
      10_000,
    );
    expect(result.db).toBe("connect ECONNREFUSED 127.0.0.1:5432");
    expect(result.kv).not.toBe("ok");
    expect(result.kv).not.toBe("");
    expect(result.storage).toBe("bucket gone");
  });

  it("passes a degraded note through and maps any other answer to ok", async () => {
    const result = await checkReadiness(
      { db: async () => "degraded: breaker open, intents buffered", kv: async () => "PONG" },
      10_000,
    );
    expect(result).toEqual({ db: "degraded: breaker open, intents buffered", kv: "ok" });
    expect(isDegraded(result.db as string)).toBe(true);
    expect(isDegraded(result.kv as string)).toBe(false);
  });

  it("a check that answers after its deadline is still reported as timed out", async () => {
    let release: () => void = () => {};
    const late = () => new Promise<void>((resolve) => (release = resolve));
    const pending = checkReadiness({ db: late }, 20);
    expect(await pending).toEqual({ db: "timed out after 20 ms" });
    release();
  });
});

describe("roleReadiness: the AMQP event consumer", () => {
  const down = async () => {
    throw new Error("AMQP event queue not consumed: connect ECONNREFUSED 127.0.0.1:5672");
  };
  const probe = (role: "worker" | "all", eventQueue: ReadinessCheck) =>
    roleReadiness({
      config: loadConfig({ IMGUP_EVENTS_AMQP_URL: "amqp://guest:guest@127.0.0.1:5672" }, { role }),
      database: async () => undefined,
      kv: new MemoryKeyValueStore(),
      store: { kind: "local", ping: async () => undefined } as unknown as ObjectStore,
      signals: new HealthSignals(new MemoryKeyValueStore(), pino({ level: "silent" })),
      runLoop: null,
      eventQueue,
    })();

  it("a worker-only process is not ready while the consumer is down; 'all' only degrades", async () => {
    expect((await probe("worker", down)).eventQueue).toBe(
      "AMQP event queue not consumed: connect ECONNREFUSED 127.0.0.1:5672",
    );
    const all = await probe("all", down);
    expect(all.eventQueue).toBe(
      "degraded: AMQP event queue not consumed: connect ECONNREFUSED 127.0.0.1:5672",
    );
    expect(isDegraded(all.eventQueue as string)).toBe(true);
    expect((await probe("worker", async () => undefined)).eventQueue).toBe("ok");
  });
});
