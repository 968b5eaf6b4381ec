import { ERRORS } from "./errors.ts";
import { sanitizeFilename } from "./filename.ts";
import type { Visibility } from "./image.ts";
import { MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE } from "./multipart.ts";

/** Names clients use for the same format; the canonical one is what gets signed and stored. */
const TYPE_ALIASES: Record<string, string> = {
  "image/jpg": "image/jpeg",
  "image/pjpeg": "image/jpeg",
  "image/heif": "image/heic",
  "image/x-png": "image/png",
};

export interface UploadPolicy {
  maxBytes: number;
  allowedTypes: readonly string[];
  defaultVisibility: Visibility;
}

export interface IntentInput {
  filename: string;
  contentType: string;
  size: number;
  sha256?: string;
  visibility?: Visibility;
  method?: "put" | "post" | "multipart";
  /** Multipart only: the client's own part size (Uppy cuts its chunks before asking). */
  partSize?: number;
  /** The image is deleted unless the app claims it in time (POST /v1/images/{id}/claim). */
  claim?: boolean;
  /** An upload profile's name (domain/profiles.ts). */
  profile?: string;
}

export interface ValidIntent {
  filename: string;
  contentType: string;
  size: number;
  sha256: string | null;
  visibility: Visibility;
  method: "put" | "post" | "multipart";
  partSize: number | null;
}

/** The first of the three checks of an upload (intent, storage signature, worker). */
export function validateIntent(input: IntentInput, policy: UploadPolicy): ValidIntent {
  const filename = sanitizeFilename(input.filename);
  if (filename === "") throw ERRORS.validation("filename must contain a file name", fieldErr("filename"));
  const declared = input.contentType.trim().toLowerCase();
  const contentType = TYPE_ALIASES[declared] ?? declared;
  if (!policy.allowedTypes.includes(contentType)) {
    throw ERRORS.unsupportedMediaType(
      `contentType ${contentType} is not accepted; accepted: ${policy.allowedTypes.join(", ")}`,
      fieldErr("contentType"),
    );
  }
  if (!Number.isSafeInteger(input.size) || input.size < 1) {
    throw ERRORS.validation("size must be a positive integer (empty files are not images)", fieldErr("size"));
  }
  if (input.size > policy.maxBytes) {
    throw ERRORS.payloadTooLarge(`size ${input.size} exceeds the limit of ${policy.maxBytes} bytes`, {
      extra: { field: "size", maxBytes: policy.maxBytes },
    });
  }
  let sha256: string | null = null;
  if (input.sha256 !== undefined) {
    sha256 = input.sha256.toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(sha256))
      throw ERRORS.validation("sha256 must be 64 hex characters", fieldErr("sha256"));
  }
  const method = input.method ?? "put";
  return {
    filename,
    contentType,
    size: input.size,
    sha256,
    visibility: input.visibility ?? policy.defaultVisibility,
    method,
    partSize: validPartSize(input, method),
  };
}

function validPartSize(input: IntentInput, method: ValidIntent["method"]): number | null {
  const partSize = input.partSize;
  if (partSize === undefined) return null;
  if (method !== "multipart")
    throw ERRORS.validation("partSize applies to multipart uploads only", fieldErr("partSize"));
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE || partSize > MAX_PART_SIZE) {
    throw ERRORS.validation(
      `partSize must be between ${MIN_PART_SIZE} and ${MAX_PART_SIZE} bytes`,
      fieldErr("partSize"),
    );
  }
  if (Math.ceil(input.size / partSize) > MAX_PARTS) {
    throw ERRORS.validation(
      `partSize ${partSize} makes more than ${MAX_PARTS} parts; at least ${Math.ceil(input.size / MAX_PARTS)}`,
      fieldErr("partSize"),
    );
  }
  return partSize;
}

function fieldErr(field: string) {
  return { extra: { field } };
}
