import { AsyncLocalStorage } from "node:async_hooks";
import { createRequire } from "node:module";
import pino, { type DestinationStream, type Logger, type LoggerOptions } from "pino";
import type { PrettyOptions } from "pino-pretty";

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
const SECRET_PARAMS =
  /^(token|access_token|api_key|sig|signature|policy|x-amz-signature|x-amz-credential|x-amz-security-token)$/i;

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

/** IMGUP_LOG_FORMAT: `auto` is pretty on a terminal and JSON lines anywhere else. */
export type LogFormatSetting = "auto" | "json" | "pretty";

export function resolveLogFormat(
  setting: LogFormatSetting,
  isTTY = process.stdout.isTTY === true,
): "json" | "pretty" {
  if (setting === "auto") return isTTY ? "pretty" : "json";
  return setting;
}

/**
 * Fields the pretty lines leave out: the request line already says them in its message, and
 * pid/hostname/role are noise in one terminal.
 */
const PRETTY_IGNORED = "pid,hostname,role,reqId,method,url,status,ms,code,ip";

/**
 * pino-pretty loaded only when a terminal asks for it: JSON mode (production) never pays for it.
 * In-process and synchronous, not a transport: no worker thread, and a fatal line printed right
 * before process.exit is not lost.
 */
function prettyStream(destination: DestinationStream | undefined): DestinationStream {
  const pretty = createRequire(import.meta.url)("pino-pretty") as (o: PrettyOptions) => DestinationStream;
  return pretty({
    sync: true,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: PRETTY_IGNORED,
    singleLine: true,
    ...(destination ? { destination } : {}),
  });
}

/**
 * The process logger: `role` on every line plus the request or job context. JSON lines, or
 * human lines (pino-pretty) when `format` says so; see resolveLogFormat.
 */
export function createLogger(opts: {
  level: string;
  role: string;
  destination?: DestinationStream;
  format?: LogFormatSetting;
}): Logger {
  const options: LoggerOptions = {
    level: opts.level,
    base: { role: opts.role },
    serializers: { req: requestSerializer, err: pino.stdSerializers.err },
    hooks: {
      // Fastify announces each address it listens on at info; the startup banner says the one to open.
      logMethod(args, method, level) {
        const first = args[0] as unknown;
        if (level === 30 && typeof first === "string" && first.startsWith("Server listening at ")) {
          return this.debug(first);
        }
        return method.apply(this, args);
      },
    },
    // A fresh object: pino merges the line's own fields into what the mixin returns.
    mixin: (_fields, _level, logger) => {
      if ((logger as unknown as Record<symbol, boolean>)[BINDS_CONTEXT]) return {};
      const fields = context.getStore();
      return fields ? { ...fields } : {};
    },
  };
  if (resolveLogFormat(opts.format ?? "json") === "pretty")
    return pino(options, prettyStream(opts.destination));
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

export interface BannerInfo {
  role: string;
  /** The URL to open (IMGUP_PUBLIC_URL); null for a role that serves no API. */
  url: string | null;
  /** The demo page link (with the new development key in its fragment, right after creating it). */
  demo?: { url: string; keyFile: string | null } | null;
  /** Where the HTTP server actually listens, when that differs from `url` (a proxy, 0.0.0.0). */
  listen?: string | null;
  /** The admin endpoint (IMGUP_ADMIN_PORT), when there is one. */
  admin?: string | null;
}

/**
 * The one line a start prints. It names the public URL only, never the bind address as a link:
 * opening the page at another host than IMGUP_PUBLIC_URL makes its uploads cross-origin.
 */
export function startupBanner(logger: Logger, info: BannerInfo): void {
  const parts = [`imgup ${info.role === "all" ? "" : `(${info.role}) `}ready`];
  if (info.url) parts[0] += ` at ${info.url}`;
  if (info.admin) parts.push(`admin: ${info.admin} (/healthz, /readyz, /metrics)`);
  if (info.demo) {
    parts.push(`demo page: ${info.demo.url}${info.demo.keyFile ? ` (API key in ${info.demo.keyFile})` : ""}`);
  }
  logger.info(
    {
      url: info.url,
      ...(info.listen ? { listen: info.listen } : {}),
      ...(info.admin ? { admin: info.admin } : {}),
    },
    parts.join(" · "),
  );
}
