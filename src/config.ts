import { createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_EAGER_PRESETS, DEFAULT_PRESETS, type Presets, parsePresets } from "./domain/presets.ts";
import { parseProfile, type UploadProfile } from "./domain/profiles.ts";
import { DEFAULT_SPEC_LIMITS } from "./domain/transform-spec.ts";
import { isOutboxEventType, type OutboxEventType } from "./domain/webhook-events.ts";
import { DEFAULT_RETRY_SCHEDULE_MS, parseSchedule } from "./domain/webhook-retry.ts";
import { parseWebhookSecret } from "./domain/webhook-signature.ts";
import { type ClamdAddress, parseClamdAddress } from "./scanning/clamd-address.ts";
import { TEMPLATE_PLACEHOLDERS, unknownPlaceholders } from "./services/cdn-purge-request.ts";

export type Role = "all" | "api" | "worker" | "scheduler";

/** Everything imgup can be configured with. Built once from the environment and passed in. */
export interface Config {
  role: Role;
  host: string;
  port: number;
  /** Base URL clients reach imgup at; used in upload and delivery URLs. */
  publicUrl: string;
  dataDir: string;
  logLevel: string;
  /** `auto`: pretty human lines on a terminal, JSON lines otherwise (see logging.ts). */
  logFormat: "auto" | "json" | "pretty";
  database: {
    url: string | undefined;
    pgliteDir: string;
    schema: string;
    poolSize: number;
    connectTimeoutMs: number;
    /** Consecutive connection failures that open the circuit breaker. */
    breakerFailures: number;
    breakerHalfOpenAfterMs: number;
    queryTimeoutMs: number;
    /** Apply pending migrations at start (embedded mode by default); else refuse to start on a stale schema. */
    autoMigrate: boolean;
    /** Not from the environment: a migrated template for memory:// databases (tests). */
    pgliteSeed?: Blob;
    /** Read replicas (docs/read-replicas.md): lag-tolerant reads go to a healthy one; none: all on the primary. */
    replicaUrls: string[];
    /** A replica further behind the primary than this is skipped until it catches up. */
    replicaMaxLagMs: number;
    /** How often each replica's lag and liveness are measured. */
    replicaCheckIntervalMs: number;
    /** After an owner's write, that owner's reads go to the primary for this long (read-your-writes). */
    replicaPrimaryWindowMs: number;
    /** A replica query slower than this fails over to the primary (client-side bound). */
    replicaQueryTimeoutMs: number;
  };
  kv: {
    /** redis://… shared by every instance; undefined for the in-process store (one process only). */
    redisUrl: string | undefined;
    keyPrefix: string;
  };
  rateLimit: {
    /** Intents (and proxy uploads) per owner: sustained rate and burst. */
    perSecond: number;
    burst: number;
  };
  storage: {
    driver: "local" | "s3";
    localRoot: string;
    s3: S3Config;
  };
  events: {
    /** Bearer token of POST /v1/events/storage; the webhook is off when unset. */
    webhookToken: string | undefined;
    /** Long-poll this SQS queue for S3 notifications (AWS). */
    sqsQueueUrl: string | undefined;
    sqsRegion: string | undefined;
    /** Consume storage notifications from this AMQP broker (RabbitMQ), worker role. */
    amqpUrl: string | undefined;
    amqpQueue: string;
    amqpPrefetch: number;
  };
  /** HMAC key for embedded upload URLs and private delivery URLs; generated into dataDir when unset. */
  signingSecret: string | undefined;
  auth: {
    jwt: JwtSettings;
    /** Create and print a development API key at start when no key exists (embedded mode). */
    devKey: boolean;
    /** Failed authentications per client address before it gets 429: sustained rate and burst. */
    failures: { perSecond: number; burst: number };
  };
  uploads: {
    maxBytes: number;
    maxPixels: number;
    allowedTypes: string[];
    urlTtlSeconds: number;
    defaultVisibility: "public" | "private";
    multipartPartSize: number;
    /** How long an image that requires a claim lives unclaimed (a profile may say otherwise). */
    claimTtlSeconds: number;
    /** Upload profiles of the operator (IMGUP_PROFILES), read-only through the admin API. */
    profiles: Record<string, UploadProfile>;
  };
  delivery: {
    privateUrlTtlSeconds: number;
    /** HMAC keys of on-the-fly transform URLs: the first signs, every one verifies (rotation). */
    urlSigningKeys: string[] | undefined;
    presets: Presets;
    eagerPresets: string[];
    animated: boolean;
    transformConcurrency: number;
    transformQueue: number;
    /** Transform cache misses per client IP. */
    missesPerSecond: number;
    missesBurst: number;
    /** Transform cache misses per image owner, across all clients (one owner cannot flood the queue). */
    ownerMissesPerSecond: number;
    ownerMissesBurst: number;
    /** Transforms of one owner running at once; the rest of that owner's wait behind other owners'. */
    ownerTransformConcurrency: number;
    /** A transform that ran out of time or memory is answered from this memory, not retried, for this long. */
    transformFailureTtlSeconds: number;
    /** POST /v1/images/{id}/urls per owner. */
    signPerSecond: number;
    signBurst: number;
  };
  /** The cached-hit path of delivery (issue 18): per-instance caches, kept correct through the KV. */
  deliveryCache: {
    /** Image records held per instance, validated against versions in the KV on every hit; 0: off. */
    recordEntries: number;
    /** A cached record is read from the database again at least this often. */
    recordMaxAgeMs: number;
    /** Bytes of small hot variants held in memory per instance; 0: off. */
    hotVariantBytes: number;
    /** Variants larger than this are streamed from the storage on every hit. */
    hotVariantMaxBytes: number;
    /**
     * S3 only: "presigned" answers a hit on a public image's variant, once this instance has seen it
     * stored, with a 302 to a presigned GET of the bucket, so the bytes do not pass through Node.
     */
    s3Redirect: "off" | "presigned";
    /** Lifetime of those presigned URLs (the 302 may be cached for half of it). */
    s3RedirectTtlSeconds: number;
  };
  /** Where and how long image work (decode, transform, placeholder, HEIC) may run: see imaging/sandbox. */
  imaging: {
    /** Child processes that run image work; 0 picks one per concurrent slot of the roles in this process. */
    workers: number;
    /** Hard deadline of a processing job's image work (validation decode, eager presets, placeholder). */
    processingTimeoutMs: number;
    /** Hard deadline of one on-the-fly transform. */
    transformTimeoutMs: number;
    /** A task whose process grows past this resident size is killed. */
    taskMemoryBytes: number;
    /** Progressive JPEGs with more scans than this are refused before decoding (too_complex). */
    maxJpegScans: number;
    /** Not from the environment: another build of the image child to fork (tests: the compiled one). */
    childModule?: string;
  };
  /** The worker's clamd scan of every upload before it can turn ready (docs/malware-scanning.md). */
  malwareScan: {
    /** IMGUP_CLAMD_URL; undefined: no scan. */
    clamd: ClamdAddress | undefined;
    /** Hard bound on one scan (connect, send, verdict). */
    timeoutMs: number;
    /** Pass images unscanned while clamd fails (default: they wait in processing). */
    failOpen: boolean;
    /** How long an image without a verdict waits before its job runs again. */
    retryMs: number;
  };
  /** The consistency jobs (scheduler role); see services/maintenance.ts. */
  maintenance: {
    reconcileIntervalMs: number;
    /** A pending image is left alone this long after its upload URL lapsed. */
    pendingGraceMs: number;
    /** Margin past the job lease before a processing image counts as stuck. */
    processingGraceMs: number;
    sweepIntervalMs: number;
    /** The sweep never deletes an object younger than this. */
    sweepGraceMs: number;
    /** An upload object this old whose image is still pending with no job: events are not arriving. */
    eventStallMs: number;
    pipelineCheckIntervalMs: number;
    /** How often images past their claim deadline are deleted. */
    unclaimedExpiryIntervalMs: number;
  };
  jobs: {
    concurrency: number;
    /** Processing jobs of one owner running at once across the cluster; others' jobs go first. */
    perOwnerConcurrency: number;
    leaseMs: number;
    maxAttempts: number;
    pollIntervalMs: number;
  };
  http: {
    bodyLimitBytes: number;
    /** A request whose body is small (JSON, forms of the API) must arrive whole within this. */
    bodyTimeoutMs: number;
    /** A connection with no bytes moving either way for this long is closed. */
    idleTimeoutMs: number;
    /** The request line and headers must arrive within this. */
    headersTimeoutMs: number;
    /** Outer bound on receiving any request, uploads included. */
    requestTimeoutMs: number;
    /** Upload bodies (/storage*, POST /v1/images) slower than this after the grace period are cut. */
    uploadMinBytesPerSecond: number;
    uploadRateGraceMs: number;
    /** Open connections from one client address. */
    maxConnectionsPerIp: number;
    /**
     * Bearer token for /metrics and for /readyz's failure details. Unset: /metrics is open, and
     * /readyz shows why a dependency failed only in embedded mode (no DATABASE_URL).
     */
    opsToken: string | undefined;
    /**
     * Which proxies may name the client (X-Forwarded-For/-Proto/-Host), with Fastify's trustProxy
     * meaning: false, true (any), a hop count, or addresses/CIDRs. Rate limits key on what it yields.
     */
    trustProxy: boolean | number | string[];
    shutdownTimeoutMs: number;
    /** Each /readyz check (database, KV, storage) fails after this. */
    readyCheckTimeoutMs: number;
  };
  /** /healthz, /readyz and /metrics on a port of their own, in any role; see docs/operations.md. */
  admin: {
    host: string;
    /** Unset: no admin server (roles all and api still answer the probes on the main port). */
    port: number | undefined;
  };
  /** Cross-instance liveness signals kept in the KV and what /readyz makes of them. */
  health: {
    /** How often a worker publishes its run loop's last tick. */
    heartbeatIntervalMs: number;
    /** A worker whose run loop has not ticked for this long answers 503 on its /readyz. */
    workerStallMs: number;
    /** The API reports degraded when no worker heartbeat is this old or newer; 0: not checked. */
    workerHeartbeatMaxAgeMs: number;
    /** The API reports degraded when uploads were issued this long ago and no storage event came since; 0: not checked. */
    storageEventMaxAgeMs: number;
  };
  /** Which browser origins may call imgup cross-origin; see docs/cors.md. */
  cors: CorsSettings;
  /** The demo uploader page at `/`, served from the bundle `npm run build` writes (web/build.ts). */
  demoPage: {
    enabled: boolean;
    dir: string;
  };
  /** Outbound webhooks and the pull feed of app events; see docs/webhooks.md. */
  webhooks: WebhookSettings;
  /** Per-owner quotas and the per-image variant cap; see docs/quotas.md. */
  quotas: {
    /** Default bytes per owner (originals, variants, uploads in flight); null: unlimited. */
    maxBytes: number | null;
    /** Default images per owner (stored and in flight); null: unlimited. */
    maxImages: number | null;
    /** Variants of one image may hold this many times its original's bytes; 0: no cap. */
    variantBytesRatio: number;
    /** ...but never less than this, so a small original keeps its presets. */
    variantBytesMin: number;
    /** A variant's last access is written at most this often (cache hits never wait on it). */
    variantTouchIntervalMs: number;
  };
  /** Purging a CDN or Varnish when an image stops being deliverable; see docs/cdn.md. */
  cdnPurge: CdnPurgeSettings;
  /** The external validation / moderation hook; see docs/moderation.md. */
  moderation: ModerationSettings;
}

