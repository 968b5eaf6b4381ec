import pino from "pino";
import { describe, expect, it } from "vitest";
import { connectionRefused, FakeImagesRepository } from "../../test/support/fake-images-repository.ts";
import type { NewImage } from "../db/images-repository.ts";
import type { KeyValueStore } from "../kv/kv.ts";
import { MemoryKeyValueStore } from "../kv/memory.ts";
import { createMetrics } from "../metrics.ts";
import { IntentBuffer } from "./intent-buffer.ts";

const log = pino({ level: "silent" });

function intent(n: number): NewImage {
  return {
    id: `00000000-0000-7000-8000-${String(n).padStart(12, "0")}`,
    ownerId: "alice",
    visibility: "public",
    filename: `f${n}.jpg`,
    objectKey: `originals/${n}`,
    uploadMethod: "put",
    declaredContentType: "image/jpeg",
    declaredSize: 10,
    declaredSha256: null,
    idempotencyKey: null,
    uploadExpiresAt: new Date("2030-01-01T00:00:00Z"),
    multipartUploadId: null,
    multipartPartSize: null,
  };
}

async function buffered(n: number) {
  const kv = new MemoryKeyValueStore();
  const repo = new FakeImagesRepository();
  const metrics = createMetrics();
  const buffer = new IntentBuffer(kv, repo, metrics, log);
  for (let i = 1; i <= n; i++) await buffer.add(intent(i));
  return { kv, repo, metrics, buffer };
}

describe("IntentBuffer.drain on failing ports", () => {
  it("replays every buffered intent once, with its expiry revived as a Date", async () => {
    const { repo, buffer } = await buffered(3);
    expect(await buffer.drain()).toBe(3);
    expect(await buffer.length()).toBe(0);
    expect([...repo.rows.keys()]).toEqual([intent(1).id, intent(2).id, intent(3).id]);
    expect(repo.rows.get(intent(1).id)?.uploadExpiresAt).toEqual(intent(1).uploadExpiresAt);
    // A second drain finds nothing and writes nothing.
    expect(await buffer.drain()).toBe(0);
  });

  it("when the database refuses mid-drain: stops, keeps the rest, releases the lock; the next drain finishes", async () => {
    const { repo, buffer } = await buffered(4);
    let inserts = 0;
    repo.fail = (call) => (call === "insertIfAbsent" && ++inserts === 3 ? connectionRefused() : null);
    await expect(buffer.drain()).rejects.toThrow(/ECONNREFUSED/);
    // The two written are gone from the stream; the failed one and the one after it are kept.
    expect(repo.rows.size).toBe(2);
    expect(await buffer.length()).toBe(2);
    repo.fail = null;
    // The lock was released: a new drain does not wait for its 30 s expiry.
    expect(await buffer.drain()).toBe(2);
    expect(await buffer.length()).toBe(0);
    expect(repo.rows.size).toBe(4);
  });

  it("a row already written (a crash between insert and delete) is not written twice", async () => {
    const { repo, buffer } = await buffered(2);
    await repo.insertIfAbsent(intent(1));
    expect(await buffer.drain()).toBe(1);
    expect(await buffer.length()).toBe(0);
    expect(repo.rows.size).toBe(2);
  });

  it("when the KV fails to delete a replayed entry: the drain fails, and the retry does not duplicate the row", async () => {
    const kv = new MemoryKeyValueStore();
    const repo = new FakeImagesRepository();
    let failDeletes = 1;
    const flaky: KeyValueStore = Object.assign(Object.create(kv) as KeyValueStore, {
      streamDelete: async (stream: string, ids: string[]) => {
        if (failDeletes-- > 0) throw new Error("Redis is unreachable (reconnecting)");
        return kv.streamDelete(stream, ids);
      },
    });
    const buffer = new IntentBuffer(flaky, repo, createMetrics(), log);
    await buffer.add(intent(1));
    await buffer.add(intent(2));
    await expect(buffer.drain()).rejects.toThrow(/unreachable/);
    expect(repo.rows.size).toBe(1);
    expect(await buffer.length()).toBe(2);
    expect(await buffer.drain()).toBe(1); // intent 1 already had its row
    expect(await buffer.length()).toBe(0);
    expect(repo.rows.size).toBe(2);
  });

  it("when the KV is down: add and drain reject (the caller answers 503), nothing is written", async () => {
    const { kv, repo, buffer } = await buffered(1);
    await kv.close();
    await expect(buffer.add(intent(9))).rejects.toThrow();
    await expect(buffer.drain()).rejects.toThrow();
    expect(repo.rows.size).toBe(0);
  });

  it("a second drainer holding the lock makes this one a no-op", async () => {
    const { kv, repo, buffer } = await buffered(2);
    await kv.setIfAbsent("buffer:intents:drain-lock", "another-instance", 30_000);
    expect(await buffer.drain()).toBe(0);
    expect(repo.calls).not.toContain("insertIfAbsent");
    expect(await buffer.length()).toBe(2);
  });

  it("counts what it buffered and what it replayed", async () => {
    const { metrics, buffer } = await buffered(3);
    await buffer.drain();
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^imgup_intents_replayed_total 3$/m);
    expect(text).toMatch(/^imgup_intents_buffered_total 3$/m);
  });
});
