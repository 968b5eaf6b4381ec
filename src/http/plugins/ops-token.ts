import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import type { Config } from "../../config.ts";

/**
 * Who may see operational detail (/metrics, why /readyz failed): the holder of IMGUP_OPS_TOKEN;
 * without one configured, everyone for /metrics, and for /readyz's details only embedded mode,
 * where the API port is a developer's own machine. Error text names hosts and ports.
 */
export function opsAccess(config: Config) {
  const expected = config.http.opsToken ? digest(config.http.opsToken) : null;
  const presented = (request: FastifyRequest): boolean => {
    if (!expected) return false;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? "");
    return match?.[1] !== undefined && timingSafeEqual(digest(match[1]), expected);
  };
  return {
    metrics: (request: FastifyRequest): boolean => !expected || presented(request),
    readyDetails: (request: FastifyRequest): boolean =>
      expected ? presented(request) : config.database.url === undefined,
  };
}

const digest = (s: string) => createHash("sha256").update(s).digest();