/** IMGUP_VALIDATION_*: the hook every valid image passes before it turns ready (off without a URL). */
export interface ModerationSettings {
  /** POSTed {imageId, ownerId, contentType, size, width, height, sha256, url}; undefined: no hook. */
  url: string | undefined;
  /** whsec_ secret: signs the call (Standard Webhooks headers) and verifies the hook's callback. */
  secret: string | undefined;
  /** One call's hard deadline; past it the image stays processing and is retried. */
  timeoutMs: number;
  /** A hook that is down or failing lets images through (ready) instead of retrying them. */
  failOpen: boolean;
  /** How long an image without a decision waits before the hook is asked again (job deferred). */
  retryMs: number;
  /** Lifetime of the signed URL to the original that the call carries. */
  urlTtlSeconds: number;
}

/** IMGUP_CDN_PURGE*: what the queued cdn-purge job calls (rendered by services/cdn-purge-request.ts). */
export interface CdnPurgeSettings {
  /** off: nothing is queued; varnish: BAN by surrogate key to each URL; http: a templated API call per image. */
  kind: "off" | "varnish" | "http";
  varnishUrls: string[];
  /** Templates with {imageId}, {surrogateKey}, {path}, {publicUrl}, {host}, {reference}. Headers may hold secrets. */
  http: { method: string; url: string; headers: Record<string, string>; body: string | undefined };
  /** One call's deadline. */
  timeoutMs: number;
  /** Attempts of one purge job (retried with the job runner's backoff) before it is dead-lettered. */
  maxAttempts: number;
  /** A second purge this long after the first catches a cache fill that was in flight at the first; 0: none. */
  repeatAfterMs: number;
}

