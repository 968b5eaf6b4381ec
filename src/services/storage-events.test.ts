import pino from "pino";
import { describe, expect, it } from "vitest";
import { connectionRefused, FakeImagesRepository } from "../../test/support/fake-images-repository.ts";
import { MemoryJobQueue } from "../../test/support/memory-job-queue.ts";
import type { NewImage } from "../db/images-repository.ts";
import { uploadKey } from "../domain/keys.ts";
import { MemoryKeyValueStore } from "../kv/memory.ts";
import { createMetrics } from "../metrics.ts";
import type { ObjectCreatedEvent } from "../storage/object-store.ts";
import { IntentBuffer } from "./intent-buffer.ts";
import { processJobKey, StorageEventsService } from "./storage-events.ts";

const log = pino({ level: "silent" });

function pendingIntent(): NewImage {
  return {
    id: ID,
    ownerId: "alice",
    visibility: "public",
    filename: "f.jpg",
    objectKey: "originals/x",
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
const ID = "0190f0c4-7b1e-7c3a-8f00-000000000001";

function uploaded(id = ID): ObjectCreatedEvent {
  return { key: uploadKey(id), size: 10, etag: null, source: "test" };
}

function wired() {
  const kv = new MemoryKeyValueStore();
  const jobs = new MemoryJobQueue();
  const repo = new FakeImagesRepository();
  const buffer: IntentBuffer = new IntentBuffer(kv, repo, createMetrics(), log, {
    replayEvent: (e) => events.replay(e),
  });
  const ownerOf = async (id: string) => (await repo.findById(id))?.ownerId ?? null;
  const events: StorageEventsService = new StorageEventsService(
    jobs,
    log,
    ownerOf,
    undefined,
    undefined,
    buffer,
  );
  return { kv, jobs, repo, buffer, events };
}

describe("StorageEventsService.objectCreated resolves only once the event is durably recorded", () => {
  it("enqueues one job per upload (a second event is a duplicate); other keys are ignored", async () => {
    const { jobs, events } = wired();
    expect(await events.objectCreated(uploaded())).toBe("enqueued");
    expect(await events.objectCreated(uploaded())).toBe("duplicate");
    expect(await events.objectCreated({ ...uploaded(), key: "elsewhere/x" })).toBe("ignored");
    expect([...jobs.jobs.keys()]).toEqual([processJobKey(ID)]);
  });

  it("database unreachable: the event is buffered, and the drain enqueues its job on recovery", async () => {
    const { jobs, repo, buffer, events } = wired();
    repo.fail = () => connectionRefused();
    jobs.failEnqueue = () => connectionRefused();
    expect(await events.objectCreated(uploaded())).toBe("buffered");
    expect(await buffer.length()).toBe(1);
    expect(jobs.jobs.size).toBe(0);
    repo.fail = null;
    jobs.failEnqueue = null;
    expect(await buffer.drain()).toEqual({ replayed: 1, deadLettered: 0 });
    expect([...jobs.jobs.keys()]).toEqual([processJobKey(ID)]);
  });

  it("only the enqueue failing (the owner lookup answered) buffers too", async () => {
    const { jobs, buffer, events } = wired();
    jobs.failEnqueue = () => connectionRefused();
    expect(await events.objectCreated(uploaded())).toBe("buffered");
    expect(await buffer.length()).toBe(1);
  });

  it("rejects when neither the queue nor the buffer takes it (the sender must retry)", async () => {
    const { kv, jobs, events } = wired();
    jobs.failEnqueue = () => connectionRefused();
    await kv.close();
    await expect(events.objectCreated(uploaded())).rejects.toThrow();
  });

  it("a refusal that is not an outage is not buffered: it rejects", async () => {
    const { jobs, buffer, events } = wired();
    jobs.failEnqueue = () => new Error("syntax error at or near");
    await expect(events.objectCreated(uploaded())).rejects.toThrow(/syntax error/);
    expect(await buffer.length()).toBe(0);
  });

  it("while the buffer still holds entries, an event queues behind them even with the database back", async () => {
    const { jobs, repo, buffer, events } = wired();
    const image = { ...pendingIntent(), id: ID };
    await buffer.add(image); // buffered during the outage, not replayed yet
    expect(await events.objectCreated(uploaded())).toBe("buffered");
    expect(jobs.jobs.size).toBe(0);
    const seen: boolean[] = [];
    const enqueue = jobs.enqueue.bind(jobs);
    jobs.enqueue = async (job) => {
      seen.push(repo.rows.has(ID)); // the row exists when the job is made
      return enqueue(job);
    };
    expect(await buffer.drain()).toEqual({ replayed: 2, deadLettered: 0 });
    expect(seen).toEqual([true]);
    // The buffer is empty again: the next event goes straight to the queue.
    expect(await events.objectCreated(uploaded())).toBe("duplicate");
  });
});
