import type { FastifyRequest } from "fastify";
import type { AppError } from "../../domain/errors.ts";
import { ERRORS } from "../../domain/errors.ts";
import type { App, HttpDeps } from "../types.ts";

declare module "fastify" {
  interface FastifyContextConfig {
    /** A /v1 route anyone may call (it checks a credential of its own, e.g. the storage-event token). */
    public?: boolean;
  }
}

/**
 * Every /v1 route is authenticated unless it opts out (`config: { public: true }`): a new route that
 * forgets authentication is not public by accident. It runs on onRequest, before the body is read
 * and validated, so an anonymous caller learns nothing about request schemas. Failed attempts are
 * metered per client address (IMGUP_TRUST_PROXY decides what that is); past the budget the address
 * gets 429 before its token costs a database lookup.
 */
export function registerApiAuthentication(
  app: App,
  deps: Pick<HttpDeps, "auth" | "kv" | "metrics" | "config">,
): void {
  const { perSecond, burst } = deps.config.auth.failures;
  const bucket = (request: FastifyRequest) => `authfail:${request.ip}`;
  const throttled = () =>
    ERRORS.rateLimited("too many failed authentication attempts from this address", {
      headers: { "Retry-After": String(Math.max(1, Math.ceil(1 / perSecond))) },
    });
  app.addHook("onRequest", async (request) => {
    if (!request.url.startsWith("/v1/") || request.routeOptions.url === undefined) return;
    if (request.routeOptions.config.public) return;
    try {
      request.principal = await deps.auth.authenticate(request.headers.authorization, {
        // Only a token that is not cached costs a lookup; a refused address is stopped before it.
        beforeLookup: async () => {
          const peek = await deps.kv
            .leakyBucket(bucket(request), { ratePerSecond: perSecond, burst, cost: 0 })
            .catch(() => null);
          if (peek && peek.remaining < 1) {
            deps.metrics.rateLimited.inc({ limit: "auth_failures" });
            throw throttled();
          }
        },
      });
    } catch (err) {
      if ((err as AppError).status === 401) {
        const charged = await deps.kv
          .leakyBucket(bucket(request), { ratePerSecond: perSecond, burst })
          .catch(() => null);
        if (charged && !charged.allowed) {
          deps.metrics.rateLimited.inc({ limit: "auth_failures" });
          throw throttled();
        }
      }
      throw err;
    }
  });
}
