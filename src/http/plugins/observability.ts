import { AsyncResource } from "node:async_hooks";
import type { FastifyRequest } from "fastify";
import { markContextBound, withLogContext } from "../../logging.ts";
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

  app.addHook("onResponse", async (request, reply) => {
    metrics.httpRequestSeconds.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? UNMATCHED_ROUTE,
        status_code: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
  });
}
