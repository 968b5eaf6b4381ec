import { ImgupError } from "./errors.ts";
import { withRetries } from "./retry.ts";
import type { Transfer } from "./transfer.ts";
import type { PostUpload, PutUpload } from "./wire.ts";

export interface SingleUploadContext {
  transfer: Transfer;
  retries: number;
  signal: AbortSignal;
  onProgress: (loaded: number) => void;
  /** The intent was a replay: an earlier attempt may have stored the object already. */
  mayExist: boolean;
}

/** Headers a browser sets itself and refuses from scripts; the runtime derives them from the body. */
const RUNTIME_HEADERS = new Set(["content-length", "host"]);

export function sendableHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).filter(([name]) => !RUNTIME_HEADERS.has(name.toLowerCase())),
  );
}

/**
 * The whole file in one request: a PUT with exactly the headers imgup signed (Content-Type,
 * If-None-Match, the checksum), or a form POST with the signed fields then the file.
 */
export async function sendSingle(file: Blob, upload: PutUpload | PostUpload, ctx: SingleUploadContext) {
  const request =
    upload.method === "put"
      ? { method: "PUT" as const, headers: sendableHeaders(upload.headers), body: file }
      : formRequest(file, upload.fields);
  const scale = file.size / Math.max(1, request.body.size);
  await withRetries(
    async (attempt) => {
      ctx.onProgress(0);
      try {
        await ctx.transfer({
          ...request,
          url: upload.url,
          signal: ctx.signal,
          onProgress: (loaded) => ctx.onProgress(Math.round(loaded * scale)),
        });
      } catch (err) {
        // If-None-Match: * refuses a second write: after a lost answer, that means it is stored.
        if ((attempt > 0 || ctx.mayExist) && isAlreadyStored(err)) return;
        throw err;
      }
    },
    { retries: ctx.retries, signal: ctx.signal },
  );
  ctx.onProgress(file.size);
}

function isAlreadyStored(err: unknown): boolean {
  return err instanceof ImgupError && (err.status === 412 || err.code === "object_exists");
}

/**
 * The form as one Blob (fields, then the file last, as S3 requires): its length is known, so it
 * streams with progress like a PUT, and the file stays a disk-backed slice.
 */
function formRequest(file: Blob, fields: Record<string, string>) {
  const boundary = `----imgup${crypto.randomUUID().replaceAll("-", "")}`;
  const parts: BlobPart[] = [];
  for (const [name, value] of Object.entries(fields)) {
    parts.push(`--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n\r\n${value}\r\n`);
  }
  const type = fields["Content-Type"] ?? fields["content-type"] ?? "application/octet-stream";
  parts.push(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="upload"\r\nContent-Type: ${type}\r\n\r\n`,
    file,
    `\r\n--${boundary}--\r\n`,
  );
  return {
    method: "POST" as const,
    headers: { "Content-Type": `multipart/form-data; boundary=${boundary}` },
    body: new Blob(parts),
  };
}

/** Form field names are quoted strings: the HTML spec percent-encodes these three. */
function quote(name: string): string {
  return name.replaceAll('"', "%22").replaceAll("\r", "%0D").replaceAll("\n", "%0A");
}
