/**
 * Moderation at the service level, with in-memory ports: the worker's gate on each branch of the
 * hook's answer (allow, reject, hold, no answer, fail-open) and the decisions on held images
 * (approve, reject, the signed callback, the review URL). The HTTP client of the hook is tested in
 * moderation-http-hook.test.ts.
 */

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ImagesRepository } from "../../src/db/images-repository.ts";
import { InvalidatingImagesRepository } from "../../src/db/invalidating-images-repository.ts";
import { newImageId } from "../../src/domain/ids.ts";
import type { ImageRecord, ImageStatus } from "../../src/domain/image.ts";
import { originalKey, publicOriginalKey, uploadKey, variantKey } from "../../src/domain/keys.ts";
import { newWebhookSecret, signatureHeader } from "../../src/domain/webhook-signature.ts";
import { inProcessImageWork } from "../../src/imaging/image-work.ts";
import { createMetrics } from "../../src/metrics.ts";
import {
  type ModerationDecision,
  type ModerationHook,
  type ModerationRequest,
  ModerationUnavailableError,
  reviewUrl,
} from "../../src/services/moderation.ts";
import { ModerationDecisions } from "../../src/services/moderation-decisions.ts";
import { ModerationGate } from "../../src/services/moderation-gate.ts";
import { ProcessingService, RetryLaterError } from "../../src/services/processing.ts";
import type { Derivatives } from "../../src/services/processing-derivatives.ts";
import { LocalObjectStore } from "../../src/storage/local.ts";
import { photo } from "../support/image-builders.ts";

const silent = pino({ level: "silent" });

/** A hook whose answer the test scripts; it records every request. */
class ScriptedHook implements ModerationHook {
  requests: ModerationRequest[] = [];
  answer: () => ModerationDecision = () => ({ decision: "allow" });
  async review(request: ModerationRequest): Promise<ModerationDecision> {
    this.requests.push(request);
    return this.answer();
  }
}

