import type { FastifyReply, FastifyRequest } from "fastify";
import { ERRORS } from "../../domain/errors.ts";
import type { BucketDecision, KeyValueStore } from "../../kv/kv.ts";
import type { Metrics } from "../../metrics.ts";
import type { HttpDeps } from "../types.ts";
import { principalOf } from "./auth.ts";

export interface RateLimitOptions {
  name: string;
  ratePerSecond: number;
  burst: number;
  keyOf: (request: FastifyRequest) => string;
}

export interface KeyedRateLimitOptions extends Omit<RateLimitOptions, "keyOf"> {
  /** Send the RateLimit-* headers of this limit (a route with two limits shows one). Default true. */
  headers?: boolean;
}

/**
 * Leaky-bucket limit shared by every instance through the KV. Answers carry the IETF draft
 * RateLimit-* headers; a refusal is 429 with Retry-After. If the KV is unreachable the request
 * passes (counted): a rate limiter must never take the API down with it.
 */
export function rateLimit(kv: KeyValueStore, metrics: Metrics, opts: RateLimitOptions) {
  const limit = keyedRateLimit(kv, metrics, opts);
  return (request: FastifyRequest, reply: FastifyReply) => limit(opts.keyOf(request), request, reply);
}

/** The same limit for a key the request does not carry (e.g. the owner of the image it asks for). */
export function keyedRateLimit(kv: KeyValueStore, metrics: Metrics, opts: KeyedRateLimitOptions) {
  return async (key: string, request: FastifyRequest, reply: FastifyReply) => {
    let decision: BucketDecision;
    try {
      decision = await kv.leakyBucket(bucketKey(opts.name, key), {
        ratePerSecond: opts.ratePerSecond,
        burst: opts.burst,
      });
    } catch (err) {
      rateLimitFailedOpen(metrics, opts, request, err);
      return;
    }
    enforceDecision(decision, opts, metrics, reply);
  };
}

/** The KV key of a limit's bucket: every route charging a limit by name shares it. */
export function bucketKey(name: string, key: string): string {
  return `rl:${name}:${key}`;
}

/** The store could not be asked: the request passes, counted and logged. */
export function rateLimitFailedOpen(
  metrics: Metrics,
  opts: { name: string },
  request: FastifyRequest,
  err: unknown,
): void {
  metrics.rateLimitFailOpen.inc({ limit: opts.name });
  request.log.warn({ err, limit: opts.name }, "rate limit store unreachable; letting the request through");
}

/** The RateLimit-* headers of a decision, and 429 with Retry-After when it refused. */
export function enforceDecision(
  decision: BucketDecision,
  opts: KeyedRateLimitOptions,
  metrics: Metrics,
  reply: FastifyReply,
): void {
  if (opts.headers !== false) {
    reply.header("RateLimit-Limit", String(opts.burst));
    reply.header("RateLimit-Remaining", String(decision.remaining));
    reply.header("RateLimit-Reset", String(Math.ceil(decision.resetMs / 1000)));
  }
  if (!decision.allowed) {
    metrics.rateLimited.inc({ limit: opts.name });
    const retryAfter = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
    throw ERRORS.rateLimited(`${opts.name}: at most ${opts.ratePerSecond}/s with bursts of ${opts.burst}`, {
      headers: { "Retry-After": String(retryAfter) },
    });
  }
}

/** The per-owner budget intents and proxy uploads share: both start an image. */
export function intentRateLimit(deps: Pick<HttpDeps, "kv" | "metrics" | "config">) {
  return rateLimit(deps.kv, deps.metrics, intentRateLimitOptions(deps));
}

/** The options of that budget, for a route that charges it together with its idempotency lock. */
export function intentRateLimitOptions(deps: Pick<HttpDeps, "config">): RateLimitOptions {
  return {
    name: "intents",
    ratePerSecond: deps.config.rateLimit.perSecond,
    burst: deps.config.rateLimit.burst,
    keyOf: (request) => principalOf(request).ownerId,
  };
}
