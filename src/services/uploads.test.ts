import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connectionRefused, FakeImagesRepository } from "../../test/support/fake-images-repository.ts";
import { localStore } from "../../test/support/local-store.ts";
import { DatabaseBreaker } from "../db/breaker.ts";
import { GuardedImagesRepository } from "../db/guarded-images-repository.ts";
import { MemoryKeyValueStore } from "../kv/memory.ts";
import { createMetrics } from "../metrics.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import type { Principal } from "./auth.ts";
import { IntentBuffer } from "./intent-buffer.ts";
import { UploadsService } from "./uploads.ts";

const log = pino({ level: "silent" });
const alice: Principal = { ownerId: "alice", scopes: new Set(["upload"]), via: "api_key" };
const input = { filename: "a.jpg", contentType: "image/jpeg", size: 100 };
const policy = {
  maxBytes: 1024 * 1024,
  allowedTypes: ["image/jpeg", "image/png"],
  defaultVisibility: "public" as const,
  urlTtlSeconds: 600,
  multipartPartSize: 8 * 1024 * 1024,
};

describe("UploadsService when the database is unreachable", () => {
  let store: ObjectStore;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ store, cleanup } = await localStore()));
  afterEach(() => cleanup());

  const wire = (opts: { buffer: boolean }) => {
    const inner = new FakeImagesRepository();
    // Opens on the first connection failure; stays open far longer than any test.
    const breaker = new DatabaseBreaker({ failures: 1, halfOpenAfterMs: 3_600_000, timeoutMs: 60_000 }, log);
    const repo = new GuardedImagesRepository(inner, breaker);
    const metrics = createMetrics();
    const kv = new MemoryKeyValueStore();
    const buffer = opts.buffer ? new IntentBuffer(kv, inner, metrics, log) : null;
    const uploads = new UploadsService(repo, store, policy, metrics, buffer);
    return { inner, breaker, uploads, buffer, metrics };
  };

  it("a refused connection: the intent is buffered and the client still gets its upload URL", async () => {
    const { inner, uploads, buffer } = wire({ buffer: true });
    inner.fail = () => connectionRefused();
    const result = await uploads.createIntent(alice, input);
    expect(result.kind).toBe("created");
    if (result.kind !== "created") return;
    expect(result.image).toMatchObject({ status: "pending", ownerId: "alice", filename: "a.jpg" });
    expect(result.upload.method).toBe("put");
    expect(await buffer?.length()).toBe(1);
    expect(inner.rows.size).toBe(0);
  });

  it("breaker open: no call reaches the database, the intent is buffered, and the drain writes it later", async () => {
    const { inner, breaker, uploads, buffer } = wire({ buffer: true });
    inner.fail = () => connectionRefused();
    await uploads.createIntent(alice, input);
    expect(breaker.state).toBe("open");
    const callsWhenOpened = inner.calls.length;
    const second = await uploads.createIntent(alice, { ...input, filename: "b.jpg" });
    expect(second.kind).toBe("created");
    expect(inner.calls.length).toBe(callsWhenOpened); // refused by the breaker, not by the database
    expect(await buffer?.length()).toBe(2);
    // The database is back: the drain writes both rows, with the ids the clients were given.
    inner.fail = null;
    expect((await buffer?.drain())?.replayed).toBe(2);
    if (second.kind === "created") expect(inner.rows.has(second.image.id)).toBe(true);
  });

  it("without a buffer: 503 unavailable, nothing written", async () => {
    const { inner, uploads } = wire({ buffer: false });
    inner.fail = () => connectionRefused();
    await expect(uploads.createIntent(alice, input)).rejects.toMatchObject({ status: 503 });
    expect(inner.rows.size).toBe(0);
  });

  it("a database error that is not an outage (a bad query) is not buffered", async () => {
    const { inner, uploads, buffer } = wire({ buffer: true });
    inner.fail = (call) => (call === "insert" ? new Error("syntax error at or near") : null);
    await expect(uploads.createIntent(alice, input)).rejects.toThrow(/syntax error/);
    expect(await buffer?.length()).toBe(0);
  });

  it("when both the database and the KV are down: 503, not a lost intent", async () => {
    const inner = new FakeImagesRepository();
    inner.fail = () => connectionRefused();
    const kv = new MemoryKeyValueStore();
    await kv.close();
    const metrics = createMetrics();
    const uploads = new UploadsService(
      inner,
      store,
      policy,
      metrics,
      new IntentBuffer(kv, inner, metrics, log),
    );
    await expect(uploads.createIntent(alice, input)).rejects.toMatchObject({
      status: 503,
      code: "service_unavailable",
    });
    expect(inner.rows.size).toBe(0);
  });
});

describe("UploadsService dedup round trips", () => {
  let store: ObjectStore;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ store, cleanup } = await localStore()));
  afterEach(() => cleanup());

  const sha256 = "d".repeat(64);
  const wire = () => {
    const inner = new FakeImagesRepository();
    const uploads = new UploadsService(inner, store, policy, createMetrics(), null);
    return { inner, uploads };
  };

  it("a put intent with a sha256 is one repository call, the lookup and the insert together", async () => {
    const { inner, uploads } = wire();
    const first = await uploads.createIntent(alice, { ...input, sha256 }, "k1");
    expect(first.kind).toBe("created");
    expect(inner.calls).toEqual(["insertUnlessDuplicate"]);
    // Once the worker has hashed those bytes into a ready image, the same call answers it.
    const row = inner.rows.get(first.image.id);
    if (row) inner.rows.set(row.id, { ...row, status: "ready", sha256 });
    const second = await uploads.createIntent(alice, { ...input, sha256 }, "k2");
    expect(second).toMatchObject({ kind: "deduplicated", image: { id: first.image.id } });
    expect(inner.calls).toEqual(["insertUnlessDuplicate", "insertUnlessDuplicate"]);
    expect(inner.rows.size).toBe(1);
  });

  it("without a sha256 there is no lookup; a multipart intent looks up before creating its upload", async () => {
    const { inner, uploads } = wire();
    await uploads.createIntent(alice, input);
    expect(inner.calls).toEqual(["insert"]);
    inner.calls.length = 0;
    await uploads.createIntent(alice, { ...input, sha256, method: "multipart" });
    expect(inner.calls).toEqual(["findReadyBySha256", "insert"]);
  });
});
