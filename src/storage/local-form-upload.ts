import { rm } from "node:fs/promises";
import type { IncomingHttpHeaders } from "node:http";
import { finished, type Readable } from "node:stream";
import busboy from "busboy";
import { ERRORS, isAppError } from "../domain/errors.ts";
import { type Dirs, type TempFile, validateKey, writeTemp } from "./local-files.ts";
import { verifyPolicy } from "./local-signing.ts";

export interface FormUploadDeps {
  dirs: Dirs;
  secret: string;
  maxObjectBytes: number;
  now: () => number;
  exists: (key: string) => Promise<boolean>;
}

export interface ReceivedForm {
  key: string;
  contentType: string;
  /** Verified against the policy, not yet published. */
  temp: TempFile;
}

/**
 * Receives an S3-style browser form upload: the fields (key, Content-Type, policy, signature) come
 * before the `file` part, so every check is done before the first file byte reaches the disk.
 * Fields after the file are ignored, as S3 does. The result is only returned once the whole form
 * has been read, so a malformed tail never leaves a published object behind.
 */
export function receiveForm(
  deps: FormUploadDeps,
  headers: Record<string, string | string[] | undefined>,
  body: Readable,
): Promise<ReceivedForm> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: lowerCaseKeys(headers) as IncomingHttpHeaders,
        limits: { fields: 20, fieldSize: 64 * 1024, files: 1, parts: 32 },
      });
    } catch {
      body.resume();
      reject(ERRORS.validation("The body must be multipart/form-data"));
      return;
    }
    const fields = new Map<string, string>();
    let received: Promise<ReceivedForm> | undefined;
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      // Stop parsing but keep draining, so the connection can still carry the error response.
      body.unpipe(parser);
      body.resume();
      parser.destroy();
      // Destroying the parser ends the file stream, so a pending write settles; answer only once
      // its temp file is gone, so a refused upload leaves nothing behind when the client hears of it.
      const pending = received?.then((form) => rm(form.temp.path, { force: true })).catch(() => {});
      void Promise.resolve(pending).then(() => reject(err));
    };
    parser.on("field", (name, value) => {
      if (!received) fields.set(name.toLowerCase(), value);
    });
    parser.on("file", (name, stream) => {
      // Destroying the parser (a refusal, a broken body) fails this stream with busboy's
      // "Unexpected end of file"; whoever reads it sees that on their own, and an unread or
      // abandoned part must not turn it into an unhandled 'error' that ends the process.
      stream.on("error", () => undefined);
      if (received || name !== "file") {
        stream.resume();
        return;
      }
      received = acceptFile(deps, fields, stream);
      received.catch(fail);
    });
    parser.on("error", (err) =>
      fail(isAppError(err) ? err : ERRORS.validation(`Malformed form: ${errMessage(err)}`)),
    );
    parser.on("close", () => {
      if (failed) return;
      if (!received) return fail(ERRORS.validation("The form has no file field"));
      received.then((form) => (failed ? undefined : resolve(form)), fail);
    });
    // A body the wire limits cut (too slow) fails with their error; keep it, it names the cause.
    body.on("error", (err) => fail(isAppError(err) ? err : ERRORS.incompleteBody(errMessage(err))));
    finished(body, (err) => {
      if (err && !failed) {
        fail(ERRORS.incompleteBody(`The request body failed: ${errMessage(err)}`));
      }
    });
    body.pipe(parser);
  });
}

async function acceptFile(
  deps: FormUploadDeps,
  fields: Map<string, string>,
  file: Readable,
): Promise<ReceivedForm> {
  try {
    const encoded = fields.get("policy");
    const signature = fields.get("signature");
    if (!encoded || !signature) throw ERRORS.signatureMismatch("The form has no policy or no signature");
    const policy = verifyPolicy(deps.secret, encoded, signature);
    if (!policy) throw ERRORS.signatureMismatch();
    if (Date.parse(policy.expiresAt) <= deps.now()) throw ERRORS.urlExpired();
    if (fields.get("key") !== policy.key)
      throw ERRORS.policyConditionFailed("The key differs from the policy's");
    if (fields.get("content-type") !== policy.contentType) throw ERRORS.contentTypeMismatch();
    validateKey(policy.key);
    if (await deps.exists(policy.key)) throw ERRORS.objectExists();
    const temp = await writeTemp(deps.dirs, file, {
      limit: Math.min(policy.maxBytes, deps.maxObjectBytes),
      overLimit: () => ERRORS.entityTooLarge(),
    });
    if (temp.size < policy.minBytes) {
      await rm(temp.path, { force: true });
      throw ERRORS.entityTooSmall();
    }
    return { key: policy.key, contentType: policy.contentType, temp };
  } catch (err) {
    file.resume();
    throw err;
  }
}

function lowerCaseKeys(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined) out[name.toLowerCase()] = value;
  return out;
}

const errMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));
