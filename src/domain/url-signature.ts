import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Expiring signatures for private delivery URLs: `?exp=<unix seconds>&sig=<hmac>`.
 * The HMAC covers the path and the expiry, so neither can be changed.
 */
export function signPath(secret: string, path: string, exp: number): string {
  return createHmac("sha256", secret).update(`${path}\n${exp}`).digest("base64url");
}

export function verifyPathSignature(
  secret: string,
  path: string,
  exp: string | undefined,
  sig: string | undefined,
  nowSeconds: number,
): boolean {
  if (!exp || !sig || !/^\d{1,12}$/.test(exp)) return false;
  const expN = Number(exp);
  if (expN < nowSeconds) return false;
  const expected = Buffer.from(signPath(secret, path, expN));
  const given = Buffer.from(sig);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** Signature of an on-the-fly transform URL `/i/{signature}/{spec}/{imageId}` (imgproxy style). */
export function signTransform(key: string, canonicalSpec: string, imageId: string): string {
  return createHmac("sha256", key).update(`/${canonicalSpec}/${imageId}`).digest("base64url");
}

/** Any of the keys may have signed it, so keys can be rotated without breaking published URLs. */
export function verifyTransformSignature(
  keys: readonly string[],
  canonicalSpec: string,
  imageId: string,
  signature: string,
): boolean {
  const given = Buffer.from(signature);
  let ok = false;
  for (const key of keys) {
    const expected = Buffer.from(signTransform(key, canonicalSpec, imageId));
    // Check every key, matched or not, so timing does not tell which key signed.
    if (expected.length === given.length && timingSafeEqual(expected, given)) ok = true;
  }
  return ok;
}
