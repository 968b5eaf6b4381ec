import { ImgupError, UploadRejectedError } from "../errors.ts";
import type { ImageView, UploadOptions, UploadProgress } from "../types.ts";
import {
  check,
  checkProgress,
  equal,
  FAST,
  FIXTURES,
  type FixtureKind,
  PART_SIZE,
  plainClient,
  Recorder,
  rejection,
  type ScenarioContext,
} from "./support.ts";

/** Uploads a fresh fixture with a plain client (XHR in a browser) and checks what came out. */
async function uploadsAndIsReady(
  ctx: ScenarioContext,
  kind: FixtureKind,
  opts: UploadOptions,
): Promise<{ image: ImageView; file: Blob }> {
  const file = await ctx.file(kind);
  const log: UploadProgress[] = [];
  const { image } = await plainClient(ctx).upload(file, { ...opts, onProgress: (p) => log.push(p) });
  checkProgress(log, file.size);
  const uploading = log.filter((p) => p.phase === "uploading").map((p) => p.loaded);
  check(
    uploading.every((loaded, i) => i === 0 || loaded >= (uploading[i - 1] ?? 0)),
    "upload progress never goes back without a failure",
  );
  equal(image.status, "ready", "status");
  equal([image.width, image.height], [FIXTURES[kind].width, FIXTURES[kind].height], "dimensions");
  equal(image.size, file.size, "size");
  check(image.urls?.original, "a ready image has its original URL");
  return { image, file };
}

export async function putUploadBecomesReady(ctx: ScenarioContext): Promise<void> {
  const { image } = await uploadsAndIsReady(ctx, "jpeg", { filename: "put.jpg" });
  equal([image.format, image.filename], ["jpeg", "put.jpg"], "format and filename");
}

export async function postUploadBecomesReady(ctx: ScenarioContext): Promise<void> {
  const { image } = await uploadsAndIsReady(ctx, "png", { method: "post", filename: "form.png" });
  equal(image.format, "png", "format");
}

export async function multipartUploadBecomesReady(ctx: ScenarioContext): Promise<void> {
  // Above multipartThresholdBytes (5 MiB here), so "multipart" without asking.
  const { image, file } = await uploadsAndIsReady(ctx, "large", { filename: "large.png" });
  check(file.size > 3 * PART_SIZE, "the large fixture spans four parts");
  const original = await ctx.fetch(image.urls?.original ?? "");
  equal((await original.arrayBuffer()).byteLength, file.size, "the original's length");
}

export async function dedupSkipsTheUpload(ctx: ScenarioContext): Promise<void> {
  const file = await ctx.file("jpeg");
  const original = await new Recorder(ctx).client(FAST).upload(file);
  equal(original.deduplicated, false, "the first upload's deduplicated");
  const again = new Recorder(ctx);
  const log: UploadProgress[] = [];
  const duplicate = await again.client(FAST).upload(file, { onProgress: (p) => log.push(p) });
  equal(duplicate.image.id, original.image.id, "the same image");
  equal(duplicate.deduplicated, true, "the second upload's deduplicated");
  equal(again.storageRequests().length, 0, "storage requests of the duplicate");
  check(!log.some((p) => p.phase === "uploading"), "no upload phase");
}

/** dedup: false sends no hash: the same bytes again become an image of their own. */
export async function dedupOffKeepsSeparateImages(ctx: ScenarioContext): Promise<void> {
  const file = await ctx.file("png");
  const first = await plainClient(ctx).upload(file);
  const log: UploadProgress[] = [];
  const rec = new Recorder(ctx);
  const second = await rec.client(FAST).upload(file, { dedup: false, onProgress: (p) => log.push(p) });
  check(second.image.id !== first.image.id, "a new image id");
  equal(second.deduplicated, false, "deduplicated with dedup: false");
  equal(second.image.status, "ready", "status");
  equal(second.image.sha256, first.image.sha256, "the server's hash of the same bytes");
  check(!log.some((p) => p.phase === "hashing"), "no hashing phase");
  check(rec.storageRequests().length > 0, "the bytes were sent");
}

export async function rejectedUploadThrowsTheReason(ctx: ScenarioContext): Promise<void> {
  const file = await ctx.file("notAnImage");
  const rejected = await rejection(() => plainClient(ctx).upload(file), "uploading text as a PNG");
  check(rejected instanceof UploadRejectedError, `an UploadRejectedError (got ${String(rejected)})`);
  check(rejected instanceof ImgupError, "an ImgupError too");
  equal([rejected.code, rejected.reason], ["upload_rejected", "not_an_image"], "code and reason");
  equal(rejected.image.status, "rejected", "the image's status");
}

export async function cancellingAbortsTheIntent(ctx: ScenarioContext): Promise<void> {
  // Part 1 goes through; the others hang until the abort, so it lands mid-upload.
  const rec = new Recorder(ctx, async (req, init) => {
    if ((req.partNumber ?? 0) < 2) return undefined;
    return new Promise<Response>((_resolve, reject) => {
      const signal = init?.signal;
      signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  });
  const controller = new AbortController();
  const file = await ctx.file("large");
  const err = await rejection(
    () =>
      rec.client(FAST).upload(file, {
        signal: controller.signal,
        onProgress: (p) => {
          if (p.phase === "uploading" && p.loaded >= PART_SIZE) controller.abort();
        },
      }),
    "a cancelled upload",
  );
  equal((err as Error).name, "AbortError", "the rejection's name");
  const intent = rec.requests.find((r) => r.method === "POST" && r.url.endsWith("/v1/uploads"));
  const aborted = rec.requests.find((r) => r.method === "DELETE" && r.url.includes("/v1/uploads/"));
  check(intent && aborted, "the intent was made and then deleted");
  equal(aborted.status, 204, "DELETE /v1/uploads/{id}");
  const imageId = aborted.url.split("/v1/uploads/")[1] ?? "";
  const gone = await rejection(() => plainClient(ctx).getImage(imageId), "the aborted image");
  equal((gone as ImgupError).status, 404, "the aborted image is gone");
}
