import { describe, expect, it } from "vitest";
import type { ImageRecord, ImageStatus } from "../domain/image.ts";
import { MemoryKeyValueStore } from "../kv/memory.ts";
import { ImageRecordCache, KvRecordInvalidator } from "./image-record-cache.ts";

function record(id: string, status: ImageStatus = "ready", ownerId = "alice"): ImageRecord {
  return { id, ownerId, status, visibility: "public" } as ImageRecord;
}

/** A database of records that counts its reads; `beforeRead` runs inside a read (a racing write). */
function database() {
  const rows = new Map<string, ImageRecord>();
  const db = {
    rows,
    reads: 0,
    beforeRead: undefined as (() => Promise<void>) | undefined,
    load: async (id: string) => {
      db.reads++;
      const hook = db.beforeRead;
      db.beforeRead = undefined;
      const row = rows.get(id) ?? null;
      await hook?.();
      return row;
    },
  };
  return db;
}

function setup(opts: { entries?: number; maxAgeMs?: number; now?: () => number } = {}) {
  const kv = new MemoryKeyValueStore();
  const db = database();
  const cache = new ImageRecordCache(db.load, kv, {
    entries: opts.entries ?? 100,
    maxAgeMs: opts.maxAgeMs ?? 60_000,
    ...(opts.now ? { now: opts.now } : {}),
  });
  const invalidate = new KvRecordInvalidator(kv, 3_600_000);
  return { kv, db, cache, invalidate };
}

describe("ImageRecordCache", () => {
  it("answers from memory once the owner is known, and reads again after the image's version changes", async () => {
    const { db, cache, invalidate } = setup();
    db.rows.set("a", record("a"));
    await cache.get("a");
    await cache.get("a");
    expect(db.reads).toBe(2); // the first read did not know the owner yet
    for (let i = 0; i < 5; i++) expect(await cache.get("a")).toMatchObject({ id: "a" });
    expect(db.reads).toBe(2);
    db.rows.set("a", record("a", "deleted"));
    await invalidate.images(["a"]);
    expect(await cache.get("a")).toMatchObject({ status: "deleted" });
    expect(db.reads).toBe(3);
  });

  it("reads again after the owner's version changes, and only that owner's records", async () => {
    const { db, cache, invalidate } = setup();
    db.rows.set("a", record("a", "ready", "alice"));
    db.rows.set("b", record("b", "ready", "bob"));
    for (const id of ["a", "b", "a", "b"]) await cache.get(id);
    const before = db.reads;
    db.rows.set("a", record("a", "deleted", "alice"));
    await invalidate.owner("alice");
    expect(await cache.get("a")).toMatchObject({ status: "deleted" });
    expect(await cache.get("b")).toMatchObject({ status: "ready" });
    expect(db.reads).toBe(before + 1);
  });

  it("never keeps a record read while a write committed: the version read first no longer matches", async () => {
    const { db, cache, invalidate } = setup();
    db.rows.set("a", record("a"));
    await cache.get("a"); // owner known
    // The write commits and bumps after this lookup read the versions, before its load returned.
    db.beforeRead = async () => {
      db.rows.set("a", record("a", "deleted"));
      await invalidate.images(["a"]);
    };
    expect(await cache.get("a")).toMatchObject({ status: "ready" });
    expect(await cache.get("a")).toMatchObject({ status: "deleted" });
  });

  it("keeps only ready records", async () => {
    const { db, cache } = setup();
    db.rows.set("p", record("p", "processing"));
    for (let i = 0; i < 3; i++) await cache.get("p");
    expect(await cache.get("missing")).toBeNull();
    expect(db.reads).toBe(4);
    expect(cache.size).toBe(0);
  });

  it("reads the database every time while the KV fails", async () => {
    const { db, kv, cache } = setup();
    db.rows.set("a", record("a"));
    kv.getMany = async () => {
      throw new Error("down");
    };
    for (let i = 0; i < 3; i++) expect(await cache.get("a")).toMatchObject({ id: "a" });
    expect(db.reads).toBe(3);
  });

  it("reads again past the max age, and holds at most `entries` records", async () => {
    let now = 0;
    const { db, cache } = setup({ entries: 2, maxAgeMs: 1000, now: () => now });
    for (const id of ["a", "b", "c"]) db.rows.set(id, record(id));
    await cache.get("a");
    await cache.get("a");
    const reads = db.reads;
    now = 1001;
    await cache.get("a");
    expect(db.reads).toBe(reads + 1);
    for (const id of ["b", "b", "c", "c"]) await cache.get(id);
    expect(cache.size).toBe(2);
  });

  it("shares one MGET among the lookups of one event-loop turn", async () => {
    const { db, kv, cache } = setup();
    for (const id of ["a", "b", "c"]) db.rows.set(id, record(id));
    let calls = 0;
    const getMany = kv.getMany.bind(kv);
    kv.getMany = (keys) => {
      calls++;
      return getMany(keys);
    };
    await Promise.all(["a", "b", "c", "a"].map((id) => cache.get(id)));
    expect(calls).toBe(1);
  });

  it("is only the database when turned off", async () => {
    const { db, cache } = setup({ entries: 0 });
    db.rows.set("a", record("a"));
    for (let i = 0; i < 3; i++) await cache.get("a");
    expect(db.reads).toBe(3);
  });
});
