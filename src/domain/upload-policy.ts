import { ERRORS } from "./errors.ts";
import { sanitizeFilename } from "./filename.ts";
import type { Visibility } from "./image.ts";

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
}

export interface ValidIntent {
  filename: string;
  contentType: string;
  size: number;
  sha256: string | null;
  visibility: Visibility;
  method: "put" | "post" | "multipart";
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
  return {
    filename,
    contentType,
    size: input.size,
    sha256,
    visibility: input.visibility ?? policy.defaultVisibility,
    method: input.method ?? "put",
  };
}

function fieldErr(field: string) {
  return { extra: { field } };
}
