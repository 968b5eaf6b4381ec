import { uppyAwsS3Options } from "../uppy.ts";
import { check, equal, plainClient, rejection, type ScenarioContext } from "./support.ts";

/**
 * The Uppy adapter driven exactly as @uppy/aws-s3 drives it: v6 signs each S3 request with
 * signRequest and sends it itself (S3mini: the file's Content-Type, then the signed headers), v5
 * calls its six functions. No Uppy here: these run anywhere fetch does.
 */

const tag = (xml: string, name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];

async function uppyFile(ctx: ScenarioContext, kind: "jpeg" | "large") {
  const data = await ctx.file(kind);
  return {
    id: `uppy-${kind}-${crypto.randomUUID()}`,
    name: `uppy-${kind}`,
    type: data.type,
    size: data.size,
    data,
  };
}

/** S3's chunking as @uppy/aws-s3 does it: getChunkSize, at least 5 MiB. */
function chunksOf(size: number, chunkSize: number): { partNumber: number; start: number; end: number }[] {
  const step = Math.max(chunkSize, 5 * 1024 * 1024);
  const chunks = [];
  for (let start = 0, n = 1; start < size; start += step, n++)
    chunks.push({ partNumber: n, start, end: Math.min(size, start + step) });
  return chunks;
}

export async function uppySignRequestPutBecomesReady(ctx: ScenarioContext): Promise<void> {
  const options = uppyAwsS3Options(plainClient(ctx));
  const file = await uppyFile(ctx, "jpeg");
  check(!options.shouldUseMultipart(file), "a small file is a single PUT");
  const signed = await options.signRequest({
    method: "PUT",
    key: options.generateObjectKey(file),
    contentType: file.type,
  });
  const put = await ctx.fetch(signed.url, {
    method: "PUT",
    headers: { "Content-Type": file.type, ...signed.headers },
    body: file.data,
  });
  equal(put.status, 200, "the storage's answer to the PUT");
  equal(signed.key, options.imageIdOf(file), "Uppy's key is the image id");
  const image = await options.waitForReady(file);
  equal([image.id, image.status], [signed.key, "ready"], "the image");
}

export async function uppySignRequestMultipartBecomesReady(ctx: ScenarioContext): Promise<void> {
  const options = uppyAwsS3Options(plainClient(ctx));
  const file = await uppyFile(ctx, "large");
  check(options.shouldUseMultipart(file), "a large file is multipart");
  const created = await options.signRequest({ method: "POST", key: options.generateObjectKey(file) });
  const initiated = await (
    await ctx.fetch(created.url, { method: "POST", headers: { "Content-Type": file.type } })
  ).text();
  const uploadId = tag(initiated, "UploadId");
  const key = created.key ?? "";
  check(
    uploadId && tag(initiated, "Key") === key && key === options.imageIdOf(file),
    "create: UploadId and Key",
  );
  const chunks = chunksOf(file.size, options.getChunkSize(file));
  for (const chunk of chunks) {
    if (chunk.partNumber === chunks.length) {
      // Uppy resuming after a reload lists the parts first.
      const list = await options.signRequest({ method: "GET", key, uploadId });
      const listed = await (await ctx.fetch(list.url)).text();
      equal(listed.match(/<Part>/g)?.length, chunks.length - 1, "parts listed before the last one");
    }
    const part = await options.signRequest({ method: "PUT", key, uploadId, partNumber: chunk.partNumber });
    const res = await ctx.fetch(part.url, { method: "PUT", body: file.data.slice(chunk.start, chunk.end) });
    check(res.ok && res.headers.get("etag"), `part ${chunk.partNumber} stored with an ETag`);
  }
  const complete = await options.signRequest({ method: "POST", key, uploadId });
  const body = "<CompleteMultipartUpload></CompleteMultipartUpload>";
  const completed = await (await ctx.fetch(complete.url, { method: "POST", body })).text();
  check(tag(completed, "Location") && tag(completed, "Key") === key, "complete: Location and Key");
  const image = await options.waitForReady(file);
  equal([image.id, image.status, image.size], [key, "ready", file.size], "the image");
}

export async function uppySignRequestAbortRemovesTheUpload(ctx: ScenarioContext): Promise<void> {
  const client = plainClient(ctx);
  const options = uppyAwsS3Options(client);
  const file = await uppyFile(ctx, "large");
  const created = await options.signRequest({ method: "POST", key: options.generateObjectKey(file) });
  const key = created.key ?? "";
  const initiated = await (await ctx.fetch(created.url, { method: "POST" })).text();
  const uploadId = tag(initiated, "UploadId") ?? "";
  const aborted = await options.signRequest({ method: "DELETE", key, uploadId });
  equal((await ctx.fetch(aborted.url, { method: "DELETE" })).status, 200, "the abort's answer");
  const gone = await rejection(() => client.getImage(key), "the aborted upload");
  equal((gone as { status?: number }).status, 404, "the aborted upload is gone");
}

export async function uppyV5FunctionsUploadPutAndMultipart(ctx: ScenarioContext): Promise<void> {
  const options = uppyAwsS3Options(plainClient(ctx));
  const small = await uppyFile(ctx, "jpeg");
  const params = await options.getUploadParameters(small);
  const put = await ctx.fetch(params.url, {
    method: params.method,
    headers: params.headers ?? {},
    body: small.data,
  });
  equal(put.status, 200, "the PUT");
  equal((await options.waitForReady(small)).status, "ready", "the PUT upload");

  const large = await uppyFile(ctx, "large");
  const { uploadId, key } = await options.createMultipartUpload(large);
  const parts = [];
  for (const chunk of chunksOf(large.size, options.getChunkSize(large))) {
    const { url } = await options.signPart(large, { uploadId, key, partNumber: chunk.partNumber });
    const res = await ctx.fetch(url, { method: "PUT", body: large.data.slice(chunk.start, chunk.end) });
    parts.push({ PartNumber: chunk.partNumber, ETag: res.headers.get("etag") ?? "" });
  }
  const listed = await options.listParts(large, { uploadId, key });
  equal(
    listed.map((p) => p.PartNumber),
    parts.map((p) => p.PartNumber),
    "listParts",
  );
  const { location } = await options.completeMultipartUpload(large, { uploadId, key, parts });
  check(location.endsWith(`/v1/images/${key}`), "the location names the image");
  const image = await options.waitForReady(large);
  equal([image.id, image.status], [key, "ready"], "the multipart upload");
}

export async function uppyV5FunctionsUploadAForm(ctx: ScenarioContext): Promise<void> {
  const options = uppyAwsS3Options(plainClient(ctx), { method: "post" });
  const file = await uppyFile(ctx, "jpeg");
  const params = await options.getUploadParameters(file);
  equal(params.method, "POST", "a form upload");
  const form = new FormData();
  for (const [name, value] of Object.entries(params.fields ?? {})) form.append(name, value);
  form.append("file", file.data, file.name);
  const posted = await ctx.fetch(params.url, { method: "POST", body: form });
  check(posted.ok, `the form POST (${posted.status})`);
  equal((await options.waitForReady(file)).status, "ready", "the form upload");
}
