import type { IncomingHttpHeaders } from "node:http";
import { PassThrough, type Readable } from "node:stream";
import busboy from "busboy";
import { type AppError, ERRORS, isAppError } from "../domain/errors.ts";

export const FORM_FIELDS = ["visibility", "filename", "sha256"] as const;
export type FormField = (typeof FORM_FIELDS)[number];

/** Bytes a form may carry besides the file: boundaries, part headers, the small fields. */
export const FORM_OVERHEAD_BYTES = 64 * 1024;

export interface MultipartFile {
  /** The fields sent before the file part. */
  fields: Partial<Record<FormField, string>>;
  filename: string | undefined;
  mimeType: string;
  /** The file's bytes, as they arrive; destroying the stream stops reading the request. */
  stream: Readable;
  /** Settles once the whole form is read: rejects (400) on a second file or a field after the file. */
  rest: () => Promise<void>;
}

/**
 * Reads a multipart/form-data body up to its `file` part and hands that part over as a stream:
 * the fields come first (they are small), the file is never buffered, and whatever follows it is
 * checked once the file is stored. Rejects (400) when the form is malformed, has no file, has an
 * unknown field, or another file part comes first.
 */
export function receiveMultipartFile(body: Readable, headers: IncomingHttpHeaders): Promise<MultipartFile> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers,
        limits: { fields: FORM_FIELDS.length, fieldSize: 2048, fieldNameSize: 64, files: 1, parts: 8 },
      });
    } catch (err) {
      reject(ERRORS.validation(`the body is not valid multipart/form-data: ${(err as Error).message}`));
      return;
    }
    const fields: MultipartFile["fields"] = {};
    let file: MultipartFile | null = null;
    let failure: AppError | null = null;
    let finished = false;
    let settleRest: { resolve: () => void; reject: (err: AppError) => void } | null = null;
    const rest = new Promise<void>((res, rej) => {
      settleRest = { resolve: res, reject: rej };
    });
    rest.catch(() => undefined);

    const stopReading = () => {
      body.unpipe(parser);
      body.pause();
      parser.destroy();
    };
    const fail = (err: AppError) => {
      if (failure || finished) return;
      failure = err;
      // The file stream first: destroying the parser would end it with busboy's own error.
      if (file) {
        file.stream.destroy(err);
        settleRest?.reject(err);
      } else reject(err);
      stopReading();
    };

    parser.on("field", (name, value, info) => {
      if (file) return fail(ERRORS.validation(`the field "${name}" comes after the file; send fields first`));
      if (name === "file") {
        return fail(
          ERRORS.validation('the "file" part has no filename: send it as a file (curl -F file=@photo.jpg)'),
        );
      }
      if (!(FORM_FIELDS as readonly string[]).includes(name)) {
        return fail(
          ERRORS.validation(`unknown form field "${name}"; accepted: ${FORM_FIELDS.join(", ")}, file`),
        );
      }
      if (info.valueTruncated) return fail(ERRORS.validation(`the form field "${name}" is too long`));
      fields[name as FormField] = value;
    });
    parser.on("file", (name, part, info) => {
      // Destroying the parser fails its file stream; the consumer, if any, sees that on its own.
      part.on("error", () => undefined);
      if (name !== "file") {
        part.resume();
        return fail(ERRORS.validation(`unexpected file part "${name}": send the image as the part "file"`));
      }
      // The consumer reads this copy: busboy fails its own stream with a bare Error (a form cut
      // short) before the parser reports it, and the consumer must see a 400, not an error of ours.
      const stream = new PassThrough();
      stream.on("error", () => undefined);
      part.on("error", (err: Error) =>
        fail(isAppError(err) ? err : ERRORS.validation(`malformed multipart body: ${err.message}`)),
      );
      part.pipe(stream);
      file = { fields, filename: info.filename, mimeType: info.mimeType, stream, rest: () => rest };
      // The consumer gave up on the file (limit, hash, storage failure): stop reading the form.
      stream.once("close", () => {
        if (!stream.readableEnded) {
          part.unpipe(stream);
          part.resume();
          stopReading();
        }
      });
      resolve(file);
    });
    parser.on("filesLimit", () => fail(ERRORS.validation("send exactly one file part")));
    parser.on("fieldsLimit", () => fail(ERRORS.validation("too many form fields")));
    parser.on("partsLimit", () => fail(ERRORS.validation("too many form parts")));
    parser.on("error", (err: Error) => fail(ERRORS.validation(`malformed multipart body: ${err.message}`)));
    parser.on("close", () => {
      if (failure) return;
      if (!file) return fail(ERRORS.validation('the form has no "file" part'));
      finished = true;
      settleRest?.resolve();
    });
    let ended = false;
    body.once("end", () => {
      ended = true;
    });
    // A body the wire limits cut (too slow, too large) fails with their error, which names the cause.
    body.on("error", (err) =>
      fail(isAppError(err) ? err : ERRORS.incompleteBody(`the body failed: ${err.message}`)),
    );
    body.once("close", () => {
      if (!ended) fail(ERRORS.incompleteBody("the client went away before the body ended"));
    });
    body.pipe(parser);
  });
}
