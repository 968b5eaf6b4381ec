import { BrokenCircuitError, TaskCancelledError } from "cockatiel";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { DatabaseBreaker, isDatabaseUnavailable } from "./breaker.ts";

const log = pino({ level: "silent" });
const refused = () =>
  Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });

describe("DatabaseBreaker", () => {
  it("passes results and query errors through without opening on a bad query", async () => {
    const breaker = new DatabaseBreaker({ failures: 1, halfOpenAfterMs: 60_000, timeoutMs: 60_000 }, log);
    await expect(breaker.execute(async () => 42)).resolves.toBe(42);
    const constraint = Object.assign(new Error("duplicate key"), { code: "23505" });
    await expect(breaker.execute(() => Promise.reject(constraint))).rejects.toBe(constraint);
    expect(breaker.state).toBe("closed");
  });

  it("fails a call that never settles with TaskCancelledError, which counts as the database being away", async () => {
    const states: string[] = [];
    const breaker = new DatabaseBreaker({ failures: 2, halfOpenAfterMs: 60_000, timeoutMs: 10 }, log, (s) =>
      states.push(s),
    );
    const hang = () => new Promise<never>(() => undefined);
    const err = await breaker.execute(hang).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskCancelledError);
    expect(isDatabaseUnavailable(err)).toBe(true);
    expect(breaker.state).toBe("closed");
    await expect(breaker.execute(hang)).rejects.toBeInstanceOf(TaskCancelledError);
    expect(breaker.state).toBe("open");
    expect(states).toEqual(["open"]);
  });

  it("once open, fails at once without calling the database", async () => {
    const breaker = new DatabaseBreaker({ failures: 1, halfOpenAfterMs: 60_000, timeoutMs: 60_000 }, log);
    await expect(breaker.execute(() => Promise.reject(refused()))).rejects.toThrow("ECONNREFUSED");
    let called = false;
    const err = await breaker
      .execute(async () => {
        called = true;
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokenCircuitError);
    expect(called).toBe(false);
  });
});
