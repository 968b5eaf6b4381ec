/**
 * What went wrong reaching a backend, in the operator's words: the setting to look at and the cause.
 * Pure (no I/O): the start-up checks, the CLI and /readyz all describe a failure the same way.
 */

export type BackendSetting = "DATABASE_URL" | "REDIS_URL" | "S3_ENDPOINT" | "S3_BUCKET" | "S3_ACCESS_KEY_ID";

export type BackendCause =
  | "dns"
  | "refused"
  | "timeout"
  | "auth"
  | "missing-database"
  | "missing-bucket"
  | "tls"
  | "invalid-url"
  | "unknown";

export interface BackendProblem {
  setting: BackendSetting;
  cause: BackendCause;
  /** One line naming the setting and the cause, e.g. `DATABASE_URL: host "db.internal" not found (DNS)`. */
  message: string;
}

export type Backend = "database" | "redis" | "s3";

/** What the message may name; URLs are shown without their credentials. */
export interface BackendContext {
  url?: string;
  bucket?: string;
}

/** A thrown error carrying its classification, so callers up the stack print one clear line. */
export class BackendError extends Error {
  constructor(
    readonly problem: BackendProblem,
    options?: { cause?: unknown },
  ) {
    super(problem.message, options);
    this.name = "BackendError";
  }
}

const PROTOCOLS: Record<Backend, string[]> = {
  database: ["postgres:", "postgresql:"],
  redis: ["redis:", "rediss:"],
  s3: ["http:", "https:"],
};

const URL_SETTING: Record<Backend, BackendSetting> = {
  database: "DATABASE_URL",
  redis: "REDIS_URL",
  s3: "S3_ENDPOINT",
};

/**
 * null when `value` is a URL the backend's client can use; else the problem. pg reads "not-a-url"
 * as a socket path and then fails with `getaddrinfo ENOTFOUND base`, so the URL is checked first.
 */
export function checkBackendUrl(backend: Backend, value: string): BackendProblem | null {
  const setting = URL_SETTING[backend];
  const expected = PROTOCOLS[backend].map((p) => `${p}//…`).join(" or ");
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { setting, cause: "invalid-url", message: `${setting}: not a URL (expected ${expected})` };
  }
  if (!PROTOCOLS[backend].includes(url.protocol)) {
    return {
      setting,
      cause: "invalid-url",
      message: `${setting}: ${url.protocol}// is not supported (expected ${expected})`,
    };
  }
  if (!url.hostname) return { setting, cause: "invalid-url", message: `${setting}: the URL names no host` };
  return null;
}

/** Removes the password (and user) from a URL so it can be printed; the input when it is not a URL. */
export function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = "***";
    return url.toString();
  } catch {
    return value;
  }
}

interface ErrorShape {
  name?: string;
  code?: string;
  message?: string;
  hostname?: string;
  address?: string;
  port?: number;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
  errors?: unknown[];
}

const asShape = (err: unknown): ErrorShape => (typeof err === "object" && err !== null ? err : {});

const DNS_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_NONAME", "EAI_FAIL"]);
const REFUSED_CODES = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ECONNRESET", "EPIPE"]);
const TIMEOUT_CODES = new Set(["ETIMEDOUT", "ESOCKETTIMEDOUT", "ETIMEOUT", "UND_ERR_CONNECT_TIMEOUT"]);
const TLS_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "ERR_SSL_WRONG_VERSION_NUMBER",
  "EPROTO",
]);
/** PostgreSQL SQLSTATEs: invalid_password, invalid_authorization_specification; invalid_catalog_name. */
const PG_AUTH = new Set(["28P01", "28000"]);
const PG_MISSING_DB = "3D000";

/** The network-level cause shared by every client (Node's socket errors, possibly wrapped). */
function networkCause(err: unknown, depth = 0): { cause: BackendCause; detail: string } | null {
  const e = asShape(err);
  const code = e.code ?? "";
  const msg = e.message ?? "";
  if (DNS_CODES.has(code)) return { cause: "dns", detail: `host ${quote(e.hostname)}not found (DNS)` };
  if (REFUSED_CODES.has(code))
    return { cause: "refused", detail: `connection refused${at(e)} (${code}): is the server running there?` };
  if (
    TIMEOUT_CODES.has(code) ||
    /timed? ?out|timeout|not connected within/i.test(msg) ||
    e.name === "TimeoutError"
  )
    return { cause: "timeout", detail: "no answer in time (timeout): is the host reachable?" };
  if (TLS_CODES.has(code) || /\b(SSL|TLS|certificate)\b/i.test(msg))
    return { cause: "tls", detail: `TLS failed: ${msg || code}` };
  if (depth < 3) {
    // AggregateError (several addresses tried), the SDK's and ioredis' wrapped causes.
    for (const inner of [...(e.errors ?? []), e.cause]) {
      if (inner === undefined || inner === err) continue;
      const found = networkCause(inner, depth + 1);
      if (found) return found;
    }
  }
  return null;
}

