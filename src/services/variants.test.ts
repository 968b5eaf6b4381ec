/**
 * The miss path's single-flight at service level: two VariantsService instances sharing one KV and
 * one store (as two API processes share Redis and the bucket) transform a cold variant once, and
 * every caller's rate-limit callback is its own, run before it joins anyone's flight.
 */
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { photo } from "../../test/support/image-builders.ts";
import { localStore } from "../../test/support/local-store.ts";
import { ERRORS, isAppError } from "../domain/errors.ts";
import { newImageId } from "../domain/ids.ts";
import type { ImageRecord } from "../domain/image.ts";
import { originalKey } from "../domain/keys.ts";
import { DEFAULT_SPEC_LIMITS } from "../domain/transform-spec.ts";
import { type ImageWork, inProcessImageWork } from "../imaging/image-work.ts";
import type { KeyValueStore } from "../kv/kv.ts";
import { MemoryKeyValueStore } from "../kv/memory.ts";
import { createMetrics, type Metrics } from "../metrics.ts";
import type { LocalObjectStore } from "../storage/local.ts";
import { BoundedQueue } from "./bounded-queue.ts";
import type { DeliveryService } from "./delivery.ts";
import { claimKey } from "./variant-flight.ts";
import { VariantsService } from "./variants.ts";

const THUMB = { width: 64, height: 64, fit: "cover", format: "jpeg", dpr: 1 } as const;

