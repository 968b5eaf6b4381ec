import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAppError } from "../../src/domain/errors.ts";
import { SNIFF_BYTES, sniff } from "../../src/domain/sniff.ts";
import { DEFAULT_SPEC_LIMITS, parseSpec } from "../../src/domain/transform-spec.ts";
import { imageVerdict, sandboxedImageWork } from "../../src/imaging/image-work.ts";
import { ImagePool } from "../../src/imaging/sandbox/pool.ts";
import { ABSURD_SPECS, CORPUS_POLICY, type CorpusEntry, imageCorpus } from "../support/image-corpus.ts";
import { compiledImageChild } from "../support/test-build.ts";

/** IMGUP_PROCESSING_TIMEOUT_MS's default; only a real hang can exceed this bound. */
const DEADLINE_MS = 30_000;
const BOUND_MS = DEADLINE_MS * 3 + 10_000;
const pool = new ImagePool({
  size: 2,
  taskMemoryBytes: CORPUS_POLICY.taskMemoryBytes,
  childModule: compiledImageChild(),
});
const work = sandboxedImageWork(pool);

/** The worker's checks, in its order (services/processing.ts), on bytes already read. */
async function workerVerdict(entry: CorpusEntry): Promise<string> {
  const { bytes } = entry;
  if (bytes.length > CORPUS_POLICY.maxBytes) return "rejected:too_large";
  if (bytes.length === 0) return "rejected:not_an_image";
  const sniffed = sniff(bytes.subarray(0, SNIFF_BYTES));
  if (sniffed.kind !== "image") return "rejected:not_an_image";
  if (!CORPUS_POLICY.allowedTypes.includes(sniffed.mime)) return "rejected:unsupported_format";
  if (sniffed.mime !== entry.declaredType) return "rejected:type_mismatch";
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  if (entry.declaredSha256 && entry.declaredSha256 !== sha256) return "rejected:hash_mismatch";
  // The worker's request: the placeholder comes from the validating decode (a JPEG's only decode).
  const limits = { maxPixels: CORPUS_POLICY.maxPixels, maxJpegScans: CORPUS_POLICY.maxJpegScans };
  const request = { ...limits, placeholder: true };
  try {
    // In the image sandbox, as the worker does it: a deadline and a memory bound it cannot pass.
    const probe = await work.probe(bytes, request, { timeoutMs: DEADLINE_MS });
    return probe.ok ? "ready" : `rejected:${probe.reason}`;
  } catch (err) {
    const reason = imageVerdict(err);
    if (!reason) throw err;
    return `rejected:${reason}`;
  }
}

const corpus = await imageCorpus();

describe("the bad-input corpus", () => {
  afterAll(() => pool.stop());
  beforeAll(() => {
    expect(corpus.length).toBeGreaterThanOrEqual(30);
    expect(new Set(corpus.map((e) => e.name)).size).toBe(corpus.length);
  });

  it("is made of small files, except the one about size", () => {
    for (const e of corpus) {
      if (e.expect !== "rejected:too_large") expect(e.bytes.length, e.name).toBeLessThan(2 * 1024 * 1024);
    }
  });

  it.each(corpus.map((e) => [e.name, e] as const))(
    "%s: the worker's verdict, within its deadline",
    async (_name, entry) => {
      const started = Date.now();
      expect([entry.expect, entry.orElse]).toContain(await workerVerdict(entry));
      expect(Date.now() - started).toBeLessThan(BOUND_MS);
    },
    BOUND_MS + 5000,
  );

  it.each(corpus.map((e) => [e.name, e] as const))(
    "%s: a transform succeeds or is unprocessable_image",
    async (_name, entry) => {
      for (const animated of [false, true]) {
        const spec = { width: 64, height: 64, fit: "cover" as const, format: "webp" as const, dpr: 1 };
        try {
          // In the sandbox, as served: a cost bomb ends as a 422 at its deadline or memory bound.
          const limits = { maxPixels: CORPUS_POLICY.maxPixels, maxJpegScans: CORPUS_POLICY.maxJpegScans };
          const out = await work.transform(
            entry.bytes,
            spec,
            { ...limits, animated },
            { timeoutMs: DEADLINE_MS },
          );
          expect(out.data.length).toBeGreaterThan(0);
          expect(out.width).toBeLessThanOrEqual(64);
          // Nothing the worker finds unreadable comes out of the pipeline; an animation over the
          // pixel limit only as its first frame.
          expect(entry.expect).not.toBe("rejected:corrupt");
          if (entry.expect === "rejected:too_many_pixels") expect(animated).toBe(false);
        } catch (err) {
          if (!isAppError(err)) throw err;
          expect(err.code).toBe("unprocessable_image");
          expect(err.status).toBe(422);
          // Whatever the worker accepts, the pipeline transforms (10,000 frames only with animation off).
          if (entry.expect === "ready" || entry.expect === "rejected:type_mismatch") {
            throw new Error(`${entry.name} should transform: ${err.message}`);
          }
        }
      }
    },
    2 * BOUND_MS,
  );
});

describe("absurd transform specs", () => {
  it.each(ABSURD_SPECS.map((s) => [s.slice(0, 40), s] as const))("%j is invalid_spec", (_label, text) => {
    try {
      parseSpec(text, DEFAULT_SPEC_LIMITS);
      throw new Error("accepted");
    } catch (err) {
      expect(isAppError(err) && err.code).toBe("invalid_spec");
    }
  });
});
