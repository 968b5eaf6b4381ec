/** S3's multipart rules: parts of at least 5 MiB (but the last), at most 10,000 parts. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PARTS = 10_000;
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
/** How many part URLs one response signs; clients ask for more as they go. */
export const PART_URLS_PER_RESPONSE = 100;

export interface PartPlan {
  partSize: number;
  partCount: number;
}

/** The declared size decides the part count; a larger file gets larger parts, never more than 10,000. */
export function planParts(size: number, preferredPartSize: number): PartPlan {
  const partSize = Math.max(preferredPartSize, MIN_PART_SIZE, Math.ceil(size / MAX_PARTS));
  return { partSize, partCount: Math.max(1, Math.ceil(size / partSize)) };
}

/** Part numbers 1..count that are not in `uploaded`, at most `limit` of them. */
export function missingParts(partCount: number, uploaded: Iterable<number>, limit: number): number[] {
  const have = new Set(uploaded);
  const out: number[] = [];
  for (let n = 1; n <= partCount && out.length < limit; n++) if (!have.has(n)) out.push(n);
  return out;
}