export interface WebhookSettings {
  /** A deployment-wide endpoint declared here (every owner's events), signed with `secret` (whsec_…). */
  url: string | undefined;
  secret: string | undefined;
  /** The types that endpoint gets; empty: all. */
  events: OutboxEventType[];
  /** Endpoints may resolve to loopback, private and link-local addresses (off: refused, SSRF). */
  allowPrivate: boolean;
  /** Waits before each retry; a delivery fails for good after the last. */
  retryScheduleMs: number[];
  /** Each wait is spread by ±this fraction. */
  retryJitter: number;
  /** One delivery attempt's deadline (connect, send, answer). */
  timeoutMs: number;
  /** An endpoint failing this long with at least `disableAfterFailures` consecutive failures is disabled. */
  disableAfterMs: number;
  disableAfterFailures: number;
  /** How often a worker looks for due deliveries. */
  pollIntervalMs: number;
  /** Deliveries in flight per worker process. */
  concurrency: number;
  /** Events (and their finished deliveries) are kept this long for the pull feed and replay. */
  retentionMs: number;
  /** Longest wait of GET /v1/events?wait=, and how often a waiting request looks again. */
  feedMaxWaitSeconds: number;
  feedPollMs: number;
}

export interface CorsSettings {
  /**
   * Origins allowed on the API (/v1) and the embedded storage's upload endpoints (/storage*).
   * Never `*`: those answers depend on credentials the page holds.
   */
  apiOrigins: string[];
  /** Origins allowed to read public delivery (/i/) cross-origin, e.g. into a canvas; "*" for any. */
  deliveryOrigins: string[] | "*";
}

/** How Bearer JWTs are checked; see docs/configuration.md "Authentication". */
export interface JwtSettings {
  /** HS256 shared secret. */
  secret: string | undefined;
  /** An identity provider's public key (PEM, SPKI or X.509 certificate). */
  publicKeyPem: string | undefined;
  /** An identity provider's JWKS (keys picked by `kid`, refreshed on an unknown `kid`). */
  jwksUrl: string | undefined;
  audience: string | undefined;
  issuer: string | undefined;
  /** The claim and value that make a token admin; without it no token is ever admin. */
  adminClaim: { name: string; value: string } | undefined;
}

export interface S3Config {
  bucket: string;
  region: string;
  endpoint: string | undefined;
  forcePathStyle: boolean;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  /** Endpoint put in URLs handed to clients, when they reach the storage by another name. */
  presignEndpoint: string | undefined;
  /** Every object of this deployment lives under it; the sweep and doctor never look outside. */
  keyPrefix: string;
}

