import type { ImageView } from "./types.ts";

/** An app event: the body of a webhook and an item of `GET /v1/events`. */
export interface WebhookEvent {
  /** evt_…, also the `webhook-id` header: the same across retries and replays. */
  id: string;
  type: "image.ready" | "image.rejected" | "image.deleted" | "image.expired" | "image.claimed" | "image.held";
  timestamp: string;
  data: ImageView;
}

export type WebhookVerificationCode =
  | "invalid_secret"
  | "missing_headers"
  | "invalid_timestamp"
  | "timestamp_out_of_tolerance"
  | "invalid_signature"
  | "invalid_payload";

/** Why a webhook was refused; answer it with 400 (or 401) and do not act on it. */
export class WebhookVerificationError extends Error {
  readonly code: WebhookVerificationCode;

  constructor(code: WebhookVerificationCode, message: string) {
    super(`${code}: ${message}`);
    this.name = "WebhookVerificationError";
    this.code = code;
  }
}

/** A Fetch `Headers`, or Node's `req.headers` (lower-case names; arrays for repeated headers). */
export type WebhookHeaders =
  | { get(name: string): string | null }
  | Record<string, string | string[] | undefined>;

export interface VerifyWebhookOptions {
  /** Timestamps further than this from now are refused (replay protection). Default 300 s. */
  toleranceSeconds?: number;
  /** Milliseconds since the epoch; tests pass their own. */
  now?: () => number;
}

const encoder = new TextEncoder();

function header(headers: WebhookHeaders, name: string): string | null {
  if (typeof (headers as { get?: unknown }).get === "function") {
    return (headers as { get(name: string): string | null }).get(name);
  }
  const record = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? (value[0] ?? null) : (value ?? null);
}

function base64ToBytes(b64: string): Uint8Array | null {
  try {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}

async function hmacKey(secret: string): Promise<CryptoKey> {
  const raw = base64ToBytes(secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret);
  if (!raw || raw.length === 0)
    throw new WebhookVerificationError("invalid_secret", "the secret is not whsec_<base64>");
  return crypto.subtle.importKey("raw", raw as BufferSource, { name: "HMAC", hash: "SHA-256" }, false, [
    "verify",
  ]);
}

/**
 * Checks a webhook from imgup (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
 * `webhook-signature`) and returns its event. `body` must be the raw body exactly as received (not
 * re-serialized JSON). `secret` is the endpoint's `whsec_…`; pass two while rotating. Any of the
 * space-separated `v1,` signatures matching any secret is enough; the comparison is constant-time
 * (WebCrypto's HMAC verify). Throws WebhookVerificationError otherwise. Browsers and Node ≥ 20.
 */
export async function verifyWebhook<T = WebhookEvent>(
  body: string | Uint8Array,
  headers: WebhookHeaders,
  secret: string | readonly string[],
  options: VerifyWebhookOptions = {},
): Promise<T> {
  const keys = await Promise.all((typeof secret === "string" ? [secret] : [...secret]).map(hmacKey));
  if (keys.length === 0) throw new WebhookVerificationError("invalid_secret", "no secret given");
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestamp || !signatures) {
    throw new WebhookVerificationError(
      "missing_headers",
      "webhook-id, webhook-timestamp and webhook-signature are required",
    );
  }
  if (!/^\d{1,15}$/.test(timestamp))
    throw new WebhookVerificationError("invalid_timestamp", "not a number of seconds");
  const now = Math.floor((options.now ?? Date.now)() / 1000);
  const tolerance = options.toleranceSeconds ?? 300;
  if (Math.abs(now - Number(timestamp)) > tolerance) {
    throw new WebhookVerificationError("timestamp_out_of_tolerance", `more than ${tolerance} s from now`);
  }
  const bodyBytes = typeof body === "string" ? encoder.encode(body) : body;
  const prefix = encoder.encode(`${id}.${timestamp}.`);
  const signed = new Uint8Array(prefix.length + bodyBytes.length);
  signed.set(prefix, 0);
  signed.set(bodyBytes, prefix.length);
  for (const item of signatures.split(" ")) {
    const [version, b64] = item.split(",", 2);
    if (version !== "v1" || !b64) continue;
    const sig = base64ToBytes(b64);
    if (!sig) continue;
    for (const key of keys) {
      if (await crypto.subtle.verify("HMAC", key, sig as BufferSource, signed as BufferSource)) {
        try {
          return JSON.parse(typeof body === "string" ? body : new TextDecoder().decode(body)) as T;
        } catch {
          throw new WebhookVerificationError("invalid_payload", "the body is not JSON");
        }
      }
    }
  }
  throw new WebhookVerificationError("invalid_signature", "no signature matches");
}
