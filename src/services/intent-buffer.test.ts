import pino from "pino";
import { describe, expect, it } from "vitest";
import { connectionRefused, FakeImagesRepository } from "../../test/support/fake-images-repository.ts";
import type { NewImage } from "../db/images-repository.ts";
import type { KeyValueStore } from "../kv/kv.ts";
import { MemoryKeyValueStore } from "../kv/memory.ts";
import { createMetrics } from "../metrics.ts";
import type { ObjectCreatedEvent } from "../storage/object-store.ts";
import { BUFFER_STREAM, type BufferOptions, IntentBuffer } from "./intent-buffer.ts";

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

function event(n: number): ObjectCreatedEvent {
  return { key: `uploads/${n}`, size: 10, etag: null, source: "test" };
}

async function buffered(n: number, opts: BufferOptions = {}, kv = new MemoryKeyValueStore()) {
  const repo = new FakeImagesRepository();
  const metrics = createMetrics();
  const buffer = new IntentBuffer(kv, repo, metrics, log, opts);
  for (let i = 1; i <= n; i++) await buffer.add(intent(i));
  return { kv, repo, metrics, buffer };
}

describe("IntentBuffer.drain on failing ports", () => {
  it("replays every buffered intent once, with its expiry revived as a Date", async () => {
    const { repo, buffer } = await buffered(3);
    expect(await buffer.drain()).toEqual({ replayed: 3, deadLettered: 0 });
    expect(await buffer.length()).toBe(0);
    expect([...repo.rows.keys()]).toEqual([intent(1).id, intent(2).id, intent(3).id]);
    expect(repo.rows.get(intent(1).id)?.uploadExpiresAt).toEqual(intent(1).uploadExpiresAt);
    // A second drain finds nothing and writes nothing.
    expect(await buffer.drain()).toEqual({ replayed: 0, deadLettered: 0 });
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
    expect((await buffer.drain()).replayed).toBe(2);
    expect(await buffer.length()).toBe(0);
    expect(repo.rows.size).toBe(4);
  });

  it("a row already written (a crash between insert and delete) is not written twice", async () => {
    const { repo, buffer } = await buffered(2);
    await repo.insertIfAbsent(intent(1));
    expect(await buffer.drain()).toEqual({ replayed: 2, deadLettered: 0 });
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
    expect((await buffer.drain()).replayed).toBe(2); // intent 1 already had its row: not written twice
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
    expect(await buffer.drain()).toEqual({ replayed: 0, deadLettered: 0 });
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

describe("IntentBuffer: intents and events in one stream", () => {
  it("replays in the order written: an event after its intent finds the row", async () => {
    const order: string[] = [];
    const kv = new MemoryKeyValueStore();
    const repo = new FakeImagesRepository();
    const buffer = new IntentBuffer(kv, repo, createMetrics(), log, {
      replayEvent: async (e) => {
        order.push(`event ${e.key} row=${repo.rows.has(intent(1).id)}`);
      },
    });
    await buffer.add(intent(1));
    await buffer.addEvent(event(1));
    await buffer.add(intent(2));
    repo.fail = (call) => {
      if (call === "insertIfAbsent") order.push(`intent ${repo.rows.size + 1}`);
      return null;
    };
    expect(await buffer.drain()).toEqual({ replayed: 3, deadLettered: 0 });
    expect(order).toEqual(["intent 1", "event uploads/1 row=true", "intent 2"]);
  });

  it("an event the queue cannot take for an outage stays, and the entries after it wait", async () => {
    let down = true;
    const replayed: string[] = [];
    const { buffer, repo } = await buffered(0, {
      replayEvent: async (e) => {
        if (down) throw connectionRefused();
        replayed.push(e.key);
      },
    });
    await buffer.addEvent(event(1));
    await buffer.add(intent(2));
    await expect(buffer.drain()).rejects.toThrow(/ECONNREFUSED/);
    expect(await buffer.length()).toBe(2);
    expect(repo.rows.size).toBe(0);
    down = false;
    expect(await buffer.drain()).toEqual({ replayed: 2, deadLettered: 0 });
    expect(replayed).toEqual(["uploads/1"]);
  });

  it("reads entries written by versions before events (a bare intent)", async () => {
    const { kv, repo, buffer } = await buffered(0);
    await kv.streamAdd(BUFFER_STREAM, JSON.stringify(intent(7)));
    expect(await buffer.drain()).toEqual({ replayed: 1, deadLettered: 0 });
    expect(repo.rows.get(intent(7).id)?.uploadExpiresAt).toEqual(intent(7).uploadExpiresAt);
  });
});

describe("IntentBuffer: one bad entry never blocks the others", () => {
  it("corrupt, unknown-format and refused entries go to the dead-letter stream; every other entry gets its row", async () => {
    const { kv, repo, metrics, buffer } = await buffered(0);
    await buffer.add(intent(1));
    await kv.streamAdd(BUFFER_STREAM, "{not json");
    await buffer.add(intent(2));
    await kv.streamAdd(BUFFER_STREAM, JSON.stringify({ v: 99, kind: "intent", image: intent(3) }));
    await buffer.add(intent(4)); // the database refuses this one (a constraint after a migration)
    await buffer.add(intent(5));
    let inserts = 0;
    repo.fail = (call) =>
      call === "insertIfAbsent" && ++inserts === 3
        ? Object.assign(new Error('new row violates check constraint "images_size_check"'), { code: "23514" })
        : null;
    expect(await buffer.drain()).toEqual({ replayed: 3, deadLettered: 3 });
    expect(await buffer.length()).toBe(0);
    expect([...repo.rows.keys()].sort()).toEqual([intent(1).id, intent(2).id, intent(5).id]);

    expect(await buffer.deadLetterCount()).toBe(3);
    const letters = await buffer.deadLetters(10);
    expect(letters.map((l) => [l.kind, l.reason])).toEqual([
      ["unknown", "corrupt"],
      ["unknown", "unknown_format"],
      ["intent", "refused"],
    ]);
    expect(letters[0]?.payload).toBe("{not json");
    expect(letters[2]?.detail).toMatch(/images_size_check/);
    expect(JSON.parse(letters[2]?.payload ?? "").image.id).toBe(intent(4).id);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^imgup_buffer_dead_letters_total\{kind="unknown",reason="corrupt"\} 1$/m);
    expect(text).toMatch(/^imgup_buffer_dead_letters_total\{kind="intent",reason="refused"\} 1$/m);
  });

  it("an intent whose idempotency key another image took is reported as a conflict, not swallowed", async () => {
    const { repo, buffer, metrics } = await buffered(0);
    // The client retried after recovery and got a new image with the same key before the drain.
    await repo.insert({ ...intent(2), idempotencyKey: "k1" });
    await buffer.add({ ...intent(1), idempotencyKey: "k1" });
    await buffer.add({ ...intent(2), idempotencyKey: "k1" }); // the same image again: not a conflict
    expect(await buffer.drain()).toEqual({ replayed: 1, deadLettered: 1 });
    const [letter] = await buffer.deadLetters(10);
    expect(letter?.reason).toBe("conflict");
    expect(letter?.detail).toContain(intent(2).id);
    expect(repo.rows.has(intent(1).id)).toBe(false);
    expect(await metrics.registry.metrics()).toMatch(
      /^imgup_buffer_dead_letters_total\{kind="intent",reason="conflict"\} 1$/m,
    );
  });

  it("an event the queue refuses for another reason is dead-lettered, the drain goes on", async () => {
    const { repo, buffer } = await buffered(0, {
      replayEvent: async () => {
        throw new Error("invalid input syntax for type uuid");
      },
    });
    await buffer.addEvent(event(1));
    await buffer.add(intent(2));
    expect(await buffer.drain()).toEqual({ replayed: 1, deadLettered: 1 });
    expect((await buffer.deadLetters(1))[0]).toMatchObject({ kind: "event", reason: "refused" });
    expect(repo.rows.has(intent(2).id)).toBe(true);
  });
});

describe("IntentBuffer: the drain lock", () => {
  const LOCK = "buffer:intents:drain-lock";

  it("is renewed per batch: a drain longer than the lock's TTL keeps it to the end", async () => {
    let now = 1_000_000;
    const kv = new MemoryKeyValueStore({ now: () => now });
    const { repo, buffer } = await buffered(6, { batch: 2, lockMs: 1000 }, kv);
    const held: Promise<string | null>[] = [];
    // Each insert takes 400 ms of the KV's clock: 2.4 s for the six, more than twice the TTL.
    repo.fail = (call) => {
      if (call !== "insertIfAbsent") return null;
      now += 400;
      held.push(kv.get(LOCK));
      return null;
    };
    expect(await buffer.drain()).toEqual({ replayed: 6, deadLettered: 0 });
    const seen = await Promise.all(held);
    expect(seen).toHaveLength(6);
    expect(seen.every((v) => v !== null)).toBe(true);
    expect(await kv.get(LOCK)).toBeNull(); // released at the end
  });

  it("once lost (it lapsed and another drainer took it), the drain stops after its batch", async () => {
    let now = 1_000_000;
    const kv = new MemoryKeyValueStore({ now: () => now });
    const { repo, buffer } = await buffered(6, { batch: 2, lockMs: 1000 }, kv);
    const taken: Promise<boolean>[] = [];
    let inserts = 0;
    repo.fail = (call) => {
      if (call !== "insertIfAbsent") return null;
      now += 700;
      // After the second insert the lock has lapsed (1.4 s > 1 s): another instance takes it.
      if (++inserts === 2) taken.push(kv.setIfAbsent(LOCK, "other", 60_000));
      return null;
    };
    expect(await buffer.drain()).toEqual({ replayed: 2, deadLettered: 0 });
    expect(await Promise.all(taken)).toEqual([true]);
    expect(await buffer.length()).toBe(4);
    expect(await kv.get(LOCK)).toBe("other"); // not released by the drainer that lost it
  });
});