export class ConfigError extends Error {
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

/** Where `npm run build` puts the demo page: dist/web at the package root, wherever imgup is started from. */
const DEFAULT_DEMO_DIR = fileURLToPath(new URL("../dist/web", import.meta.url));

/** Reads and validates the configuration; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env, overrides: { role?: Role } = {}): Config {
  const r = new EnvReader(env);
  const port = r.int("PORT", 8080, 0, 65535);
  const dataDir = path.resolve(r.str("IMGUP_DATA_DIR", "./data"));
  const publicUrlGiven = r.optional("IMGUP_PUBLIC_URL") !== undefined;
  const config: Config = {
    role: overrides.role ?? r.oneOf("IMGUP_ROLE", ["all", "api", "worker", "scheduler"] as const, "all"),
    host: r.str("HOST", "127.0.0.1"),
    port,
    publicUrl: r.url("IMGUP_PUBLIC_URL", `http://localhost:${port}`).replace(/\/+$/, ""),
    dataDir,
    logLevel: r.oneOf(
      "LOG_LEVEL",
      ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const,
      "info",
    ),
    logFormat: r.oneOf("IMGUP_LOG_FORMAT", ["auto", "json", "pretty"] as const, "auto"),
    database: {
      url: r.optional("DATABASE_URL"),
      pgliteDir: path.join(dataDir, "db"),
      schema: r.match("DATABASE_SCHEMA", /^[a-z_][a-z0-9_]{0,62}$/, "public", "a lower-case SQL identifier"),
      poolSize: r.int("DATABASE_POOL_SIZE", 10, 1, 1000),
      connectTimeoutMs: r.int("DATABASE_CONNECT_TIMEOUT_MS", 5000, 100, 600_000),
      breakerFailures: r.int("IMGUP_DB_BREAKER_FAILURES", 5, 1, 1000),
      breakerHalfOpenAfterMs: r.int("IMGUP_DB_BREAKER_HALF_OPEN_MS", 5000, 100, 600_000),
      queryTimeoutMs: r.int("IMGUP_DB_QUERY_TIMEOUT_MS", 5000, 100, 600_000),
      autoMigrate: r.bool("IMGUP_AUTO_MIGRATE", r.optional("DATABASE_URL") === undefined),
      replicaUrls: r.list("DATABASE_REPLICA_URLS", []),
      replicaMaxLagMs: r.int("IMGUP_REPLICA_MAX_LAG_MS", 2000, 1, 3600_000),
      replicaCheckIntervalMs: r.int("IMGUP_REPLICA_CHECK_INTERVAL_MS", 1000, 10, 600_000),
      replicaPrimaryWindowMs: r.int("IMGUP_REPLICA_PRIMARY_WINDOW_MS", 10_000, 1, 3600_000),
      replicaQueryTimeoutMs: r.int("IMGUP_REPLICA_QUERY_TIMEOUT_MS", 2000, 10, 600_000),
    },
    kv: {
      redisUrl: r.optional("REDIS_URL"),
      keyPrefix: r.match(
        "REDIS_KEY_PREFIX",
        /^[A-Za-z0-9:_.-]{0,64}$/,
        "imgup:",
        "letters, digits and : _ . -",
      ),
    },
    rateLimit: {
      perSecond: r.int("IMGUP_RATE_LIMIT_PER_SEC", 10, 1, 1_000_000),
      burst: r.int("IMGUP_RATE_LIMIT_BURST", 50, 1, 1_000_000),
    },
    storage: {
      driver: r.oneOf("IMGUP_STORAGE", ["local", "s3"] as const, "local"),
      localRoot: path.join(dataDir, "storage"),
      s3: {
        bucket: r.str("S3_BUCKET", ""),
        region: r.str("S3_REGION", "us-east-1"),
        endpoint: r.optionalUrl("S3_ENDPOINT"),
        forcePathStyle: r.bool("S3_FORCE_PATH_STYLE", false),
        accessKeyId: r.optional("S3_ACCESS_KEY_ID"),
        secretAccessKey: r.optional("S3_SECRET_ACCESS_KEY"),
        presignEndpoint: r.optionalUrl("S3_PRESIGN_ENDPOINT"),
        keyPrefix: r.match(
          "IMGUP_S3_PREFIX",
          /^\/*[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*\/*$/,
          "",
          "path segments of letters, digits, . _ - (not starting with a dot)",
        ),
      },
    },
    events: {
      webhookToken: r.secret("IMGUP_EVENTS_TOKEN", 16),
      sqsQueueUrl: r.optionalUrl("IMGUP_SQS_QUEUE_URL"),
      sqsRegion: r.optional("IMGUP_SQS_REGION"),
      amqpUrl: r.parsed("IMGUP_EVENTS_AMQP_URL", parseAmqpUrl),
      amqpQueue: r.match(
        "IMGUP_EVENTS_AMQP_QUEUE",
        /^[A-Za-z0-9._:-]{1,200}$/,
        "imgup.storage-events",
        "a queue name",
      ),
      amqpPrefetch: r.int("IMGUP_EVENTS_AMQP_PREFETCH", 20, 1, 10_000),
    },
    signingSecret: r.secret("IMGUP_SIGNING_SECRET"),
    auth: {
      jwt: {
        secret: r.secret("IMGUP_JWT_SECRET"),
        publicKeyPem: r.pem("IMGUP_JWT_PUBLIC_KEY"),
        jwksUrl: r.optionalUrl("IMGUP_JWT_JWKS_URL"),
        audience: r.optional("IMGUP_JWT_AUDIENCE"),
        issuer: r.optional("IMGUP_JWT_ISSUER"),
        adminClaim: r.parsed("IMGUP_JWT_ADMIN_CLAIM", parseAdminClaim),
      },
      devKey: r.bool("IMGUP_DEV_KEY", env.DATABASE_URL === undefined),
      failures: {
        perSecond: r.int("IMGUP_AUTH_FAILURES_PER_SEC", 2, 1, 1_000_000),
        burst: r.int("IMGUP_AUTH_FAILURES_BURST", 30, 1, 1_000_000),
      },
    },
    uploads: {
      maxBytes: r.int("IMGUP_MAX_UPLOAD_BYTES", 20 * 1024 * 1024, 1, Number.MAX_SAFE_INTEGER),
      maxPixels: r.int("IMGUP_MAX_PIXELS", 50_000_000, 1, Number.MAX_SAFE_INTEGER),
      allowedTypes: r.list("IMGUP_ALLOWED_TYPES", [...SUPPORTED_UPLOAD_TYPES]),
      urlTtlSeconds: r.int("IMGUP_UPLOAD_URL_TTL", 600, 1, 7 * 24 * 3600),
      defaultVisibility: r.oneOf("IMGUP_DEFAULT_VISIBILITY", ["public", "private"] as const, "public"),
      multipartPartSize: r.int("IMGUP_MULTIPART_PART_SIZE", 8 * 1024 * 1024, 5 * 1024 * 1024, 5 * 1024 ** 3),
      claimTtlSeconds: r.int("IMGUP_CLAIM_TTL_SECONDS", 24 * 3600, 1, 365 * 24 * 3600),
      profiles: {},
    },
    delivery: {
      privateUrlTtlSeconds: r.int("IMGUP_PRIVATE_URL_TTL", 3600, 1, 7 * 24 * 3600),
      urlSigningKeys:
        r.optional("IMGUP_URL_SIGNING_KEYS") === undefined ? undefined : r.list("IMGUP_URL_SIGNING_KEYS", []),
      presets: r.presets("IMGUP_PRESETS"),
      eagerPresets: r.list("IMGUP_EAGER_PRESETS", [...DEFAULT_EAGER_PRESETS]),
      animated: r.bool("IMGUP_ANIMATED", false),
      transformConcurrency: r.int("IMGUP_TRANSFORM_CONCURRENCY", 2, 1, 64),
      transformQueue: r.int("IMGUP_TRANSFORM_QUEUE", 64, 0, 100_000),
      missesPerSecond: r.int("IMGUP_TRANSFORM_MISSES_PER_SEC", 20, 1, 1_000_000),
      missesBurst: r.int("IMGUP_TRANSFORM_MISSES_BURST", 100, 1, 1_000_000),
      ownerMissesPerSecond: r.int("IMGUP_TRANSFORM_OWNER_MISSES_PER_SEC", 10, 1, 1_000_000),
      ownerMissesBurst: r.int("IMGUP_TRANSFORM_OWNER_MISSES_BURST", 40, 1, 1_000_000),
      ownerTransformConcurrency: r.int("IMGUP_TRANSFORM_OWNER_CONCURRENCY", 1, 1, 64),
      transformFailureTtlSeconds: r.int("IMGUP_TRANSFORM_FAILURE_TTL", 600, 0, 7 * 24 * 3600),
      signPerSecond: r.int("IMGUP_SIGN_URLS_PER_SEC", 10, 1, 1_000_000),
      signBurst: r.int("IMGUP_SIGN_URLS_BURST", 50, 1, 1_000_000),
    },
    deliveryCache: {
      recordEntries: r.int("IMGUP_RECORD_CACHE_ENTRIES", 100_000, 0, 10_000_000),
      recordMaxAgeMs: r.int("IMGUP_RECORD_CACHE_MAX_AGE_MS", 5 * 60_000, 100, 24 * 3600_000),
      hotVariantBytes: r.int("IMGUP_HOT_VARIANT_CACHE_MB", 64, 0, 64 * 1024) * 1024 * 1024,
      hotVariantMaxBytes: r.int("IMGUP_HOT_VARIANT_MAX_KB", 256, 0, 64 * 1024) * 1024,
      s3Redirect: r.oneOf("IMGUP_S3_DELIVERY_REDIRECT", ["off", "presigned"] as const, "off"),
      s3RedirectTtlSeconds: r.int("IMGUP_S3_DELIVERY_REDIRECT_TTL", 300, 10, 7 * 24 * 3600),
    },
    imaging: {
      workers: r.int("IMGUP_IMAGE_WORKERS", 0, 0, 64),
      processingTimeoutMs: r.int("IMGUP_PROCESSING_TIMEOUT_MS", 30_000, 100, 3600_000),
      transformTimeoutMs: r.int("IMGUP_TRANSFORM_TIMEOUT_MS", 20_000, 100, 600_000),
      taskMemoryBytes: r.int("IMGUP_IMAGE_TASK_MEMORY_MB", 1024, 256, 64 * 1024) * 1024 * 1024,
      maxJpegScans: r.int("IMGUP_MAX_JPEG_SCANS", 100, 1, 100_000),
    },
    malwareScan: {
      clamd: r.parsed("IMGUP_CLAMD_URL", (raw) => (raw === undefined ? undefined : parseClamdAddress(raw))),
      timeoutMs: r.int("IMGUP_CLAMD_TIMEOUT_MS", 30_000, 100, 600_000),
      failOpen: r.bool("IMGUP_CLAMD_FAIL_OPEN", false),
      retryMs: r.int("IMGUP_CLAMD_RETRY_MS", 30_000, 10, 3600_000),
    },
    maintenance: {
      reconcileIntervalMs: r.int("IMGUP_RECONCILE_INTERVAL_MS", 60_000, 1000, 24 * 3600_000),
      pendingGraceMs: r.int("IMGUP_PENDING_GRACE_MS", 5 * 60_000, 0, 7 * 24 * 3600_000),
      processingGraceMs: r.int("IMGUP_PROCESSING_GRACE_MS", 60_000, 0, 24 * 3600_000),
      sweepIntervalMs: r.int("IMGUP_SWEEP_INTERVAL_MS", 3600_000, 1000, 7 * 24 * 3600_000),
      sweepGraceMs: r.int("IMGUP_SWEEP_GRACE_MS", 24 * 3600_000, 1000, 30 * 24 * 3600_000),
      eventStallMs: r.int("IMGUP_EVENT_STALL_MS", 2 * 60_000, 1000, 24 * 3600_000),
      pipelineCheckIntervalMs: r.int("IMGUP_PIPELINE_CHECK_INTERVAL_MS", 60_000, 1000, 24 * 3600_000),
      unclaimedExpiryIntervalMs: r.int("IMGUP_UNCLAIMED_EXPIRY_INTERVAL_MS", 60_000, 1000, 24 * 3600_000),
    },
    jobs: {
      concurrency: r.int("IMGUP_WORKER_CONCURRENCY", 2, 1, 256),
      perOwnerConcurrency: r.int("IMGUP_WORKER_OWNER_CONCURRENCY", 1, 1, 256),
      leaseMs: r.int("IMGUP_JOB_LEASE_MS", 60_000, 100, 24 * 3600 * 1000),
      maxAttempts: r.int("IMGUP_JOB_MAX_ATTEMPTS", 5, 1, 100),
      pollIntervalMs: r.int("IMGUP_JOB_POLL_MS", 500, 10, 60_000),
    },
    http: {
      bodyLimitBytes: r.int("IMGUP_JSON_BODY_LIMIT", 64 * 1024, 1024, 16 * 1024 * 1024),
      bodyTimeoutMs: r.int("IMGUP_BODY_TIMEOUT_MS", 10_000, 100, 3600_000),
      idleTimeoutMs: r.int("IMGUP_IDLE_TIMEOUT_MS", 30_000, 100, 3600_000),
      headersTimeoutMs: r.int("IMGUP_HEADERS_TIMEOUT_MS", 10_000, 100, 600_000),
      requestTimeoutMs: r.int("IMGUP_REQUEST_TIMEOUT_MS", 15 * 60_000, 1000, 24 * 3600_000),
      uploadMinBytesPerSecond: r.int("IMGUP_UPLOAD_MIN_BYTES_PER_SEC", 4096, 0, 1024 ** 3),
      uploadRateGraceMs: r.int("IMGUP_UPLOAD_RATE_GRACE_MS", 10_000, 0, 600_000),
      maxConnectionsPerIp: r.int("IMGUP_MAX_CONNECTIONS_PER_IP", 256, 1, 1_000_000),
      opsToken: r.secret("IMGUP_OPS_TOKEN", 16),
      trustProxy: r.parsed("IMGUP_TRUST_PROXY", parseTrustProxy),
      shutdownTimeoutMs: r.int("IMGUP_SHUTDOWN_TIMEOUT_MS", 10_000, 0, 600_000),
      readyCheckTimeoutMs: r.int("IMGUP_READY_TIMEOUT_MS", 2000, 50, 60_000),
    },
    admin: {
      host: r.str("IMGUP_ADMIN_HOST", r.str("HOST", "127.0.0.1")),
      port: r.optional("IMGUP_ADMIN_PORT") === undefined ? undefined : r.int("IMGUP_ADMIN_PORT", 0, 1, 65535),
    },
    health: {
      heartbeatIntervalMs: r.int("IMGUP_HEARTBEAT_INTERVAL_MS", 5000, 50, 600_000),
      workerStallMs: r.int("IMGUP_WORKER_STALL_SECONDS", 60, 1, 24 * 3600) * 1000,
      workerHeartbeatMaxAgeMs: r.int("IMGUP_READY_WORKER_SECONDS", 60, 0, 7 * 24 * 3600) * 1000,
      storageEventMaxAgeMs: r.int("IMGUP_READY_EVENTS_SECONDS", 900, 0, 7 * 24 * 3600) * 1000,
    },
    cors: corsSettings(r.parsed("IMGUP_CORS_ORIGINS", parseCorsOrigins), publicUrlGiven ? null : port),
    demoPage: {
      enabled: r.bool("IMGUP_DEMO_PAGE", true),
      dir: path.resolve(r.str("IMGUP_DEMO_DIR", DEFAULT_DEMO_DIR)),
    },
    webhooks: {
      url: r.optionalUrl("IMGUP_WEBHOOK_URL"),
      secret: r.parsed("IMGUP_WEBHOOK_SECRET", (raw) => {
        if (raw !== undefined && !parseWebhookSecret(raw))
          throw new Error("must be whsec_ and base64 of 24-64 bytes");
        return raw;
      }),
      events: r.parsed("IMGUP_WEBHOOK_EVENTS", parseEventTypes),
      allowPrivate: r.bool("IMGUP_WEBHOOK_ALLOW_PRIVATE", false),
      retryScheduleMs: r.parsed("IMGUP_WEBHOOK_RETRY_SCHEDULE", (raw) => {
        if (raw === undefined) return [...DEFAULT_RETRY_SCHEDULE_MS];
        const parsed = parseSchedule(raw);
        if (!parsed) throw new Error('expected durations like "5s,5m,2h,1d"');
        return parsed;
      }),
      retryJitter: 0.2,
      timeoutMs: r.int("IMGUP_WEBHOOK_TIMEOUT_MS", 10_000, 100, 120_000),
      disableAfterMs: r.int("IMGUP_WEBHOOK_DISABLE_AFTER_HOURS", 120, 0, 24 * 365) * 3600_000,
      disableAfterFailures: r.int("IMGUP_WEBHOOK_DISABLE_AFTER_FAILURES", 10, 1, 1_000_000),
      pollIntervalMs: r.int("IMGUP_WEBHOOK_POLL_MS", 1000, 10, 60_000),
      concurrency: r.int("IMGUP_WEBHOOK_CONCURRENCY", 8, 1, 256),
      retentionMs: r.int("IMGUP_EVENTS_RETENTION_DAYS", 30, 1, 3650) * 86_400_000,
      feedMaxWaitSeconds: r.int("IMGUP_EVENTS_MAX_WAIT_SECONDS", 20, 0, 300),
      feedPollMs: r.int("IMGUP_EVENTS_POLL_MS", 1000, 10, 60_000),
    },
    quotas: {
      maxBytes:
        r.optional("IMGUP_QUOTA_BYTES") === undefined
          ? null
          : r.int("IMGUP_QUOTA_BYTES", 0, 0, Number.MAX_SAFE_INTEGER),
      maxImages:
        r.optional("IMGUP_QUOTA_IMAGES") === undefined
          ? null
          : r.int("IMGUP_QUOTA_IMAGES", 0, 0, Number.MAX_SAFE_INTEGER),
      variantBytesRatio: r.int("IMGUP_VARIANT_BYTES_RATIO", 4, 0, 1000),
      variantBytesMin: r.int("IMGUP_VARIANT_BYTES_MIN", 1024 * 1024, 0, Number.MAX_SAFE_INTEGER),
      variantTouchIntervalMs: r.int("IMGUP_VARIANT_TOUCH_INTERVAL_S", 600, 0, 7 * 24 * 3600) * 1000,
    },
    cdnPurge: {
      kind: r.oneOf("IMGUP_CDN_PURGE", ["off", "varnish", "http"] as const, "off"),
      varnishUrls: r.parsed("IMGUP_CDN_PURGE_VARNISH_URLS", parseUrlList),
      http: {
        method: r.match("IMGUP_CDN_PURGE_METHOD", /^[A-Z]+$/, "POST", "an upper-case HTTP method"),
        url: r.str("IMGUP_CDN_PURGE_URL", ""),
        headers: r.parsed("IMGUP_CDN_PURGE_HEADERS", parseHeaderTemplates),
        body: r.optional("IMGUP_CDN_PURGE_BODY"),
      },
      timeoutMs: r.int("IMGUP_CDN_PURGE_TIMEOUT_MS", 10_000, 100, 120_000),
      maxAttempts: r.int("IMGUP_CDN_PURGE_MAX_ATTEMPTS", 25, 1, 1000),
      repeatAfterMs: r.int("IMGUP_CDN_PURGE_REPEAT_MS", 30_000, 0, 3600_000),
    },
    moderation: {
      url: r.optionalUrl("IMGUP_VALIDATION_URL"),
      secret: r.parsed("IMGUP_VALIDATION_SECRET", (raw) => {
        if (raw !== undefined && !parseWebhookSecret(raw))
          throw new Error("must be whsec_ and base64 of 24-64 bytes");
        return raw;
      }),
      timeoutMs: r.int("IMGUP_VALIDATION_TIMEOUT_MS", 10_000, 100, 120_000),
      failOpen: r.bool("IMGUP_VALIDATION_FAIL_OPEN", false),
      retryMs: r.int("IMGUP_VALIDATION_RETRY_MS", 30_000, 100, 3_600_000),
      urlTtlSeconds: r.int("IMGUP_VALIDATION_URL_TTL_S", 900, 30, 7 * 24 * 3600),
    },
  };
  checkCdnPurge(config.cdnPurge);
  checkReplicas(config.database);
  if ((config.webhooks.url === undefined) !== (config.webhooks.secret === undefined)) {
    throw new ConfigError("IMGUP_WEBHOOK_SECRET", "IMGUP_WEBHOOK_URL and IMGUP_WEBHOOK_SECRET go together");
  }
  if (config.moderation.url !== undefined && config.moderation.secret === undefined) {
    throw new ConfigError("IMGUP_VALIDATION_SECRET", "is required when IMGUP_VALIDATION_URL is set");
  }
  if (config.storage.driver === "s3" && !config.storage.s3.bucket) {
    throw new ConfigError("S3_BUCKET", "is required when IMGUP_STORAGE=s3");
  }
  if ((config.storage.s3.accessKeyId === undefined) !== (config.storage.s3.secretAccessKey === undefined)) {
    throw new ConfigError("S3_SECRET_ACCESS_KEY", "S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together");
  }
  if (config.admin.port === config.port && (config.role === "all" || config.role === "api")) {
    throw new ConfigError(
      "IMGUP_ADMIN_PORT",
      `is PORT (${config.port}); unset it to serve the probes on PORT only`,
    );
  }
  for (const name of config.delivery.eagerPresets) {
    if (!Object.hasOwn(config.delivery.presets, name)) {
      throw new ConfigError(
        "IMGUP_EAGER_PRESETS",
        `"${name}" is not a preset (${Object.keys(config.delivery.presets).join(", ")})`,
      );
    }
  }
  for (const key of config.delivery.urlSigningKeys ?? []) {
    if (key.length < 32)
      throw new ConfigError("IMGUP_URL_SIGNING_KEYS", "every key must be at least 32 characters");
  }
  for (const t of config.uploads.allowedTypes) {
    if (!SUPPORTED_UPLOAD_TYPES.includes(t)) {
      throw new ConfigError("IMGUP_ALLOWED_TYPES", `${t} is not one of ${SUPPORTED_UPLOAD_TYPES.join(", ")}`);
    }
  }
  // After the types and presets it is checked against.
  config.uploads.profiles = r.parsed("IMGUP_PROFILES", (raw) =>
    parseProfiles(raw, {
      supportedTypes: config.uploads.allowedTypes,
      presetNames: Object.keys(config.delivery.presets),
    }),
  );
  return config;
}

/**
 * Several instances (separate roles, or a shared PostgreSQL with S3) must share the URL signing key
 * and, for the roles that rate-limit, de-duplicate and elect a scheduler, the KV: with a key of its
 * own each instance 404s the others' URLs; with an in-process KV those guarantees hold per process
 * only. Checked by `serve`, not by loadConfig, so tests can still build one-process setups of any
 * shape; IMGUP_SINGLE_INSTANCE=true accepts an in-process KV for a deliberately single API process.
 */
export function assertDeployable(config: Config, env: Env): void {
  const why =
    config.role !== "all"
      ? `IMGUP_ROLE=${config.role} runs beside other instances`
      : config.database.url && config.storage.driver === "s3"
        ? "DATABASE_URL with S3 storage is a multi-instance setup"
        : null;
  if (!why) return;
  if (!config.signingSecret) {
    throw new ConfigError(
      "IMGUP_SIGNING_SECRET",
      `must be set (${why}; every instance must sign and verify URLs with the same key)`,
    );
  }
  const single = new EnvReader(env).bool("IMGUP_SINGLE_INSTANCE", false);
  // A worker too: storage events it cannot enqueue during an outage are buffered there, and an
  // in-process buffer dies with the process that acknowledged them.
  if (!config.kv.redisUrl && !single) {
    throw new ConfigError(
      "REDIS_URL",
      `must be set (${why}; rate limits, idempotency, the outage buffer, worker heartbeats and the scheduler's lock are shared through it), or IMGUP_SINGLE_INSTANCE=true for one process`,
    );
  }
}

export const SUPPORTED_UPLOAD_TYPES = [
  "image/jpeg",
  "image/png",
  "image/webp",
  "image/avif",
  "image/gif",
  "image/heic",
];

class EnvReader {
  constructor(private readonly env: Env) {}

