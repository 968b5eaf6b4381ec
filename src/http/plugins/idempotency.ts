import { createHash } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { ERRORS } from "../../domain/errors.ts";
import type { BucketDecision, KeyValueStore } from "../../kv/kv.ts";
import type { Metrics } from "../../metrics.ts";
import { principalOf } from "./auth.ts";
import {
  bucketKey,
  enforceDecision,
  type RateLimitOptions,
  rateLimit,
  rateLimitFailedOpen,
} from "./rate-limit.ts";

const KEPT_MS = 24 * 3600 * 1000;
/** How long a crashed request's lock blocks retries. */
const LOCK_MS = 60 * 1000;
const KEY_PATTERN = /^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$/;

interface Stored {
  state: "in_progress" | "done";
  fingerprint: string;
  status?: number;
  body?: string;
  headers?: Record<string, string>;
  /** The image the first answer was about: a re-rendering route answers from its current state. */
  imageId?: string;
}

/** What a route that re-renders replays is told about the first answer. */
export interface Replay {
  status: number;
  imageId: string;
}

declare module "fastify" {
  interface FastifyRequest {
    idempotency: {
      key: string;
      kvKey: string | null;
      lock: string;
      replayed: boolean;
      /** Set when the route re-renders: the handler runs and answers from the image's current state. */
      replay?: Replay;
    } | null;
  }
}

/** `Idempotency-Key: "abc"` or `abc` (IETF httpapi draft: an sf-string; bare tokens accepted too). */
export function parseIdempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (Array.isArray(header)) throw ERRORS.invalidIdempotencyKey("send one Idempotency-Key header");
  let key = header.trim();
  if (key.length >= 2 && key.startsWith('"') && key.endsWith('"')) key = key.slice(1, -1);
  if (!KEY_PATTERN.test(key)) {
    throw ERRORS.invalidIdempotencyKey("the key must be 1-255 printable ASCII characters");
  }
  return key;
}

