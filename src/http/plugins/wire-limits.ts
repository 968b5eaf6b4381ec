import type { Server, ServerOptions } from "node:http";
import type { Socket } from "node:net";
import { Transform, type TransformCallback } from "node:stream";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../../config.ts";
import { type AppError, ERRORS } from "../../domain/errors.ts";
import { lingerOnClose } from "../proxy-body.ts";
import type { App } from "../types.ts";

type HttpLimits = Config["http"];

/** Routes whose bodies are uploads (large, streamed): a minimum rate instead of a deadline. */
const UPLOAD_ROUTES = new Set(["PUT /storage/*", "POST /storage-post", "POST /v1/images"]);

/**
 * Fastify's and Node's own timeouts from the config. Fastify's defaults (0) would also switch off
 * Node's 300 s request limit: a client trickling a body could hold a connection forever.
 */
export function serverTimeouts(limits: HttpLimits): {
  connectionTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  http: ServerOptions;
} {
  const headersTimeout = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  return {
    // The socket's inactivity timeout: nothing moving either way for this long closes it.
    connectionTimeout: limits.idleTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: Math.min(limits.idleTimeoutMs, 72_000),
    http: {
      headersTimeout,
      requestTimeout: limits.requestTimeoutMs,
      // Node checks the two above only this often (30 s by default): a fraction of the shortest.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
    },
  };
}

/**
 * Over the cap, a client address's new connection is closed before a byte of it is read: one
 * address cannot hold every socket (and file descriptor) the process has.
 */
export function capConnectionsPerAddress(server: Server, max: number): void {
  const open = new Map<string, number>();
  server.on("connection", (socket: Socket) => {
    const address = socket.remoteAddress ?? "unknown";
    const count = (open.get(address) ?? 0) + 1;
    if (count > max) {
      socket.destroy();
      return;
    }
    open.set(address, count);
    socket.once("close", () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}

/**
 * An upload body's clock: it must keep up `uploadMinBytesPerSecond` over every window of
 * `uploadRateGraceMs` (the first window is the grace). A body that falls behind fails with a 408
 * AppError, which the route's reader reports as its error; the socket is closed once that answer
 * is out.
 */
class BodyClock extends Transform {
  private timer: NodeJS.Timeout | undefined;
  private windowBytes = 0;

  constructor(mode: { kind: "rate"; minPerSec: number; windowMs: number }) {
    super();
    if (mode.minPerSec > 0) {
      const needed = (mode.minPerSec * mode.windowMs) / 1000;
      this.timer = setInterval(() => {
        if (this.windowBytes < needed) {
          this.cut(ERRORS.bodyTooSlow(`the body arrived slower than ${mode.minPerSec} bytes per second`));
        }
        this.windowBytes = 0;
      }, mode.windowMs);
    }
    this.timer?.unref();
    // The reader handles the failure (it is how it learns of it); this keeps an early one handled.
    this.on("error", () => undefined);
  }

  private cut(err: AppError): void {
    this.stop();
    this.destroy(err);
  }

  private stop(): void {
    clearTimeout(this.timer);
    clearInterval(this.timer);
    this.timer = undefined;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.windowBytes += chunk.length;
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.stop();
    done();
  }

  override _destroy(err: Error | null, done: (error?: Error | null) => void): void {
    this.stop();
    done(err);
  }
}

const cutRequests = new WeakSet<FastifyRequest>();

function announcesBody(request: FastifyRequest): boolean {
  const headers = request.headers;
  return (
    headers["transfer-encoding"] !== undefined ||
    (headers["content-length"] !== undefined && headers["content-length"] !== "0")
  );
}

/**
 * A small (JSON) body must arrive whole within `ms`. No stream in between, which would cost every
 * API request a Transform: at the deadline the body's reader (Fastify's, listening for `error`)
 * is failed with a 408. Not `destroy`: that would close the socket before the answer is written.
 */
function startBodyDeadline(
  request: FastifyRequest,
  reply: FastifyReply,
  payload: NodeJS.ReadableStream,
  ms: number,
): void {
  const timer = setTimeout(() => {
    if (request.raw.complete || reply.sent) return;
    cutRequests.add(request);
    const err = ERRORS.bodyTimeout(`the body did not arrive within ${ms} ms`);
    if (payload.listenerCount("error") > 0) payload.emit("error", err);
    else request.raw.destroy(err);
  }, ms);
  timer.unref();
  // Holds the request until then otherwise: one per request at the intents' rate adds up.
  reply.raw.once("finish", () => clearTimeout(timer));
  payload.once("end", () => clearTimeout(timer));
}

/** Starts every request body's clock, and closes the connection of a body it cut. */
export function registerWireLimits(app: App, limits: HttpLimits): void {
  capConnectionsPerAddress(app.server, limits.maxConnectionsPerIp);

  app.addHook("preParsing", (request, reply, payload, done) => {
    if (!announcesBody(request)) return done(null, payload);
    if (!UPLOAD_ROUTES.has(`${request.method} ${request.routeOptions.url}`)) {
      startBodyDeadline(request, reply, payload, limits.bodyTimeoutMs);
      return done(null, payload);
    }
    const clock = new BodyClock({
      kind: "rate",
      minPerSec: limits.uploadMinBytesPerSecond,
      windowMs: limits.uploadRateGraceMs || 1000,
    });
    clock.once("error", () => {
      cutRequests.add(request);
      // The client's remaining bytes are not wanted; the reader was told through the error.
      payload.unpipe(clock);
    });
    payload.pipe(clock);
    // Answered before the body was read to its end (a refusal, a cut): the raw body must flow
    // again, as Node's own drain or lingerOnClose expect; a full clock would hold it paused.
    reply.raw.once("finish", () => {
      if (request.raw.complete) return;
      payload.unpipe(clock);
      clock.destroy();
      payload.resume();
    });
    done(null, clock);
  });

  app.addHook("onSend", async (request, reply) => {
    if (cutRequests.has(request)) {
      reply.header("Connection", "close");
      // No lingering for a client this slow: the socket goes once the answer is written.
      reply.raw.once("finish", () => request.raw.socket.destroy());
      return;
    }
    // Refused before its body arrived (at authentication, say): the connection is not kept for a
    // body nobody will read, so a client cannot hold it open by trickling one. It closes gracefully
    // (lingerOnClose, for at most the body timeout), so a client still sending gets this answer
    // rather than a reset. A success answered early (an idempotent replay) keeps it.
    if (reply.statusCode >= 400 && announcesBody(request) && !request.raw.complete) {
      reply.header("Connection", "close");
      lingerOnClose(request.raw, limits.bodyTimeoutMs);
    }
  });
}