  optional(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  }

  str(name: string, def: string): string {
    return this.optional(name) ?? def;
  }

  int(name: string, def: number, min: number, max: number): number {
    const raw = this.optional(name);
    if (raw === undefined) return def;
    if (!/^-?\d+$/.test(raw)) throw new ConfigError(name, `expected an integer, got "${raw}"`);
    const n = Number(raw);
    if (n < min || n > max) throw new ConfigError(name, `expected ${min}..${max}, got ${n}`);
    return n;
  }

  bool(name: string, def: boolean): boolean {
    const raw = this.optional(name)?.toLowerCase();
    if (raw === undefined) return def;
    if (["1", "true", "yes", "on"].includes(raw)) return true;
    if (["0", "false", "no", "off"].includes(raw)) return false;
    throw new ConfigError(name, `expected true or false, got "${raw}"`);
  }

  oneOf<T extends string>(name: string, values: readonly T[], def: T): T {
    const raw = this.optional(name);
    if (raw === undefined) return def;
    if (!values.includes(raw as T))
      throw new ConfigError(name, `expected one of ${values.join(", ")}, got "${raw}"`);
    return raw as T;
  }

  match(name: string, pattern: RegExp, def: string, what: string): string {
    const raw = this.optional(name);
    if (raw === undefined) return def;
    if (!pattern.test(raw)) throw new ConfigError(name, `expected ${what}, got "${raw}"`);
    return raw;
  }

