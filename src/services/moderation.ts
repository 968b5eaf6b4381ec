import { signPath, verifyPathSignature } from "../domain/url-signature.ts";

/**
 * The external validation / moderation hook (IMGUP_VALIDATION_URL, docs/moderation.md): the port
 * the worker and the HTTP layer share, the decision format and the signed review URL.
 */

/** What the hook is told about a valid image, right before it would turn ready. */
export interface ModerationRequest {
  imageId: string;
  ownerId: string;
  contentType: string;
  size: number;
  width: number;
  height: number;
  sha256: string;
  /** A short-lived signed URL to the original, readable while the image is processing or held. */
  url: string;
}

export type ModerationDecision =
  | { decision: "allow" }
  | { decision: "reject"; reason: string }
  | { decision: "hold" };

/** The hook gave no decision: down, timed out, 5xx (any non-2xx), or an answer that is not one. */
export class ModerationUnavailableError extends Error {
  override name = "ModerationUnavailableError";
}

/** The port: one call of the hook. Throws ModerationUnavailableError when there is no decision. */
export interface ModerationHook {
  review(request: ModerationRequest, signal?: AbortSignal): Promise<ModerationDecision>;
}

/** Longest reason kept (rejectDetail is shown to the owner; a hook may send anything). */
export const MAX_REASON_LENGTH = 500;

/** The hook's JSON answer as a decision; null when it is none of the three shapes. */
export function parseDecision(value: unknown): ModerationDecision | null {
  if (typeof value !== "object" || value === null) return null;
  const { decision, reason } = value as { decision?: unknown; reason?: unknown };
  if (decision === "allow" || decision === "hold") return { decision };
  if (decision !== "reject") return null;
  const text = typeof reason === "string" && reason.trim() !== "" ? reason.trim() : "rejected by moderation";
  return { decision: "reject", reason: text.slice(0, MAX_REASON_LENGTH) };
}

/** The path the hook fetches the original from; signed with the validation secret, not the delivery key. */
export function reviewPath(imageId: string): string {
  return `/v1/moderation/images/${imageId}/original`;
}

export function reviewUrl(
  publicUrl: string,
  secret: string,
  imageId: string,
  ttlSeconds: number,
  nowMs: number,
): string {
  const path = reviewPath(imageId);
  const exp = Math.floor(nowMs / 1000) + ttlSeconds;
  return `${publicUrl}${path}?exp=${exp}&sig=${signPath(secret, path, exp)}`;
}

export function verifyReviewUrl(
  secret: string,
  imageId: string,
  query: { exp?: string; sig?: string },
  nowMs: number,
): boolean {
  return verifyPathSignature(secret, reviewPath(imageId), query.exp, query.sig, Math.floor(nowMs / 1000));
}
