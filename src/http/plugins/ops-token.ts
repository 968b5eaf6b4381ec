import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import type { Config } from "../../config.ts";

/** Which server asks: the API's public port, or IMGUP_ADMIN_PORT (only the operator's network). */
export type OpsPort = "api" | "admin";

/**
 * Who may see operational detail (/metrics, why /readyz failed): the holder of IMGUP_OPS_TOKEN.
 * Without one configured, embedded mode (a developer's own machine) shows both; with DATABASE_URL
 * the API port shows neither (metrics tell traffic and internals, error text hosts and ports), the
 * admin port, which an operator opens only to the scraper, keeps /metrics open.
 */
export function opsAccess(config: Config, port: OpsPort = "api") {
  const embedded = config.database.url === undefined;
  const expected = config.http.opsToken ? digest(config.http.opsToken) : null;
  const presented = (request: FastifyRequest): boolean => {
    if (!expected) return false;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? "");
    return match?.[1] !== undefined && timingSafeEqual(digest(match[1]), expected);
  };
  return {
    metrics: (request: FastifyRequest): boolean =>
      expected ? presented(request) : embedded || port === "admin",
    readyDetails: (request: FastifyRequest): boolean => (expected ? presented(request) : embedded),
    /** Why /metrics was refused, for the answer. */
    metricsRefusal: expected
      ? "send Authorization: Bearer <IMGUP_OPS_TOKEN>"
      : "with DATABASE_URL the API port serves /metrics only with IMGUP_OPS_TOKEN (send it as a bearer token); or scrape IMGUP_ADMIN_PORT",
  };
}

const digest = (s: string) => createHash("sha256").update(s).digest();