  url(name: string, def: string): string {
    const raw = this.str(name, def);
    try {
      const u = new URL(raw);
      if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error();
    } catch {
      throw new ConfigError(name, `expected an http(s) URL, got "${raw}"`);
    }
    return raw;
  }

  list(name: string, def: string[]): string[] {
    const raw = this.optional(name);
    if (raw === undefined) return def;
    const items = raw
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    if (items.length === 0) throw new ConfigError(name, "expected a comma-separated list");
    return items;
  }

  presets(name: string): Presets {
    const raw = this.optional(name);
    if (raw === undefined) return DEFAULT_PRESETS;
    try {
      return parsePresets(raw, DEFAULT_SPEC_LIMITS);
    } catch (err) {
      throw new ConfigError(name, err instanceof Error ? err.message : String(err));
    }
  }

  /** A PEM given inline (with \\n escapes, as env files need) or as a path to a file. */
  pem(name: string): string | undefined {
    const raw = this.optional(name);
    if (raw === undefined) return undefined;
    const text = raw.includes("-----BEGIN") ? raw.replaceAll("\\n", "\n") : readFileOrFail(name, raw);
    try {
      createPublicKey(text);
    } catch {
      throw new ConfigError(name, "expected a PEM public key or certificate (inline or a file path)");
    }
    return text;
  }

