import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connectionRefused, FakeImagesRepository } from "../../test/support/fake-images-repository.ts";
import { localStore } from "../../test/support/local-store.ts";
import { MemoryUsageRepository } from "../../test/support/memory-usage-repository.ts";
import { QuotaExceededError } from "../domain/quota.ts";
import { createMetrics } from "../metrics.ts";
import type { LocalObjectStore } from "../storage/local.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import type { Principal } from "./auth.ts";
import { createQuotaMetrics, QuotaService } from "./quotas.ts";
import { UploadsService } from "./uploads.ts";
import { VariantStorage } from "./variant-storage.ts";

const alice: Principal = { ownerId: "alice", scopes: new Set(["upload"]), via: "api_key" };
const policy = {
  maxBytes: 1024 * 1024,
  allowedTypes: ["image/jpeg"],
  defaultVisibility: "public" as const,
  urlTtlSeconds: 600,
  multipartPartSize: 8 * 1024 * 1024,
};
const full = { originalBytes: 900, variantBytes: 50, reservedBytes: 50, images: 3, pendingImages: 1 };

/** Counts the storage calls an intent makes: a refusal must make none that hand out a URL. */
function spied(store: ObjectStore): { store: ObjectStore; calls: string[] } {
  const calls: string[] = [];
  const proxy = new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return value.apply(target, args);
      };
    },
  });
  return { store: proxy, calls };
}

describe("quota checks of UploadsService (in-memory ports)", () => {
  let local: LocalObjectStore;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ store: local, cleanup } = await localStore()));
  afterEach(() => cleanup());

  const wire = () => {
    const images = new FakeImagesRepository();
    const usage = new MemoryUsageRepository();
    const metrics = createMetrics();
    const quotaMetrics = createQuotaMetrics(metrics.registry);
    const clock = { now: 1_000_000 };
    const quotas = new QuotaService(
      usage,
      { maxBytes: 1000, maxImages: null },
      quotaMetrics,
      10_000,
      () => clock.now,
    );
    const { store, calls } = spied(local);
    const uploads = new UploadsService(
      images,
      store,
      policy,
      metrics,
      null,
      Date.now,
      () => {},
      null,
      quotas,
    );
    return { images, usage, calls, uploads, metrics, quotas, clock };
  };
  const intent = (method: "put" | "post" | "multipart", size = 10) => ({
    filename: "a.jpg",
    contentType: "image/jpeg",
    size,
    method,
  });

  it("refuses before signing anything or writing a row, for every method", async () => {
    const { images, usage, calls, uploads, metrics } = wire();
    usage.usages.set("alice", full);
    for (const method of ["put", "post", "multipart"] as const) {
      await expect(uploads.createIntent(alice, intent(method, 1))).rejects.toMatchObject({
        status: 413,
        code: "quota_exceeded",
        extra: { limit: "bytes", used: 1000, requested: 1, max: 1000 },
      });
    }
    expect(calls).toEqual([]);
    expect(images.calls.filter((c) => c === "insert")).toEqual([]);
    expect(await metrics.registry.getSingleMetricAsString("imgup_quota_refusals_total")).toContain(
      'imgup_quota_refusals_total{limit="bytes"} 3',
    );
  });

  it("a parallel intent took the room after the check: the multipart upload is aborted, no URL handed out", async () => {
    const { images, calls, uploads } = wire();
    images.fail = (call) =>
      call === "insert"
        ? new QuotaExceededError({ limit: "bytes", used: 995, requested: 10, max: 1000 })
        : null;
    await expect(uploads.createIntent(alice, intent("multipart"))).rejects.toMatchObject({
      status: 413,
      code: "quota_exceeded",
    });
    expect(calls).toContain("createMultipartUpload");
    expect(calls).toContain("abortMultipartUpload");
    expect(images.rows.size).toBe(0);
  });

  it("a retry of an intent already made (its Idempotency-Key is stored) gets it again at a full quota", async () => {
    const { images, usage, uploads } = wire();
    const first = await uploads.createIntent(alice, intent("put"), "key-1");
    expect(first.kind).toBe("created");
    usage.usages.set("alice", full);
    const again = await uploads.createIntent(alice, intent("put"), "key-1");
    expect(again.kind).toBe("existing");
    expect(again.image.id).toBe(first.image.id);
    expect(images.rows.size).toBe(1);
    await expect(uploads.createIntent(alice, intent("put"), "key-2")).rejects.toMatchObject({ status: 413 });
  });

  it("the image count: 403, checked before the bytes", async () => {
    const { usage, uploads, quotas } = wire();
    usage.usages.set("alice", full);
    await quotas.setOverride("alice", { maxBytes: 10, maxImages: 4 });
    await expect(uploads.createIntent(alice, intent("put"))).rejects.toMatchObject({
      status: 403,
      code: "quota_exceeded",
      extra: { limit: "images", used: 4, max: 4 },
    });
    await quotas.setOverride("alice", { maxBytes: null, maxImages: null });
    expect((await uploads.createIntent(alice, intent("put"))).kind).toBe("created");
  });

  it("an override changed by another instance applies here once the cached one is older than its TTL", async () => {
    const { usage, uploads, clock } = wire();
    usage.usages.set("alice", full);
    await expect(uploads.createIntent(alice, intent("put"))).rejects.toMatchObject({ status: 413 });
    usage.overrides.set("alice", { maxBytes: null, maxImages: null }); // written elsewhere
    await expect(uploads.createIntent(alice, intent("put"))).rejects.toMatchObject({ status: 413 });
    expect(usage.calls.filter((c) => c === "quotaOverride")).toHaveLength(1);
    clock.now += 10_000;
    expect((await uploads.createIntent(alice, intent("put"))).kind).toBe("created");
  });

  it("while the database is unreachable the check does not block the intent (it is buffered unchecked)", async () => {
    const { usage, uploads } = wire();
    usage.fail = () => connectionRefused();
    expect((await uploads.createIntent(alice, intent("put"))).kind).toBe("created");
  });
});

