import { randomBytes } from "node:crypto";

/**
 * UUIDv7 (RFC 9562): time-ordered, so the newest-first listing can page by id alone and
 * inserts stay local in the primary-key index.
 */
export function newImageId(now: number = Date.now(), random: Buffer = randomBytes(10)): string {
  const b = Buffer.alloc(16);
  b.writeUIntBE(now, 0, 6);
  random.copy(b, 6, 0, 10);
  b[6] = 0x70 | ((b[6] ?? 0) & 0x0f);
  b[8] = 0x80 | ((b[8] ?? 0) & 0x3f);
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
