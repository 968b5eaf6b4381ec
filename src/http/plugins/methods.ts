import { ERRORS } from "../../domain/errors.ts";
import type { App } from "../types.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by @fastify/cors when it answered the request as a preflight. */
    corsPreflightEnabled?: boolean;
  }
}

interface RoutePattern {
  methods: Set<string>;
  matches: (path: string) => boolean;
}

/**
 * A path a route exists for, asked with another method, is 405 with Allow (not 404), and a plain
 * OPTIONS (not a CORS preflight, which @fastify/cors answers) is 204 with Allow. Fastify routes by
 * method first and only knows "no route", so the routes are collected here as they are added and
 * matched by path. Must be registered before any route and after the CORS plugin.
 */
export function registerMethodHandling(app: App): void {
  const routes: RoutePattern[] = [];
  app.addHook("onRoute", (route) => {
    // @fastify/cors' catch-all OPTIONS route would make every path look routable.
    if (route.url === "*" || route.path === "*") return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    routes.push({ methods: new Set(methods.map((m) => m.toUpperCase())), matches: compile(route.url) });
  });

  const allowedFor = (url: string): string[] => {
    const path = url.split("?")[0] ?? url;
    const allowed = new Set<string>();
    for (const r of routes) if (r.matches(path)) for (const m of r.methods) allowed.add(m);
    if (allowed.size > 0) allowed.add("OPTIONS");
    return ORDER.filter((m) => allowed.has(m));
  };

  app.addHook("onRequest", async (request, reply) => {
    if (request.method === "OPTIONS") {
      if (request.corsPreflightEnabled) return;
      const allow = allowedFor(request.url);
      if (allow.length === 0) throw ERRORS.notFound(`no route for OPTIONS ${request.url.split("?")[0]}`);
      return reply.code(204).header("Allow", allow.join(", ")).header("Content-Length", "0").send();
    }
    if (!request.is404) return;
    const allow = allowedFor(request.url);
    if (allow.length === 0) return;
    throw ERRORS.methodNotAllowed(`${request.method} is not allowed here; the Allow header lists what is`, {
      headers: { Allow: allow.join(", ") },
    });
  });
}

const ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/** find-my-way's syntax as imgup uses it: static segments, `:param` segments and a trailing `*`. */
function compile(url: string): (path: string) => boolean {
  const source = url
    .split("/")
    .map((segment) => {
      if (segment === "*") return ".*";
      if (segment.startsWith(":")) return "[^/]+";
      return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("/");
  const re = new RegExp(`^${source}$`);
  return (path) => re.test(path);
}
