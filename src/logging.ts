import { AsyncLocalStorage } from "node:async_hooks";
import pino, { type DestinationStream, type Logger, type LoggerOptions } from "pino";

/**
 * What every log line emitted on behalf of one unit of work carries: `reqId` while an HTTP request
 * is handled, `jobId` (and `jobKind`) while a job runs. Kept in AsyncLocalStorage so services log
 * with the plain process logger and still name the request or job they work for.
 */
export type LogContext = Readonly<Record<string, string>>;

const context = new AsyncLocalStorage<LogContext>();

/** Set on a logger that already binds the context itself (Fastify's request.log), so no key doubles. */
const BINDS_CONTEXT = Symbol("imgup.logger-binds-context");

export function withLogContext<T>(fields: LogContext, fn: () => T): T {
  return context.run(fields, fn);
}

/** Runs fn outside any request or job, for work that merely starts there (a worker's poll loop). */
export function withoutLogContext<T>(fn: () => T): T {
  return context.exit(fn);
}

export function currentLogContext(): LogContext | undefined {
  return context.getStore();
}

/** Marks a child logger whose bindings already hold the context (its children inherit the mark). */
export function markContextBound(logger: object): void {
  (logger as unknown as Record<symbol, boolean>)[BINDS_CONTEXT] = true;
}

/**
 * Query parameters whose values are credentials: the storage-event token, delivery and embedded
 * upload signatures, S3 presigned URL signatures and session tokens, POST policies.
 */
const SECRET_PARAMS = /^(token|sig|signature|policy|x-amz-signature|x-amz-credential|x-amz-security-token)$/i;

/** A URL with the values of credential parameters replaced, for log lines. */
export function redactUrl(url: string): string {
  const q = url.indexOf("?");
  if (q < 0) return url;
  const params = url
    .slice(q + 1)
    .split("&")
    .map((pair) => {
      const eq = pair.indexOf("=");
      const name = eq < 0 ? pair : pair.slice(0, eq);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name);
      } catch {}
      return SECRET_PARAMS.test(decoded) ? `${name}=[redacted]` : pair;
    });
  return `${url.slice(0, q)}?${params.join("&")}`;
}

/** Fastify's request line without credentials (it logs method and URL of every request). */
function requestSerializer(req: {
  method?: string;
  url?: string;
  ip?: string;
  hostname?: string;
  socket?: { remotePort?: number };
}) {
  return {
    method: req.method,
    url: typeof req.url === "string" ? redactUrl(req.url) : req.url,
    hostname: req.hostname,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}

/** The process logger: JSON lines, `role` on every line, plus the request or job context. */
export function createLogger(opts: { level: string; role: string; destination?: DestinationStream }): Logger {
  const options: LoggerOptions = {
    level: opts.level,
    base: { role: opts.role },
    serializers: { req: requestSerializer, err: pino.stdSerializers.err },
    // A fresh object: pino merges the line's own fields into what the mixin returns.
    mixin: (_fields, _level, logger) => {
      if ((logger as unknown as Record<symbol, boolean>)[BINDS_CONTEXT]) return {};
      const fields = context.getStore();
      return fields ? { ...fields } : {};
    },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
