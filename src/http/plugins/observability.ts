import { AsyncResource } from "node:async_hooks";
import { type FastifyReply, type FastifyRequest, LogController } from "fastify";
import { markContextBound, redactUrl, withLogContext } from "../../logging.ts";
import type { Metrics } from "../../metrics.ts";
import type { App } from "../types.ts";

/** Route label of requests no route matched: raw URLs would make the label set unbounded. */
export const UNMATCHED_ROUTE = "unmatched";

/**
 * Per request: its id on every log line written while it is handled (services log through the
 * process logger; the async context carries `reqId` to them), and the latency histogram by route
 * pattern and status.
 */
export function registerObservability(app: App, metrics: Metrics): void {
  const scopes = new WeakMap<FastifyRequest, AsyncResource>();
  app.addHook("onRequest", (request, _reply, done) => {
    // request.log binds reqId itself; the mark keeps the mixin from adding it a second time.
    if (request.log !== app.log) markContextBound(request.log);
    withLogContext({ reqId: request.id }, () => {
      const scope = new AsyncResource("imgup.request");
      scopes.set(request, scope);
      scope.runInAsyncScope(done);
    });
  });
  // A body is read in the socket's async context, which never saw onRequest's: re-enter the
  // request's before validation, the handler and their hooks run.
  app.addHook("preValidation", (request, _reply, done) => {
    const scope = scopes.get(request);
    if (scope) scope.runInAsyncScope(done);
    else done();
  });

  // The request line names the problem's code: errors.ts logs 4xx only at debug.
  // A callback hook, not an async one: every response passes here, and most need nothing.
  app.addHook("onSend", (request, reply, payload, done) => {
    if (reply.statusCode >= 400 && typeof payload === "string") {
      const type = reply.getHeader("content-type");
      if (typeof type === "string" && type.startsWith("application/problem+json")) {
        try {
          const code = (JSON.parse(payload) as { code?: unknown }).code;
          if (typeof code === "string") problemCodes.set(request, code);
        } catch {}
      }
    }
    done(null, payload);
  });

  app.addHook("onResponse", (request, reply, done) => {
    metrics.httpRequestSeconds.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? UNMATCHED_ROUTE,
        status_code: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
    done();
  });
}

const problemCodes = new WeakMap<FastifyRequest, string>();

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

/** Whether a logger at `current` writes `level` (unknown levels, custom ones, write). */
function enabled(current: string, level: string): boolean {
  if (current === "silent") return false;
  const c = LEVELS[current];
  const l = LEVELS[level];
  return c === undefined || l === undefined || l >= c;
}

/** Probes and scrapes that succeed say nothing at info: one every few seconds would drown the log. */
const QUIET_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

/**
 * One line per request at info, written when the response is finished: method, URL (credentials
 * in the query redacted), status, problem code, duration and the request id, instead of Fastify's
 * "incoming request" plus "request completed". 5xx at error, a response cut off by a stream error at warn.
 */
export class RequestLogController extends LogController {
  /** At debug only: says a request arrived while it is still being read or handled. */
  override incomingRequest(request: FastifyRequest): void {
    if (!this.isLogDisabled(request)) request.log.debug({ req: request }, "incoming request");
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (this.isLogDisabled(request)) return;
    const status = reply.statusCode;
    // Nothing below is written at this level: skip building the line (the common case at warn).
    const level = error ? "warn" : status >= 500 ? "error" : "info";
    if (!enabled(reply.log.level, level)) return;
    const url = redactUrl(request.url);
    const ms = Math.round(reply.elapsedTime * 10) / 10;
    const code = problemCodes.get(request);
    // request.ip is the client's behind a proxy named in IMGUP_TRUST_PROXY, else the peer's.
    const fields = { method: request.method, url, status, ms, ip: request.ip, ...(code ? { code } : {}) };
    const msg = `${request.method} ${url} ${status}${code ? ` ${code}` : ""} ${ms} ms`;
    if (error) reply.log.warn({ ...fields, err: error }, msg);
    else if (status >= 500) reply.log.error(fields, msg);
    else if (status < 400 && QUIET_PATHS.has(url.split("?")[0] ?? "")) reply.log.debug(fields, msg);
    else reply.log.info(fields, msg);
  }
}
