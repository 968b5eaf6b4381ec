/**
 * The variants service's failure branches, with in-memory ports: a transform over its deadline is
 * remembered (the next request is refused at once), and a transform whose image is deleted while
 * it runs stores nothing that outlives the image.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ERRORS, isAppError } from "../../src/domain/errors.ts";
import { newImageId } from "../../src/domain/ids.ts";
import type { ImageRecord } from "../../src/domain/image.ts";
import { originalKey, variantKey } from "../../src/domain/keys.ts";
import { DEFAULT_SPEC_LIMITS } from "../../src/domain/transform-spec.ts";
import { type ImageWork, inProcessImageWork } from "../../src/imaging/image-work.ts";
import { MemoryKeyValueStore } from "../../src/kv/memory.ts";
import { createMetrics } from "../../src/metrics.ts";
import { BoundedQueue } from "../../src/services/bounded-queue.ts";
import type { DeliveryService } from "../../src/services/delivery.ts";
import { type MissCharges, VariantsService } from "../../src/services/variants.ts";
import { LocalObjectStore } from "../../src/storage/local.ts";
import { photo } from "../support/image-builders.ts";

const THUMB = { width: 64, height: 64, fit: "cover", format: "jpeg", dpr: 1 } as const;
/** Misses the route would charge; free here. */
const FREE: MissCharges = { client: async () => {}, owner: async () => {} };