  parsed<T>(name: string, parse: (raw: string | undefined) => T): T {
    try {
      return parse(this.optional(name));
    } catch (err) {
      throw new ConfigError(name, err instanceof Error ? err.message : String(err));
    }
  }

  optionalUrl(name: string): string | undefined {
    return this.optional(name) === undefined ? undefined : this.url(name, "");
  }

  secret(name: string, minLength = 32): string | undefined {
    const raw = this.optional(name);
    if (raw !== undefined && raw.length < minLength) {
      throw new ConfigError(name, `must be at least ${minLength} characters`);
    }
    return raw;
  }
}

/** The URL carries a password: the error never echoes it. */
function parseAmqpUrl(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let protocol: string;
  try {
    protocol = new URL(raw).protocol;
  } catch {
    throw new Error("expected an amqp:// or amqps:// URL");
  }
  if (protocol !== "amqp:" && protocol !== "amqps:") throw new Error("expected an amqp:// or amqps:// URL");
  return raw;
}

function parseEventTypes(raw: string | undefined): OutboxEventType[] {
  if (raw === undefined) return [];
  const items = raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const t of items) if (!isOutboxEventType(t)) throw new Error(`${t} is not an event type`);
  return items as OutboxEventType[];
}

function readFileOrFail(name: string, file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    throw new ConfigError(name, `cannot read the file "${file}"`);
  }
}

/**
 * IMGUP_PROFILES: a JSON object of profiles by name (`{"avatar": {"maxBytes": 5242880, …}}`), inline
 * or in a file named by the value (anything not starting with `{`).
 */
