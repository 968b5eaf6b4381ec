import type { ProfileLimits } from "./profiles.ts";

/** The image lifecycle (docs/architecture.md "Image lifecycle"). Pure: no I/O. */
export const IMAGE_STATUSES = [
  "pending",
  "processing",
  "ready",
  "rejected",
  "expired",
  "deleted",
  /** Valid, awaiting a moderation decision: delivered to its owner (signed URLs) only. */
  "held",
] as const;
export type ImageStatus = (typeof IMAGE_STATUSES)[number];

export const REJECT_REASONS = [
  "not_an_image",
  "unsupported_format",
  "type_mismatch",
  "too_many_pixels",
  "too_large",
  "hash_mismatch",
  "corrupt",
  /** Structurally legal but too costly to decode (JPEG scan count, memory over the task bound). */
  "too_complex",
  /** The image work ran past its deadline. */
  "timeout",
  /** Wider or taller than the upload profile allows. */
  "dimensions_exceeded",
  /** The malware scanner (clamd) found a signature; rejectDetail names it. */
  "malware",
  /** The moderation hook (or an admin) refused it; the hook's reason is the detail. */
  "moderation",
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export type Visibility = "public" | "private";
export type UploadMethod = "put" | "post" | "multipart" | "proxy";

/**
 * Which states may move to which. Every transition in the code is a conditional update
 * `WHERE status IN (from)`, so a repeated event or job is a no-op.
 */
export const TRANSITIONS: Record<ImageStatus, readonly ImageStatus[]> = {
  pending: ["processing", "expired", "deleted"],
  // processing -> processing: a job re-run after a crashed worker's lease lapsed.
  processing: ["processing", "ready", "rejected", "deleted", "held"],
  ready: ["deleted"],
  // A moderation decision (admin API or the hook's callback) ends a hold.
  held: ["ready", "rejected", "deleted"],
  rejected: ["deleted"],
  expired: ["processing", "deleted"],
  deleted: [],
};

/** The states from which `to` may be reached. */
export function sourcesOf(to: ImageStatus): ImageStatus[] {
  return IMAGE_STATUSES.filter((from) => TRANSITIONS[from].includes(to));
}

export function isTerminal(status: ImageStatus): boolean {
  return status === "ready" || status === "rejected" || status === "deleted";
}

export interface ImageRecord {
  id: string;
  ownerId: string;
  status: ImageStatus;
  visibility: Visibility;
  filename: string;
  objectKey: string;
  uploadMethod: UploadMethod;
  declaredContentType: string;
  declaredSize: number;
  declaredSha256: string | null;
  /** Filled by the worker from the bytes, never from the client. */
  contentType: string | null;
  size: number | null;
  width: number | null;
  height: number | null;
  format: string | null;
  sha256: string | null;
  /** ThumbHash (base64) for a blurred preview before the thumbnail loads. */
  placeholder: string | null;
  rejectReason: RejectReason | null;
  rejectDetail: string | null;
  multipartUploadId: string | null;
  multipartPartSize: number | null;
  idempotencyKey: string | null;
  uploadExpiresAt: Date;
  createdAt: Date;
  updatedAt: Date;
  readyAt: Date | null;
  deletedAt: Date | null;
  /** Claim or expire: without a claim by claimExpiresAt the image is deleted. */
  claimRequired: boolean;
  claimExpiresAt: Date | null;
  claimedAt: Date | null;
  /** The app's reference (users/42/avatar), set by a claim. */
  ref: string | null;
  /** The upload profile named by the intent, and its limits as they were then. */
  profile: string | null;
  profileLimits: ProfileLimits | null;
}
