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
