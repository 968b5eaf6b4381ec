import type { BucketCorsRule, ObjectStore } from "../storage/object-store.ts";

/** What a browser upload to the bucket needs from its CORS rules, besides the page's origin. */
export const BUCKET_CORS_NEEDS = {
  methods: ["PUT", "POST"],
  /** Headers upload URLs pin (PUT) or the SDK sends; S3 matches them case-insensitively. */
  headers: ["content-type", "content-md5", "if-none-match", "x-amz-checksum-sha256"],
  /** A multipart upload reads each part's ETag; without it the browser sees null. */
  expose: ["ETag"],
} as const;

export interface BucketCorsCheck {
  /** How many rules the bucket has. */
  rules: number;
  /** The origins checked: IMGUP_CORS_ORIGINS (a miss is a failure), then the demo page's (a note). */
  origins: string[];
  /** What is missing for a configured origin: each line says what to add. */
  missing: string[];
  /** What is missing for the demo page's origin only: worth knowing, not a failure. */
  notes: string[];
}

/**
 * Checks the bucket's CORS rules against the origins browsers upload from. null when the storage
 * has no bucket to configure (local: imgup answers CORS itself).
 */
export async function checkBucketCors(
  store: Pick<ObjectStore, "corsRules">,
  origins: { configured: string[]; page?: string | undefined },
  signal?: AbortSignal,
): Promise<BucketCorsCheck | null> {
  const rules = await store.corsRules(signal);
  if (rules === null) return null;
  const check: BucketCorsCheck = { rules: rules.length, origins: [], missing: [], notes: [] };
  const asked = [
    ...origins.configured.map((o) => ({ origin: o, into: check.missing })),
    ...(origins.page && !origins.configured.includes(origins.page)
      ? [{ origin: origins.page, into: check.notes }]
      : []),
  ];
  for (const { origin, into } of asked) {
    check.origins.push(origin);
    const gaps = gapsFor(rules, origin);
    if (gaps.length > 0) into.push(`${origin}: ${gaps.join("; ")}`);
  }
  return check;
}

/** What the best rule for this origin lacks; [] when one rule has it all. */
function gapsFor(rules: BucketCorsRule[], origin: string): string[] {
  const candidates = rules.filter((r) => r.allowedOrigins.some((p) => wildcard(p).test(origin)));
  if (candidates.length === 0) return ["no rule has it in AllowedOrigins"];
  const all = candidates.map((rule) => {
    const gaps: string[] = [];
    const methods = BUCKET_CORS_NEEDS.methods.filter((m) => !rule.allowedMethods.includes(m));
    if (methods.length) gaps.push(`AllowedMethods lacks ${methods.join(", ")}`);
    const headers = BUCKET_CORS_NEEDS.headers.filter(
      (h) => !rule.allowedHeaders.some((p) => wildcard(p.toLowerCase()).test(h)),
    );
    if (headers.length) gaps.push(`AllowedHeaders lacks ${headers.join(", ")}`);
    const expose = BUCKET_CORS_NEEDS.expose.filter(
      (h) => !rule.exposeHeaders.some((e) => e.toLowerCase() === h.toLowerCase()),
    );
    if (expose.length) gaps.push(`ExposeHeaders lacks ${expose.join(", ")}`);
    return gaps;
  });
  return all.reduce((best, gaps) => (gaps.length < best.length ? gaps : best));
}

/** S3's patterns: one `*` matches anything (an origin's subdomain, a header family). */
function wildcard(pattern: string): RegExp {
  const parts = pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\/]/g, "\\$&"));
  return new RegExp(`^${parts.join(".*")}$`);
}

export function printBucketCors(check: BucketCorsCheck | null, print: (line: string) => void): void {
  if (check === null) return;
  if (check.origins.length === 0) {
    for (const line of check.notes) print(`bucket CORS: ${line}`);
    if (check.notes.length === 0) print("bucket CORS: no browser origins configured (IMGUP_CORS_ORIGINS)");
    return;
  }
  print(`bucket CORS: ${check.rules} rules, checked for ${check.origins.join(", ")}`);
  for (const line of check.missing) print(`  missing for ${line}`);
  for (const line of check.notes) print(`  note (demo page) ${line}`);
  if (check.missing.length > 0) print("  see docs/cors.md for the rule to apply (aws s3api put-bucket-cors)");
  else print("  browser uploads to the bucket are allowed");
}