/** The gate's promise, or the callers' first error: a caller that fails early fails the test now. */
function reached(gate: Promise<void>, callers: Promise<unknown>[]): Promise<void> {
  return Promise.race([gate, Promise.all(callers).then(() => gate)]);
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe("variants: single-flight across instances, budgets per caller", () => {
  let store: LocalObjectStore;
  let cleanup: () => Promise<void>;
  let kv: MemoryKeyValueStore;
  let image: ImageRecord;
  /** Transforms run, over every instance. */
  let transforms: number;
  let entered: ReturnType<typeof deferred>;
  let gate: ReturnType<typeof deferred>;

  beforeEach(async () => {
    ({ store, cleanup } = await localStore());
    kv = new MemoryKeyValueStore();
    const id = newImageId();
    const now = new Date();
    image = {
      ...({} as ImageRecord),
      id,
      ownerId: "alice",
      status: "ready",
      visibility: "public",
      objectKey: originalKey(id),
      size: 1,
      format: "jpeg",
      sha256: "0".repeat(64),
      updatedAt: now,
      readyAt: now,
      deletedAt: null,
    };
    const jpeg = await photo(96, 64).jpeg().toBuffer();
    await store.put(image.objectKey, jpeg, { contentType: "image/jpeg", contentLength: jpeg.length });
    transforms = 0;
    entered = deferred();
    gate = deferred();
  });
  afterEach(async () => {
    await kv.close();
    await cleanup();
  });

  const work: ImageWork = {
    ...inProcessImageWork,
    transform: async (...args) => {
      transforms++;
      entered.resolve();
      await gate.promise;
      return inProcessImageWork.transform(...args);
    },
  };

  /** One API instance: its own queue and metrics, the shared KV (seen through `view`) and store. */
  function instance(view: KeyValueStore = kv): { variants: VariantsService; metrics: Metrics } {
    const delivery = {
      authorize: async () => ({ image, privateTtlSeconds: null }),
      isDeliverable: async () => true,
      // The real one adds in-memory caches in front of the same read.
      openVariant: async (key: string) => {
        const obj = await store.getStream(key);
        return obj && { body: obj.body, size: obj.head.size };
      },
    } as unknown as DeliveryService;
    const metrics = createMetrics();
    const variants = new VariantsService(
      delivery,
      store,
      { thumb: THUMB },
      new BoundedQueue({ concurrency: 1, maxQueued: 100, perOwnerConcurrency: 1 }),
      {
        maxPixels: 50_000_000,
        maxBytes: 1e8,
        animated: false,
        specLimits: DEFAULT_SPEC_LIMITS,
        signingKeys: ["k"],
        timeoutMs: 60_000,
        maxJpegScans: 100,
        failureTtlSeconds: 600,
      },
      metrics,
      pino({ level: "silent" }),
      work,
      view,
      null,
      { pollMinMs: 1, pollMaxMs: 10 },
    );
    return { variants, metrics };
  }

  const free = async () => {};
  const ask = (
    variants: VariantsService,
    client: () => Promise<void> = free,
    owner: () => Promise<void> = free,
  ) =>
    variants
      .preset(
        "thumb",
        { imageId: image.id, path: "/i/x/thumb", query: {}, accept: undefined },
        { client, owner },
      )
      .then((v) => v.open())
      .then((o) => {
        if (!("body" in o)) throw new Error("expected bytes, got a redirect");
        return o.body as Buffer;
      });

  /** A view of the KV that says when its instance first polls a claim (it is waiting). */
  function polling(): { view: KeyValueStore; polled: Promise<void> } {
    const polled = deferred();
    const view: KeyValueStore = Object.create(kv);
    view.get = (key) => {
      if (key.startsWith(claimKey(""))) polled.resolve();
      return kv.get(key);
    };
    return { view, polled: polled.promise };
  }

  const sum = async (
    metrics: Metrics[],
    pick: (m: Metrics) => { get(): Promise<{ values: { value: number; labels: object }[] }> },
    labels: object = {},
  ) => {
    let total = 0;
    for (const m of metrics) {
      for (const v of (await pick(m).get()).values) {
        if (Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want))
          total += v.value;
      }
    }
    return total;
  };

  it("callers on two instances asking for one cold variant share one transform and get the same bytes; the owner pays once", async () => {
    const a = instance();
    const b = polling();
    const bInstance = instance(b.view);
    let clientCharges = 0;
    let ownerCharges = 0;
    const client = async () => {
      clientCharges++;
    };
    const owner = async () => {
      ownerCharges++;
    };
    const fromA = Array.from({ length: 10 }, () => ask(a.variants, client, owner));
    await reached(entered.promise, fromA);
    const fromB = Array.from({ length: 10 }, () => ask(bInstance.variants, client, owner));
    await reached(b.polled, fromB);
    gate.resolve();
    const all = await Promise.all([...fromA, ...fromB]);
    expect(transforms).toBe(1);
    expect(new Set(all.map((buf) => buf.toString("base64"))).size).toBe(1);
    // Every client paid for its own request; the owner paid for the one transform.
    expect(clientCharges).toBe(20);
    expect(ownerCharges).toBe(1);
    const metrics = [a.metrics, bInstance.metrics];
    expect(await sum(metrics, (m) => m.transforms)).toBe(1);
    // One claim taken on A and one waiter on B: the other 18 callers joined in process.
    expect(await sum([a.metrics], (m) => m.transformClaims, { outcome: "taken" })).toBe(1);
    expect(await sum([bInstance.metrics], (m) => m.transformClaims, { outcome: "waited" })).toBe(1);
    expect(await sum(metrics, (m) => m.transformClaims)).toBe(2);
  });

  it("a caller over its budget is refused while the others' transform runs, not carried by it", async () => {
    const { variants } = instance();
    const within = ask(variants);
    await reached(entered.promise, [within]);
    const over = ask(variants, async () => {
      throw ERRORS.rateLimited("transform_misses: over budget");
    });
    const refused = await over.catch((e) => e);
    expect(isAppError(refused) && refused.status).toBe(429);
    gate.resolve();
    expect((await within).length).toBeGreaterThan(0);
    expect(transforms).toBe(1);
  });

  it("a caller within its budget never gets the 429 of a caller that asked first", async () => {
    const { variants } = instance();
    // The first caller's rate-limit check is still running when the second asks.
    const checking = deferred();
    const first = ask(variants, async () => {
      await checking.promise;
      throw ERRORS.rateLimited("transform_misses: over budget");
    });
    const second = ask(variants);
    await reached(entered.promise, [second]);
    checking.resolve();
    const refused = await first.catch((e) => e);
    expect(isAppError(refused) && refused.status).toBe(429);
    gate.resolve();
    expect((await second).length).toBeGreaterThan(0);
    expect(transforms).toBe(1);
  });
});