describe("variants: deadlines and deletes", () => {
  let root: string;
  let store: LocalObjectStore;
  let kv: MemoryKeyValueStore;
  let image: ImageRecord;
  /** What delivery says about the image on each isDeliverable call, in order (then the last). */
  let deliverable: boolean[];

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), "imgup-variants-"));
    store = new LocalObjectStore({ root, publicBaseUrl: "http://x", secret: "s", maxObjectBytes: 1e8 });
    kv = new MemoryKeyValueStore();
    const id = newImageId();
    const now = new Date();
    image = {
      id,
      ownerId: "alice",
      status: "ready",
      visibility: "public",
      filename: "a.jpg",
      objectKey: originalKey(id),
      uploadMethod: "put",
      declaredContentType: "image/jpeg",
      declaredSize: 1,
      declaredSha256: null,
      contentType: "image/jpeg",
      size: 1,
      width: 96,
      height: 64,
      format: "jpeg",
      sha256: "0".repeat(64),
      placeholder: null,
      rejectReason: null,
      rejectDetail: null,
      multipartUploadId: null,
      multipartPartSize: null,
      idempotencyKey: null,
      uploadExpiresAt: now,
      createdAt: now,
      updatedAt: now,
      readyAt: now,
      deletedAt: null,
      claimRequired: false,
      claimExpiresAt: null,
      claimedAt: null,
      ref: null,
      profile: null,
      profileLimits: null,
    };
    const jpeg = await photo(96, 64).jpeg().toBuffer();
    await store.put(image.objectKey, jpeg, { contentType: "image/jpeg", contentLength: jpeg.length });
    deliverable = [true];
  });
  afterEach(async () => {
    await kv.close();
    await rm(root, { recursive: true, force: true });
  });

  function service(work: ImageWork) {
    const delivery = {
      authorize: async () => ({ image, privateTtlSeconds: null }),
      isDeliverable: async () => (deliverable.length > 1 ? deliverable.shift() : deliverable[0]) ?? false,
      openVariant: async (key: string) => {
        const obj = await store.getStream(key);
        return obj && { body: obj.body, size: obj.head.size };
      },
    } as unknown as DeliveryService;
    const queue = new BoundedQueue({ concurrency: 1, maxQueued: 10, perOwnerConcurrency: 1 });
    return new VariantsService(
      delivery,
      store,
      { thumb: THUMB },
      queue,
      {
        maxPixels: 50_000_000,
        maxBytes: 1e8,
        animated: false,
        specLimits: DEFAULT_SPEC_LIMITS,
        signingKeys: ["k"],
        timeoutMs: 1000,
        maxJpegScans: 100,
        failureTtlSeconds: 600,
      },
      createMetrics(),
      pino({ level: "silent" }),
      work,
      kv,
    );
  }
  const request = { imageId: "", path: "/i/x/thumb", query: {}, accept: undefined };
  const variantKeyOf = () => variantKey(image.id, "w_64,h_64,fit_cover,f_jpeg", "jpg");

  async function outcome(p: Promise<unknown>): Promise<string> {
    try {
      await p;
      return "ok";
    } catch (err) {
      if (!isAppError(err)) throw err;
      return `${err.status} ${err.code}${err.extra.reason ? ` ${err.extra.reason}` : ""}`;
    }
  }

  it("answers 422 timeout, and the next request for the same variant at once without a transform", async () => {
    let transforms = 0;
    let tokens = 0;
    const work: ImageWork = {
      ...inProcessImageWork,
      transform: async () => {
        transforms++;
        throw ERRORS.unprocessableImage("the image work took longer than 1000 ms", {
          extra: { reason: "timeout" },
        });
      },
    };
    const variants = service(work);
    const ask = async () => {
      const v = await variants.preset(
        "thumb",
        { ...request, imageId: image.id },
        {
          client: async () => {
            tokens++;
          },
          owner: async () => {},
        },
      );
      return v.open();
    };
    expect(await outcome(ask())).toBe("422 unprocessable_image timeout");
    expect(await outcome(ask())).toBe("422 unprocessable_image timeout");
    expect(transforms).toBe(1);
    // Refused before the miss budget and the queue: a remembered failure costs nothing.
    expect(tokens).toBe(1);
    // Another instance sharing the KV refuses it too.
    expect(
      await outcome(
        service(work)
          .preset("thumb", { ...request, imageId: image.id }, FREE)
          .then((v) => v.open()),
      ),
    ).toBe("422 unprocessable_image timeout");
    expect(transforms).toBe(1);
  });

  it("does not remember a failure about content, nor a success", async () => {
    let transforms = 0;
    const work: ImageWork = {
      ...inProcessImageWork,
      transform: async () => {
        transforms++;
        throw ERRORS.unprocessableImage("does not decode", { extra: { reason: "corrupt" } });
      },
    };
    const variants = service(work);
    const ask = () => variants.preset("thumb", { ...request, imageId: image.id }, FREE).then((v) => v.open());
    expect(await outcome(ask())).toBe("422 unprocessable_image corrupt");
    expect(await outcome(ask())).toBe("422 unprocessable_image corrupt");
    expect(transforms).toBe(2);
  });

  it("discards a variant whose image was deleted while it was transformed (checked before writing)", async () => {
    let entered!: () => void;
    const inside = new Promise<void>((r) => {
      entered = r;
    });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const work: ImageWork = {
      ...inProcessImageWork,
      transform: async (...args) => {
        entered();
        await gate;
        return inProcessImageWork.transform(...args);
      },
    };
    const variants = service(work);
    const pending = variants.preset("thumb", { ...request, imageId: image.id }, FREE).then((v) => v.open());
    await inside;
    deliverable = [false];
    release();
    expect(await outcome(pending)).toBe("404 image_not_found");
    expect(await store.head(variantKeyOf())).toBeNull();
  });

  it("deletes the variant it wrote when the image went away during the write", async () => {
    // Deliverable before the write, gone right after it (the delete job ran in between).
    deliverable = [true, false];
    const variants = service(inProcessImageWork);
    const got = variants.preset("thumb", { ...request, imageId: image.id }, FREE).then((v) => v.open());
    expect(await outcome(got)).toBe("404 image_not_found");
    expect(await store.head(variantKeyOf())).toBeNull();
    // While the image stays deliverable the same request succeeds and the variant stays.
    deliverable = [true];
    expect(
      await outcome(variants.preset("thumb", { ...request, imageId: image.id }, FREE).then((v) => v.open())),
    ).toBe("ok");
    expect(await store.head(variantKeyOf())).not.toBeNull();
  });
});
