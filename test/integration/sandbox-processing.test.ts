/**
 * The processing service's verdicts on image work, with in-memory ports: a task over its deadline
 * or memory bound rejects the upload (no retry), whichever step meets it; an abort or a storage
 * failure is not a verdict; the steps of one job share one deadline.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ImagesRepository } from "../../src/db/images-repository.ts";
import { ERRORS } from "../../src/domain/errors.ts";
import { newImageId } from "../../src/domain/ids.ts";
import type { ImageRecord, ImageStatus } from "../../src/domain/image.ts";
import { originalKey, uploadKey } from "../../src/domain/keys.ts";
import { type ImageWork, inProcessImageWork, type WorkOptions } from "../../src/imaging/image-work.ts";
import { thumbhashOf } from "../../src/imaging/placeholder.ts";
import { ProcessingService } from "../../src/services/processing.ts";
import { type Derivatives, taskOptions } from "../../src/services/processing-derivatives.ts";
import { LocalObjectStore } from "../../src/storage/local.ts";
import { photo } from "../support/image-builders.ts";

const timeout = () => ERRORS.unprocessableImage("took too long", { extra: { reason: "timeout" } });

describe("processing: image work verdicts, and promotion of validated bytes", () => {
  let root: string;
  let store: LocalObjectStore;
  let row: ImageRecord;
  let images: ImagesRepository;

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), "imgup-processing-"));
    store = new LocalObjectStore({ root, publicBaseUrl: "http://x", secret: "s", maxObjectBytes: 1e8 });
    const id = newImageId();
    const now = new Date();
    const jpeg = await photo(96, 64).jpeg().toBuffer();
    row = {
      id,
      ownerId: "alice",
      status: "pending",
      visibility: "public",
      filename: "a.jpg",
      objectKey: originalKey(id),
      uploadMethod: "put",
      declaredContentType: "image/jpeg",
      declaredSize: jpeg.length,
      declaredSha256: null,
      contentType: null,
      size: null,
      width: null,
      height: null,
      format: null,
      sha256: null,
      placeholder: null,
      rejectReason: null,
      rejectDetail: null,
      multipartUploadId: null,
      multipartPartSize: null,
      idempotencyKey: null,
      uploadExpiresAt: now,
      createdAt: now,
      updatedAt: now,
      readyAt: null,
      deletedAt: null,
      claimRequired: false,
      claimExpiresAt: null,
      claimedAt: null,
      ref: null,
      profile: null,
      profileLimits: null,
    };
    await store.put(uploadKey(row.id), jpeg, { contentType: "image/jpeg", contentLength: jpeg.length });
    images = {
      findById: async () => ({ ...row }),
      transition: async (_id: string, from: readonly ImageStatus[], to: ImageStatus, patch = {}) => {
        if (!from.includes(row.status)) return null;
        row = { ...row, ...patch, status: to };
        return { ...row };
      },
    } as unknown as ImagesRepository;
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  const policy = {
    maxBytes: 1e8,
    maxPixels: 50_000_000,
    allowedTypes: ["image/jpeg"],
    timeoutMs: 1000,
    maxJpegScans: 100,
  };
  const service = (work: ImageWork, derivatives: Derivatives) =>
    new ProcessingService(images, store, policy, work, pino({ level: "silent" }), null, derivatives);

  it("rejects the upload (timeout) when an eager preset runs out of time, and deletes the bytes", async () => {
    let placeholders = 0;
    const outcome = await service(inProcessImageWork, {
      eager: async () => {
        throw timeout();
      },
      placeholder: async () => {
        placeholders++;
        return null;
      },
    }).process(row.id);
    expect(outcome).toBe("rejected");
    expect(row).toMatchObject({ status: "rejected", rejectReason: "timeout" });
    expect(await store.head(uploadKey(row.id))).toBeNull();
    expect(await store.head(row.objectKey)).toBeNull();
    expect(placeholders).toBe(0);
  });

  it("leaves an image pending (still abortable) when its object is not there yet", async () => {
    await store.delete(uploadKey(row.id));
    const none: Derivatives = { eager: async () => {}, placeholder: async () => null };
    await expect(service(inProcessImageWork, none).process(row.id)).rejects.toThrow(/no upload/);
    expect(row.status).toBe("pending");
  });

  it("rejects too_complex when the validation decode passes the memory bound", async () => {
    const work: ImageWork = {
      ...inProcessImageWork,
      probe: async () => {
        throw ERRORS.unprocessableImage("used more than 1024 MiB", { extra: { reason: "too_complex" } });
      },
    };
    const none: Derivatives = { eager: async () => {}, placeholder: async () => null };
    expect(await service(work, none).process(row.id)).toBe("rejected");
    expect(row).toMatchObject({ status: "rejected", rejectReason: "too_complex" });
  });

  it("is no verdict when the job is aborted or the storage fails: the error goes to the job runner", async () => {
    const controller = new AbortController();
    const aborting: Derivatives = {
      eager: async () => {
        controller.abort(new Error("lease lost"));
        throw timeout();
      },
      placeholder: async () => null,
    };
    await expect(service(inProcessImageWork, aborting).process(row.id, controller.signal)).rejects.toThrow(
      "lease lost",
    );
    expect(row.status).toBe("processing");
    const failing: Derivatives = {
      eager: async () => {
        throw new Error("storage unavailable");
      },
      placeholder: async () => null,
    };
    await expect(service(inProcessImageWork, failing).process(row.id)).rejects.toThrow("storage unavailable");
    expect(row.status).toBe("processing");
    expect(await store.head(uploadKey(row.id))).not.toBeNull();
  });

  it("gives the steps of one job one deadline, charged with the time each task ran", async () => {
    const given: number[] = [];
    const run = (opts: WorkOptions) => {
      given.push(opts.timeoutMs);
      opts.onRan?.(400);
    };
    const work: ImageWork = {
      ...inProcessImageWork,
      probe: async (input, limits, opts) => {
        run(opts);
        // As for HEIC: the probe leaves the placeholder to its own task.
        const probe = await inProcessImageWork.probe(input, limits, opts);
        if (probe.ok) delete probe.placeholder;
        return probe;
      },
    };
    const derivatives: Derivatives = {
      eager: async (_image, _original, budget) => run(taskOptions(budget)),
      placeholder: async (_original, budget) => {
        run(taskOptions(budget));
        return "placeholder";
      },
    };
    expect(await service(work, derivatives).process(row.id)).toBe("ready");
    expect(given).toEqual([1000, 600, 200]);
    expect(row).toMatchObject({ status: "ready", placeholder: "placeholder", width: 96 });
  });

  it("takes the placeholder from the validating decode when the probe made it (one decode, not two)", async () => {
    let asked = 0;
    const derivatives: Derivatives = {
      eager: async () => {},
      placeholder: async () => {
        asked++;
        return "second decode";
      },
    };
    expect(await service(inProcessImageWork, derivatives).process(row.id)).toBe("ready");
    expect(asked).toBe(0);
    const jpeg = await photo(96, 64).jpeg().toBuffer();
    expect(row.placeholder).toBe(await thumbhashOf(jpeg, { maxPixels: 50_000_000 }));
  });

  // Issue 13: uploads land at the upload key; only validated bytes reach the original.
  const none: Derivatives = { eager: async () => {}, placeholder: async () => null };
  const html = Buffer.from("<html><script>alert(1)</script></html>");
  const bytesAt = async (key: string) => {
    const got = await store.getStream(key);
    if (!got) return null;
    const chunks: Buffer[] = [];
    for await (const c of got.body) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };

  it("promotes the validated upload to the original and removes the upload object", async () => {
    const uploaded = await bytesAt(uploadKey(row.id));
    expect(await service(inProcessImageWork, none).process(row.id)).toBe("ready");
    expect((await bytesAt(row.objectKey))?.equals(uploaded as Buffer)).toBe(true);
    expect(await store.head(uploadKey(row.id))).toBeNull();
  });

  it("never promotes bytes replaced while they were validated: the next run judges the new ones", async () => {
    // Replaced right after the worker opened it: it validates (and would promote) what it read.
    const getStream = store.getStream.bind(store);
    store.getStream = async (key, signal) => {
      const opened = await getStream(key, signal);
      store.getStream = getStream;
      await store.put(uploadKey(row.id), html, { contentType: "image/jpeg" });
      return opened;
    };
    await expect(service(inProcessImageWork, none).process(row.id)).rejects.toThrow(/changed while/);
    expect(await store.head(row.objectKey)).toBeNull();
    expect(row.status).toBe("processing");
    expect(await service(inProcessImageWork, none).process(row.id)).toBe("rejected");
    expect(row).toMatchObject({ status: "rejected", rejectReason: "not_an_image" });
    expect(await store.head(row.objectKey)).toBeNull();
    expect(await store.head(uploadKey(row.id))).toBeNull();
  });

  it("after ready, bytes sent to the upload key again change nothing that is served", async () => {
    expect(await service(inProcessImageWork, none).process(row.id)).toBe("ready");
    const original = await bytesAt(row.objectKey);
    await store.put(uploadKey(row.id), html, { contentType: "image/jpeg" });
    expect(await service(inProcessImageWork, none).process(row.id)).toBe("skipped");
    expect((await bytesAt(row.objectKey))?.equals(original as Buffer)).toBe(true);
  });
});