export function parseProfiles(
  raw: string | undefined,
  ctx: Parameters<typeof parseProfile>[2],
): Record<string, UploadProfile> {
  if (raw === undefined) return {};
  let text = raw;
  if (!raw.startsWith("{")) {
    try {
      text = readFileSync(raw, "utf8");
    } catch {
      throw new Error(`cannot read the file "${raw}" (or give the JSON inline, starting with {)`);
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new Error('expected a JSON object of profiles by name, e.g. {"avatar": {"maxBytes": 5242880}}');
  const profiles: Record<string, UploadProfile> = Object.create(null);
  for (const [name, value] of Object.entries(json)) profiles[name] = parseProfile(name, value, ctx);
  return profiles;
}

/** Parses IMGUP_JWT_ADMIN_CLAIM ("name=value"). */
export function parseAdminClaim(raw: string | undefined): JwtSettings["adminClaim"] {
  if (raw === undefined) return undefined;
  const at = raw.indexOf("=");
  if (at <= 0 || at === raw.length - 1) throw new Error(`expected name=value, got "${raw}"`);
  return { name: raw.slice(0, at), value: raw.slice(at + 1) };
}

/**
 * IMGUP_CORS_ORIGINS: a comma-separated list of origins (scheme://host[:port]) or `*`. `*` means
 * any origin for public delivery only; the API and the upload endpoints take the named origins.
 */
export function parseCorsOrigins(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  const items = raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new Error("expected a comma-separated list of origins or *");
  return items.map((item) => {
    if (item === "*") return item;
    let origin: string;
    try {
      origin = new URL(item).origin;
    } catch {
      origin = "null";
    }
    // An origin is what a browser sends in Origin: no path, no trailing slash, no credentials.
    if (
      origin === "null" ||
      origin !== item.replace(/\/$/, "") ||
      !/^https?:$/.test(new URL(item).protocol)
    ) {
      throw new Error(
        `"${item}" is not an origin (expected e.g. https://app.example or http://127.0.0.1:5173)`,
      );
    }
    return origin;
  });
}

/**
 * With IMGUP_PUBLIC_URL unset the public URL is http://localhost:PORT, while the server prints and
 * listens on 127.0.0.1: the demo page opened at one name uploads to URLs naming the other. Both
 * names (and [::1]) are this very server, so they are allowed origins.
 */
function corsSettings(listed: string[], defaultPublicPort: number | null): CorsSettings {
  const named = listed.filter((o) => o !== "*");
  const loopback =
    defaultPublicPort === null
      ? []
      : ["localhost", "127.0.0.1", "[::1]"].map((h) => `http://${h}:${defaultPublicPort}`);
  const apiOrigins = [...new Set([...named, ...loopback])];
  return { apiOrigins, deliveryOrigins: listed.includes("*") ? "*" : apiOrigins };
}

/** IMGUP_CDN_PURGE_VARNISH_URLS: comma-separated http(s) URLs (each Varnish's listen address). */
function parseUrlList(raw: string | undefined): string[] {
  const items = (raw ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const item of items) {
    const u = URL.canParse(item) ? new URL(item) : null;
    if (!u || (u.protocol !== "http:" && u.protocol !== "https:"))
      throw new Error(`expected http(s) URLs, got "${item}"`);
  }
  return items;
}

/** IMGUP_CDN_PURGE_HEADERS: a JSON object of header templates. The error never echoes values (tokens). */
function parseHeaderTemplates(raw: string | undefined): Record<string, string> {
  if (raw === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error("expected a JSON object of header names to values");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new Error("expected a JSON object of header names to values");
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value !== "string" || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name))
      throw new Error(`header ${JSON.stringify(name)}: expected a valid name and a string value`);
    headers[name] = value;
  }
  return headers;
}

function checkCdnPurge(settings: CdnPurgeSettings): void {
  if (settings.kind === "varnish" && settings.varnishUrls.length === 0)
    throw new ConfigError("IMGUP_CDN_PURGE_VARNISH_URLS", "is required when IMGUP_CDN_PURGE=varnish");
  if (settings.kind !== "http") return;
  const { url, headers, body } = settings.http;
  if (!url) throw new ConfigError("IMGUP_CDN_PURGE_URL", "is required when IMGUP_CDN_PURGE=http");
  const sample = url.replace(/\{[A-Za-z]+\}/g, "x");
  if (!URL.canParse(sample) || !/^https?:$/.test(new URL(sample).protocol))
    throw new ConfigError("IMGUP_CDN_PURGE_URL", "expected an http(s) URL template");
  const templates: Array<[string, string]> = [
    ["IMGUP_CDN_PURGE_URL", url],
    ["IMGUP_CDN_PURGE_BODY", body ?? ""],
    ...Object.values(headers).map((v): [string, string] => ["IMGUP_CDN_PURGE_HEADERS", v]),
  ];
  for (const [name, template] of templates) {
    const unknown = unknownPlaceholders(template);
    if (unknown.length > 0)
      throw new ConfigError(
        name,
        `unknown placeholder {${unknown[0]}} (known: ${TEMPLATE_PLACEHOLDERS.join(", ")})`,
      );
  }
}

/** IMGUP_TRUST_PROXY: unset/false, true, a hop count, or a comma-separated list of addresses/CIDRs. */
export function parseTrustProxy(raw: string | undefined): boolean | number | string[] {
  if (raw === undefined || /^(false|no|off|0)$/i.test(raw)) return false;
  if (/^(true|yes|on)$/i.test(raw)) return true;
  if (/^\d+$/.test(raw)) return Number(raw);
  const items = raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const address = /^(?:[0-9.]+|[0-9a-f:]+)(?:\/\d{1,3})?$/i;
  const bad = items.find(
    (item) => !address.test(item) && !["loopback", "linklocal", "uniquelocal"].includes(item),
  );
  if (items.length === 0 || bad !== undefined) {
    throw new Error(`expected true, false, a hop count or addresses/CIDRs, got "${bad ?? raw}"`);
  }
  return items;
}

/**
 * Replicas need a PostgreSQL primary, and the read-your-writes window must outlast the worst lag a
 * replica still counted healthy can reach (its bound plus one check interval), see read-replicas.md.
 */
function checkReplicas(db: Config["database"]): void {
  if (db.replicaUrls.length === 0) return;
  if (!db.url) throw new ConfigError("DATABASE_REPLICA_URLS", "needs DATABASE_URL (a PostgreSQL primary)");
  for (const url of db.replicaUrls) {
    if (!/^postgres(ql)?:\/\//.test(url))
      throw new ConfigError("DATABASE_REPLICA_URLS", "expected comma-separated postgres:// URLs");
  }
  if (db.replicaPrimaryWindowMs < db.replicaMaxLagMs + db.replicaCheckIntervalMs) {
    throw new ConfigError(
      "IMGUP_REPLICA_PRIMARY_WINDOW_MS",
      "must be at least IMGUP_REPLICA_MAX_LAG_MS + IMGUP_REPLICA_CHECK_INTERVAL_MS",
    );
  }
}