function newRow(id: string, size: number): ImageRecord {
  const now = new Date();
  return {
    id,
    ownerId: "alice",
    status: "pending",
    visibility: "public",
    filename: "a.jpg",
    objectKey: originalKey(id),
    uploadMethod: "put",
    declaredContentType: "image/jpeg",
    declaredSize: size,
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
}

describe("moderation: the worker's gate and the decisions", () => {
  let root: string;
  let store: LocalObjectStore;
  let row: ImageRecord;
  let images: ImagesRepository;
  let jpeg: Buffer;
  let hook: ScriptedHook;
  let metrics: ReturnType<typeof createMetrics>;
  const secret = newWebhookSecret();
  const variant = (id: string) => variantKey(id, "w_32", "webp");

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), "imgup-moderation-"));
    store = new LocalObjectStore({ root, publicBaseUrl: "http://x", secret: "s", maxObjectBytes: 1e8 });
    jpeg = await photo(96, 64).jpeg().toBuffer();
    row = newRow(newImageId(), jpeg.length);
    await store.put(uploadKey(row.id), jpeg, { contentType: "image/jpeg", contentLength: jpeg.length });
    images = {
      findById: async (id: string) => (id === row.id ? { ...row } : null),
      transition: async (_id: string, from: readonly ImageStatus[], to: ImageStatus, patch = {}) => {
        if (!from.includes(row.status)) return null;
        row = { ...row, ...patch, status: to };
        return { ...row };
      },
    } as unknown as ImagesRepository;
    hook = new ScriptedHook();
    metrics = createMetrics();
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  const policy = {
    maxBytes: 1e8,
    maxPixels: 5e7,
    allowedTypes: ["image/jpeg"],
    timeoutMs: 5000,
    maxJpegScans: 100,
  };
  // An eager preset written like the real one: into the image's prefix, before the gate.
  const derivatives: Derivatives = {
    eager: async (image) => {
      await store.put(variant(image.id), Buffer.from("v"), { contentType: "image/webp", contentLength: 1 });
    },
    placeholder: async () => null,
  };
  const gate = (failOpen = false, h: ModerationHook = hook) =>
    new ModerationGate(
      h,
      images,
      store,
      {
        failOpen,
        retryMs: 5_000,
        reviewUrl: (id) => reviewUrl("http://imgup.test", secret, id, 600, Date.now()),
      },
      silent,
      metrics,
    );
  const processing = (g: ModerationGate | null) =>
    new ProcessingService(images, store, policy, inProcessImageWork, silent, metrics, derivatives, null, g);
  const counted = async (decision: string) =>
    (await metrics.moderation.get()).values.find((v) => v.labels.decision === decision)?.value ?? 0;

  it("allow: ready as without a hook, and the hook was told the facts and a review URL", async () => {
    expect(await processing(gate()).process(row.id)).toBe("ready");
    expect(row.status).toBe("ready");
    expect(hook.requests).toHaveLength(1);
    const asked = hook.requests[0] as ModerationRequest;
    expect(asked).toMatchObject({
      imageId: row.id,
      ownerId: "alice",
      contentType: "image/jpeg",
      size: jpeg.length,
      width: 96,
      height: 64,
      sha256: row.sha256,
    });
    expect(asked.url).toMatch(
      new RegExp(`^http://imgup.test/v1/moderation/images/${row.id}/original\\?exp=\\d+&sig=`),
    );
    expect(await counted("allow")).toBe(1);
  });

  it("reject: rejected (moderation) with the hook's reason, and every object deleted", async () => {
    hook.answer = () => ({ decision: "reject", reason: "nudity" });
    expect(await processing(gate()).process(row.id)).toBe("rejected");
    expect(row).toMatchObject({ status: "rejected", rejectReason: "moderation", rejectDetail: "nudity" });
    for (const key of [uploadKey(row.id), originalKey(row.id), variant(row.id), publicOriginalKey(row.id)])
      expect(await store.head(key)).toBeNull();
    expect(await counted("reject")).toBe(1);
  });

  it("hold: held with the facts of a ready image, bytes kept; a re-run of the job skips it", async () => {
    hook.answer = () => ({ decision: "hold" });
    expect(await processing(gate()).process(row.id)).toBe("held");
    expect(row).toMatchObject({
      status: "held",
      width: 96,
      height: 64,
      contentType: "image/jpeg",
      readyAt: null,
    });
    expect(await store.head(originalKey(row.id))).not.toBeNull();
    expect(await store.head(variant(row.id))).not.toBeNull();
    expect(await processing(gate()).process(row.id)).toBe("skipped");
    expect(hook.requests).toHaveLength(1);
  });

  it("no answer: stays processing and the job is deferred by retryMs (no attempt spent); then the hook answers", async () => {
    hook.answer = () => {
      throw new ModerationUnavailableError("moderation hook: HTTP 503");
    };
    const failure = await processing(gate())
      .process(row.id)
      .then(
        () => null,
        (err: unknown) => err,
      );
    expect(failure).toBeInstanceOf(RetryLaterError);
    expect((failure as RetryLaterError).deferMs).toBe(5_000);
    expect(row.status).toBe("processing");
    expect(await store.head(originalKey(row.id))).not.toBeNull();
    expect(await counted("unavailable")).toBe(1);
    hook.answer = () => ({ decision: "allow" });
    expect(await processing(gate()).process(row.id)).toBe("ready");
  });

  it("no answer with fail-open: ready, counted as fail_open", async () => {
    hook.answer = () => {
      throw new ModerationUnavailableError("down");
    };
    expect(await processing(gate(true)).process(row.id)).toBe("ready");
    expect(await counted("fail_open")).toBe(1);
  });

  it("a hook that throws something else is not an answer either: the job fails, the image waits", async () => {
    hook.answer = () => {
      throw new Error("bug");
    };
    await expect(processing(gate(true)).process(row.id)).rejects.toThrow("bug");
    expect(row.status).toBe("processing");
  });

  describe("decisions on a held image", () => {
    const decisions = (now = Date.now) =>
      new ModerationDecisions(images, store, { secret, now }, silent, metrics);
    beforeEach(async () => {
      hook.answer = () => ({ decision: "hold" });
      expect(await processing(gate()).process(row.id)).toBe("held");
    });

    it("approve: held -> ready with readyAt; again: the same answer; reject after that: conflict", async () => {
      const d = decisions();
      expect((await d.approve(row.id)).status).toBe("ready");
      expect(row.readyAt).toBeInstanceOf(Date);
      expect((await d.approve(row.id)).status).toBe("ready");
      await expect(d.reject(row.id, "late")).rejects.toMatchObject({ status: 409 });
      await expect(d.approve(newImageId())).rejects.toMatchObject({ status: 404 });
      expect(await counted("approved")).toBe(1);
    });

    it("reject: rejected (moderation) and every object deleted; approve after that: conflict", async () => {
      const d = decisions();
      expect(await d.reject(row.id, "  spam  ")).toMatchObject({ status: "rejected", rejectDetail: "spam" });
      expect(await store.head(originalKey(row.id))).toBeNull();
      expect(await store.head(variant(row.id))).toBeNull();
      expect((await d.reject(row.id, "again")).status).toBe("rejected");
      await expect(d.approve(row.id)).rejects.toMatchObject({ status: 409 });
    });

    it("the review URL opens the original while held; not with another image's or an expired one", async () => {
      const d = decisions();
      const url = new URL(reviewUrl("http://imgup.test", secret, row.id, 60, Date.now()));
      const query = { exp: url.searchParams.get("exp") ?? "", sig: url.searchParams.get("sig") ?? "" };
      const opened = await d.openForReview(row.id, query);
      opened.body.destroy();
      expect(opened.head.size).toBe(jpeg.length);
      await expect(d.openForReview(newImageId(), query)).rejects.toMatchObject({ status: 404 });
      const later = decisions(() => Date.now() + 120_000);
      await expect(later.openForReview(row.id, query)).rejects.toMatchObject({ status: 404 });
      await d.approve(row.id);
      await expect(d.openForReview(row.id, query)).rejects.toMatchObject({ status: 404 });
    });

    it("a callback verifies only with the secret, the exact body and a fresh timestamp", () => {
      const d = decisions();
      const body = JSON.stringify({ imageId: row.id, decision: "allow" });
      const ts = Math.floor(Date.now() / 1000);
      const headers = (s: string, t = ts, b = body) => ({
        id: "msg_1",
        timestamp: String(t),
        signature: signatureHeader([s], "msg_1", t, b),
      });
      expect(() => d.verifyCallback(headers(secret), body)).not.toThrow();
      expect(() => d.verifyCallback(headers(newWebhookSecret()), body)).toThrow(/not signed/);
      expect(() => d.verifyCallback(headers(secret), body.replace("allow", "reject"))).toThrow(/not signed/);
      expect(() => d.verifyCallback(headers(secret, ts - 3600), body)).toThrow(/not signed/);
      expect(() =>
        d.verifyCallback({ id: undefined, timestamp: undefined, signature: undefined }, body),
      ).toThrow();
      const none = new ModerationDecisions(images, store, { secret: undefined }, silent, metrics);
      expect(() => none.verifyCallback(headers(secret), body)).toThrow(/not signed/);
    });
  });
});

describe("moderation: held images and the delivery record cache's versions", () => {
  it("a transition into or out of held bumps the image's version; processing to ready does not", async () => {
    const bumped: string[][] = [];
    const inner = {
      transition: async () => null,
      update: async () => null,
    } as unknown as ImagesRepository;
    const repo = new InvalidatingImagesRepository(inner, {
      images: async (ids) => {
        bumped.push([...ids]);
      },
      owner: async () => undefined,
    });
    await repo.transition("a", ["processing"], "ready");
    expect(bumped).toEqual([]);
    await repo.transition("b", ["processing"], "held");
    await repo.transition("c", ["held"], "ready");
    await repo.transition("d", ["held"], "rejected");
    await repo.update("e", "alice", ["held"], { visibility: "private" });
    expect(bumped).toEqual([["b"], ["c"], ["d"], ["e"]]);
  });
});
