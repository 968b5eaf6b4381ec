import { AsyncLocalStorage } from "node:async_hooks";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { AppError, ERRORS } from "../../domain/errors.ts";
import type { App } from "../types.ts";
import { describeValidation } from "../validation-messages.ts";

export const PROBLEM_TYPE_BASE = "https://imgup.dev/problems/";

export function sendProblem(reply: FastifyReply, err: AppError): FastifyReply {
  for (const [name, value] of Object.entries(err.headers)) reply.header(name, value);
  return reply
    .code(err.status)
    .type("application/problem+json")
    .send(
      JSON.stringify({
        type: `${PROBLEM_TYPE_BASE}${err.code}`,
        title: err.title,
        status: err.status,
        detail: err.message,
        code: err.code,
        ...err.extra,
      }),
    );
}

/** Maps Fastify's own errors to stable codes; every error leaves as application/problem+json. */
function toAppError(err: FastifyError): AppError {
  if (err instanceof AppError) return err;
  if (err.validation) {
    const { detail, field } = describeValidation(err.validation, err.validationContext);
    return ERRORS.validation(detail, { extra: { field } });
  }
  switch (err.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return ERRORS.payloadTooLarge("the request body is too large");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return ERRORS.unsupportedMediaType("send the body as application/json");
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return ERRORS.validation("the JSON body is empty");
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return ERRORS.validation("Content-Length does not match the body");
  }
  if (err.statusCode === 400 && err instanceof SyntaxError) {
    return new AppError({
      status: 400,
      code: "invalid_json",
      title: "The body is not valid JSON",
      detail: err.message,
    });
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return new AppError({
      status: err.statusCode,
      code: "bad_request",
      title: "Bad request",
      detail: err.message,
    });
  }
  return internalError(err);
}

const internalError = (cause: unknown) =>
  new AppError({ status: 500, code: "internal_error", title: "Internal server error", cause });

/** The request being served, wherever its work continues (callbacks, timers, the body's events). */
const serving = new AsyncLocalStorage<{ request: FastifyRequest; reply: FastifyReply }>();

/**
 * The last line of defence against a crash a client could cause: an exception nothing caught (an
 * 'error' event with no listener, a throw in a stream callback) that was raised while a request
 * was served answers that request 500 and closes its connection; the process keeps serving. It
 * knows the request from the async context: `enterWith` in the first onRequest hook binds the
 * request to the connection's HTTP parser resource, so the body's events and everything the
 * handlers start carry it. An exception outside any request (a job, a timer of the process) is
 * not the client's doing and may have left shared state broken: that still logs fatal and exits.
 * Installed by `imgup serve` only: in tests and embedders the host process decides.
 */
export function installCrashGuard(logger: Logger, exit: (code: number) => void = process.exit): void {
  process.on("uncaughtException", (err, origin) => {
    const current = serving.getStore();
    if (!current || origin !== "uncaughtException") {
      logger.fatal({ err, origin }, "uncaught exception outside any request: exiting");
      exit(1);
      return;
    }
    const { request, reply } = current;
    request.log.error({ err }, "uncaught exception while serving the request: answered 500");
    const socket = request.raw.socket;
    if (reply.sent || reply.raw.headersSent) {
      socket?.destroy();
      return;
    }
    try {
      reply.header("Connection", "close");
      reply.raw.once("finish", () => socket?.destroy());
      sendProblem(reply, internalError(err));
    } catch {
      socket?.destroy();
    }
  });
}

/**
 * Fastify's `frameworkErrors`: errors raised before routing (a malformed URL, a path parameter
 * longer than maxParamLength) leave as problems too, not as Fastify's own JSON.
 */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const appErr = toAppError(err);
  // The request line says the status and code; the message is for debugging.
  request.log.debug({ code: appErr.code, status: appErr.status }, appErr.message);
  sendProblem(reply, appErr);
}

export function registerErrorHandling(app: App): void {
  // First of all hooks, run synchronously from the 'request' event: see installCrashGuard.
  app.addHook("onRequest", (request, reply, done) => {
    serving.enterWith({ request, reply });
    done();
  });
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const appErr = toAppError(err);
    if (appErr.status >= 500) request.log.error({ err }, "request failed");
    else request.log.debug({ code: appErr.code, status: appErr.status }, appErr.message);
    return sendProblem(reply, appErr);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, ERRORS.notFound(`no route for ${request.method} ${request.url.split("?")[0]}`)),
  );
}