/** Same method, route, path and JSON body (key order ignored) means the same request. */
function fingerprint(request: FastifyRequest): string {
  return createHash("sha256")
    .update(`${request.method}\n${request.url}\n${canonicalJson(request.body ?? null)}`)
    .digest("hex");
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

const hash = (s: string) => createHash("sha256").update(s).digest("base64url");

// An owner sends many keys: its part of the KV key is hashed once, not per request.
const ownerHashes = new Map<string, string>();
const MAX_OWNER_HASHES = 10_000;

function ownerHash(ownerId: string): string {
  let h = ownerHashes.get(ownerId);
  if (h === undefined) {
    if (ownerHashes.size >= MAX_OWNER_HASHES) ownerHashes.clear();
    h = hash(ownerId);
    ownerHashes.set(ownerId, h);
  }
  return h;
}

/**
 * Idempotency-Key for POSTs (Stripe's model): the first request takes a lock in the KV; its 2xx
 * answer is kept 24 h and replayed to retries with `Idempotent-Replayed: true`; a retry while it
 * runs gets 409, the same key with another body 422. 4xx/5xx answers keep nothing, so a fixed
 * request can be sent again. If the KV is down the request runs, and the database's unique
 * (owner, key) constraint still stops a second image.
 *
 * With `rerender`, a replay is not the stored bytes: upload and private delivery URLs in them lapse
 * long before the 24 h. The handler runs with `request.idempotency.replay` set and answers from the
 * image's current state (fresh URLs, the status it has now).
 */
export function idempotency(
  kv: KeyValueStore,
  metrics: Metrics,
  opts: {
    rerender?: boolean;
    /**
     * Charged only by a request that takes the lock (a replay or a duplicate costs no token), in
     * the same KV call as the lock; a request without a key is charged on its own.
     */
    rateLimit?: RateLimitOptions;
  } = {},
) {
  const limit = opts.rateLimit;
  const unkeyedLimit = limit ? rateLimit(kv, metrics, limit) : null;
  const preHandler = async (request: FastifyRequest, reply: FastifyReply) => {
    request.idempotency = null;
    const key = parseIdempotencyKey(request.headers["idempotency-key"]);
    if (key === undefined) {
      await unkeyedLimit?.(request, reply);
      return;
    }
    const fp = fingerprint(request);
    const kvKey = `idem:${ownerHash(principalOf(request).ownerId)}:${hash(key)}`;
    const lock = JSON.stringify({
      state: "in_progress",
      fingerprint: fp,
      id: crypto.randomUUID(),
    } satisfies Stored & {
      id: string;
    });
    let acquired: boolean;
    let stored: Stored | null = null;
    let decision: BucketDecision | null = null;
    try {
      if (limit) {
        const claim = await kv.claimAndMeter(kvKey, lock, LOCK_MS, {
          key: bucketKey(limit.name, limit.keyOf(request)),
          ratePerSecond: limit.ratePerSecond,
          burst: limit.burst,
        });
        acquired = claim.acquired;
        if (claim.acquired) decision = claim.bucket;
        else stored = JSON.parse(claim.current) as Stored;
      } else {
        acquired = await kv.setIfAbsent(kvKey, lock, LOCK_MS);
        if (!acquired) {
          const raw = await kv.get(kvKey);
          stored = raw ? (JSON.parse(raw) as Stored) : null;
          if (!stored) acquired = await kv.setIfAbsent(kvKey, lock, LOCK_MS);
        }
      }
    } catch (err) {
      metrics.idempotencyFailOpen.inc();
      request.log.warn({ err }, "idempotency store unreachable; relying on the database constraint");
      if (limit) rateLimitFailedOpen(metrics, limit, request, err);
      request.idempotency = { key, kvKey: null, lock, replayed: false };
      return;
    }
    if (acquired) {
      // A refused charge took no lock: nothing to record or release when the 429 goes out.
      const held = decision === null || decision.allowed;
      request.idempotency = { key, kvKey: held ? kvKey : null, lock, replayed: false };
      if (decision && limit) enforceDecision(decision, limit, metrics, reply);
      return;
    }
    if (!stored) throw ERRORS.idempotencyInProgress("retry shortly", { headers: { "Retry-After": "1" } });
    if (stored.fingerprint !== fp) {
      metrics.idempotencyConflicts.inc({ reason: "different_request" });
      throw ERRORS.idempotencyKeyReused("this Idempotency-Key was used with a different request");
    }
    if (stored.state === "in_progress") {
      metrics.idempotencyConflicts.inc({ reason: "in_progress" });
      throw ERRORS.idempotencyInProgress("the first request with this key is still running", {
        headers: { "Retry-After": "1" },
      });
    }
    metrics.idempotencyReplays.inc();
    if (opts.rerender && stored.imageId) {
      request.idempotency = {
        key,
        kvKey,
        lock,
        replayed: true,
        replay: { status: stored.status ?? 200, imageId: stored.imageId },
      };
      reply.header("Idempotent-Replayed", "true");
      return;
    }
    request.idempotency = { key, kvKey, lock, replayed: true };
    return reply
      .code(stored.status ?? 200)
      .headers(stored.headers ?? {})
      .header("Idempotent-Replayed", "true")
      .send(stored.body);
  };

  const onSend = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const idem = request.idempotency;
    if (!idem?.kvKey || idem.replayed) return payload;
    try {
      if (reply.statusCode >= 200 && reply.statusCode < 300) {
        const headers: Record<string, string> = {};
        for (const name of ["content-type", "location"]) {
          const v = reply.getHeader(name);
          if (v !== undefined) headers[name] = String(v);
        }
        const done: Stored = {
          state: "done",
          fingerprint: (JSON.parse(idem.lock) as Stored).fingerprint,
          status: reply.statusCode,
          headers,
        };
        const body = typeof payload === "string" ? payload : "";
        const imageId = opts.rerender ? imageIdOf(body) : undefined;
        if (imageId) done.imageId = imageId;
        else done.body = body;
        await kv.set(idem.kvKey, JSON.stringify(done), KEPT_MS);
      } else {
        await kv.deleteIfEquals(idem.kvKey, idem.lock);
      }
    } catch (err) {
      request.log.warn({ err }, "could not record the idempotent response");
    }
    return payload;
  };

  return { preHandler, onSend };
}

/** A preHandler that a replay skips: a retry of an answered request costs no rate-limit token. */
export function unlessReplayed(
  hook: (request: FastifyRequest, reply: FastifyReply) => Promise<void>,
): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async (request, reply) => {
    if (request.idempotency?.replayed) return;
    await hook(request, reply);
  };
}

/** The serializer writes the image's id first (the schema's order); parsing the whole answer is the fallback. */
const LEADING_IMAGE_ID = /^\{"image":\{"id":"([A-Za-z0-9_-]+)"/;

function imageIdOf(body: string): string | undefined {
  const leading = LEADING_IMAGE_ID.exec(body);
  if (leading) return leading[1];
  try {
    const id = (JSON.parse(body) as { image?: { id?: unknown } }).image?.id;
    return typeof id === "string" ? id : undefined;
  } catch {
    return undefined;
  }
}