describe("VariantStorage (in-memory ports)", () => {
  let local: LocalObjectStore;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ store: local, cleanup } = await localStore()));
  afterEach(() => cleanup());

  const image = { id: "0193a0b0-0000-7000-8000-000000000001", ownerId: "alice" };
  const out = (bytes: number) => ({ data: Buffer.alloc(bytes, 7), contentType: "image/png" });
  const wire = (ratio = 4) => {
    const repo = new MemoryUsageRepository();
    const { store, calls } = spied(local);
    const storage = new VariantStorage(
      store,
      { repo, cap: { ratio, minBytes: 0 }, touchIntervalMs: 60_000 },
      pino({ level: "silent" }),
    );
    return { repo, store, calls, storage };
  };

  it("stores under the cap, evicts the least recently accessed object, refuses one larger than the cap", async () => {
    const { repo, storage, calls } = wire();
    // Original 100 bytes, ratio 4: cap 400.
    expect(await storage.write(image, 100, "v/a", out(150))).toBe(true);
    expect(await storage.write(image, 100, "v/b", out(150))).toBe(true);
    storage.touch(image.id, "v/a");
    await new Promise((r) => setImmediate(r));
    expect(await storage.write(image, 100, "v/c", out(150))).toBe(true);
    expect((await repo.variants(image.id)).map((v) => v.key).sort()).toEqual(["v/a", "v/c"]);
    expect(await local.head("v/b")).toBeNull();
    expect(await local.head("v/a")).not.toBeNull();
    calls.length = 0;
    expect(await storage.write(image, 100, "v/huge", out(401))).toBe(false);
    expect(calls).toEqual([]);
  });

  it("a touch within the interval is not written again", async () => {
    const { repo, storage } = wire();
    await storage.write(image, 100, "v/a", out(10));
    storage.touch(image.id, "v/a");
    storage.touch(image.id, "v/a");
    expect(repo.calls.filter((c) => c === "touchVariant")).toHaveLength(1);
  });

  it("a write that fails forgets its row; a deleted image stores nothing", async () => {
    const { repo, storage } = wire();
    const failing = new VariantStorage(
      { ...local, put: async () => Promise.reject(new Error("storage down")) } as unknown as ObjectStore,
      { repo, cap: { ratio: 4, minBytes: 0 }, touchIntervalMs: 0 },
      pino({ level: "silent" }),
    );
    await expect(failing.write(image, 100, "v/x", out(10))).rejects.toThrow("storage down");
    expect(await repo.variants(image.id)).toEqual([]);
    repo.gone.add(image.id);
    await expect(storage.write(image, 100, "v/y", out(10))).rejects.toMatchObject({
      code: "image_not_found",
    });
  });
});
