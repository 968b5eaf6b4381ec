import pino from "pino";
import { describe, expect, it } from "vitest";
import { uploadKey } from "../domain/keys.ts";
import { MemoryKeyValueStore } from "../kv/memory.ts";
import type { ObjectHead, ObjectStore } from "../storage/object-store.ts";
import { PipelineCheck } from "./pipeline-check.ts";

const NOW = Date.parse("2030-01-01T12:00:00Z");
const id = (n: number) => `0190f0c4-7b1e-7c3a-8f00-${String(n).padStart(12, "0")}`;

/** Pending rows without a job, and the upload objects' ages in seconds (absent: not uploaded). */
function checkOf(ages: Record<number, number | null>, kv = new MemoryKeyValueStore({ now: () => NOW })) {
  const rows = Object.keys(ages).map((n) => ({ id: id(Number(n)), createdAt: new Date(NOW - 600_000) }));
  const heads = new Map(
    Object.entries(ages).flatMap(([n, age]) =>
      age === null
        ? []
        : [[uploadKey(id(Number(n))), { lastModified: new Date(NOW - age * 1000) } as ObjectHead]],
    ),
  );
  const store = { head: async (key: string) => heads.get(key) ?? null } as unknown as ObjectStore;
  const check = new PipelineCheck({
    repo: { pendingWithoutJob: async () => rows },
    store,
    kv,
    logger: pino({ level: "silent" }),
    stallMs: 120_000,
    resultTtlMs: 180_000,
    now: () => NOW,
  });
  return { check, kv };
}

describe("PipelineCheck", () => {
  it("flags only uploads whose object is older than the stall threshold, with the oldest age", async () => {
    const { check } = checkOf({ 1: 300, 2: 60, 3: null, 4: 121 });
    expect(await check.run()).toEqual({
      checked: 4,
      pendingWithObject: 2,
      oldestAgeSeconds: 300,
      samples: [id(1), id(4)],
    });
  });

  it("publishes its result for every instance's gauges; a look without publishing leaves the last one", async () => {
    const { check } = checkOf({ 1: 300 });
    expect(await check.latest()).toBeNull();
    await check.run({ publish: false });
    expect(await check.latest()).toBeNull();
    await check.run();
    expect(await check.latest()).toEqual({ pendingWithObject: 1, oldestAgeSeconds: 300 });
  });

  it("stops when aborted", async () => {
    const { check } = checkOf({ 1: 300 });
    const aborted = new AbortController();
    aborted.abort(new Error("scheduler stopped"));
    await expect(check.run({ signal: aborted.signal })).rejects.toThrow(/scheduler stopped/);
  });
});
