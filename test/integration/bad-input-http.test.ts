import { readFileSync } from "node:fs";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { transformUrl } from "../../src/services/transform-urls.ts";
import { Api, putTo } from "../support/api.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";
import { ABSURD_SPECS, CORPUS_POLICY, type CorpusEntry, imageCorpus } from "../support/image-corpus.ts";

const db = dbTargets()[0];
if (!db) throw new Error("no database target");
const KEY = "bad-input-signing-key-0123456789abcdefgh";
/** IMGUP_PROCESSING_TIMEOUT_MS here; a verdict later than deadline x 3 + 10 s is a hang. */
const DEADLINE_MS = 20_000;
const BOUND_MS = DEADLINE_MS * 3 + 10_000;

/**
 * Every file of the bad-input corpus through the real API: a clear 4xx at the intent or on the
 * upload URL, or a `rejected` reason from the worker; never a crash, a hang or a 5xx.
 */
describe("the bad-input corpus through the HTTP API", () => {
  let run: Running;
  let api: Api;
  let corpus: CorpusEntry[];

  beforeAll(async () => {
    corpus = await imageCorpus();
    run = await startImgup(db.make(), {
      IMGUP_URL_SIGNING_KEYS: KEY,
      IMGUP_RATE_LIMIT_BURST: "10000",
      IMGUP_WORKER_CONCURRENCY: "2",
      IMGUP_PROCESSING_TIMEOUT_MS: String(DEADLINE_MS),
      IMGUP_IMAGE_TASK_MEMORY_MB: String(CORPUS_POLICY.taskMemoryBytes / 2 ** 20),
    });
    api = new Api(run.baseUrl, run.alice);
  });
  afterAll(async () => run?.stop());

  it("has at least 30 entries", () => {
    expect(corpus.length).toBeGreaterThanOrEqual(30);
  });

  it("answers every entry with a 4xx or the expected verdict", async () => {
    const verdicts: Record<string, string> = {};
    for (const [i, entry] of corpus.entries()) {
      // An owner per file: no entry may be answered by another's upload (same-owner dedup).
      const owner = api.as((await run.imgup.auth.createKey({ ownerId: `corpus-${i}` })).key);
      const intent = await owner.createIntent({
        filename: entry.name,
        contentType: entry.declaredType,
        size: entry.bytes.length,
        ...(entry.declaredSha256 ? { sha256: entry.declaredSha256, method: "post" } : {}),
      });
      if (intent.status !== 201) {
        expect(intent.status, entry.name).toBeGreaterThanOrEqual(400);
        expect(intent.status, entry.name).toBeLessThan(500);
        verdicts[entry.name] = `intent ${intent.status} ${intent.body.code}`;
        continue;
      }
      const upload = intent.body.upload;
      let status: number;
      if (upload.method === "post") {
        const form = new FormData();
        for (const [k, v] of Object.entries(upload.fields ?? {})) form.append(k, v);
        form.append("file", new Blob([new Uint8Array(entry.bytes)]), entry.name);
        status = (await fetch(upload.url, { method: "POST", body: form })).status;
      } else {
        status = (await putTo(upload, entry.bytes)).status;
      }
      expect(status, entry.name).toBeLessThan(500);
      if (status >= 300) {
        verdicts[entry.name] = `upload ${status}`;
        continue;
      }
      const image = await owner.settled(intent.body.image.id, BOUND_MS);
      verdicts[entry.name] = image.status === "rejected" ? `rejected:${image.rejectReason}` : image.status;
    }
    for (const entry of corpus) {
      const got = verdicts[entry.name] ?? "";
      if (got.startsWith("intent") || got.startsWith("upload")) continue;
      expect([entry.expect, entry.orElse], entry.name).toContain(got);
    }
    expect((await api.request("GET", "/healthz")).status).toBe(200);
  }, 600_000);

  it("serves a HEIC upload's variants as JPEG/WebP/AVIF and keeps the original HEIC", async () => {
    const heic = readFileSync(new URL("../fixtures/images/quadrants.heic", import.meta.url));
    const { intent } = await api.uploadBytes(heic, { filename: "IMG_0001.HEIC", contentType: "image/heic" });
    const image = await api.settled(intent.image.id, 30_000);
    expect(image).toMatchObject({ status: "ready", format: "heic", width: 320, height: 240 });
    const original = await fetch(image.urls?.original ?? "");
    expect(original.headers.get("content-type")).toBe("image/heic");
    expect(Buffer.from(await original.arrayBuffer()).equals(heic)).toBe(true);
    for (const [accept, type] of [
      ["image/avif", "image/avif"],
      ["image/webp", "image/webp"],
      ["*/*", "image/jpeg"],
    ] as const) {
      const res = await fetch(`${run.baseUrl}/i/${image.id}/small`, { headers: { accept } });
      expect(res.headers.get("content-type")).toBe(type);
      const out = Buffer.from(await res.arrayBuffer());
      const { data, info } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
      expect(info.width).toBe(320);
      // Top-left quadrant is red.
      expect(data[0]).toBeGreaterThan(150);
      expect(data[2]).toBeLessThan(100);
    }
  });

  it("refuses absurd spec values with 400 invalid_spec", async () => {
    const id = "01a20093-bb84-7083-ac30-021ce1fa58b9";
    for (const spec of ABSURD_SPECS) {
      const res = await fetch(`${run.baseUrl}/i/${"A".repeat(43)}/${encodeURIComponent(spec) || "x"}/${id}`);
      // A 10 KB path segment is refused by the router before it reaches us: 414.
      expect([400, 414], spec.slice(0, 40)).toContain(res.status);
      if (res.status === 400) {
        expect(((await res.json()) as { code: string }).code).toMatch(/^(invalid_spec|validation_failed)$/);
      }
    }
    expect(() => transformUrl(run.baseUrl, KEY, "w_0", id)).toThrow();
  });
});