function quote(host: string | undefined): string {
  return host ? `"${host}" ` : "";
}

function at(e: ErrorShape): string {
  return e.address ? ` by ${e.address}${e.port ? `:${e.port}` : ""}` : "";
}

/** Classifies an error met while connecting to (or checking) a backend. */
export function classifyBackendError(
  backend: Backend,
  err: unknown,
  ctx: BackendContext = {},
): BackendProblem {
  const e = asShape(err);
  if (err instanceof BackendError) return err.problem;
  if (ctx.url !== undefined) {
    const bad = checkBackendUrl(backend, ctx.url);
    if (bad) return bad;
  }
  switch (backend) {
    case "database":
      return classifyDatabase(e, err, ctx);
    case "redis":
      return classifyRedis(e, err);
    case "s3":
      return classifyS3(e, err, ctx);
  }
}

function classifyDatabase(e: ErrorShape, err: unknown, ctx: BackendContext): BackendProblem {
  const setting = "DATABASE_URL";
  const db = databaseName(ctx.url);
  if (e.code === PG_MISSING_DB)
    return problem(
      setting,
      "missing-database",
      `database ${quote(db)}does not exist: create it, or fix the name`,
    );
  if (e.code !== undefined && PG_AUTH.has(e.code))
    return problem(setting, "auth", `authentication failed (${e.message}): check the user and password`);
  const net = networkCause(err);
  if (net) return problem(setting, net.cause, net.detail);
  return problem(setting, "unknown", e.message || String(err));
}

function classifyRedis(e: ErrorShape, err: unknown): BackendProblem {
  const setting = "REDIS_URL";
  const msg = e.message ?? "";
  if (/^(WRONGPASS|NOAUTH|NOPERM)\b|invalid password|invalid username-password/i.test(msg))
    return problem(setting, "auth", `authentication failed (${msg}): check the user and password`);
  if (/DB index is out of range/i.test(msg))
    return problem(setting, "missing-database", `the database number does not exist (${msg})`);
  const net = networkCause(err);
  if (net) return problem(setting, net.cause, net.detail);
  return problem(setting, "unknown", msg || String(err));
}

function classifyS3(e: ErrorShape, err: unknown, ctx: BackendContext): BackendProblem {
  const status = e.$metadata?.httpStatusCode;
  const code = e.Code ?? e.name ?? "";
  const bucket = ctx.bucket ? `"${ctx.bucket}" ` : "";
  if (code === "NoSuchBucket" || (status === 404 && (code === "NotFound" || code === "Unknown" || !code)))
    return problem("S3_BUCKET", "missing-bucket", `bucket ${bucket}does not exist at S3_ENDPOINT`);
  if (
    status === 401 ||
    status === 403 ||
    ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden"].includes(code)
  ) {
    const why =
      code === "InvalidAccessKeyId"
        ? "the access key is unknown"
        : code === "SignatureDoesNotMatch"
          ? "the secret key does not match"
          : `access to bucket ${bucket}was refused (${status ?? code})`;
    return problem(
      "S3_ACCESS_KEY_ID",
      "auth",
      `${why}: check S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, and that the key may use the bucket`,
    );
  }
  const net = networkCause(err);
  if (net) return problem("S3_ENDPOINT", net.cause, net.detail);
  return problem(
    "S3_ENDPOINT",
    "unknown",
    status ? `${code || "error"} (HTTP ${status})` : e.message || String(err),
  );
}

function problem(setting: BackendSetting, cause: BackendCause, detail: string): BackendProblem {
  return { setting, cause, message: `${setting}: ${detail}` };
}

function databaseName(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return decodeURIComponent(new URL(url).pathname.replace(/^\//, "")) || undefined;
  } catch {
    return undefined;
  }
}
