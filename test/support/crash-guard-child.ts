/**
 * A minimal Fastify with imgup's error handling and crash guard, run as a child process by
 * test/integration/hostile-crash-guard.test.ts: routes that raise exceptions nothing catches,
 * inside a request and outside any.
 */
import { EventEmitter } from "node:events";
import type { Readable } from "node:stream";
import Fastify from "fastify";
import pino from "pino";
import { installCrashGuard, registerErrorHandling } from "../../src/http/plugins/errors.ts";
import type { App } from "../../src/http/types.ts";

const logger = pino({ level: "info" });
const app = Fastify({ loggerInstance: logger }) as unknown as App;
registerErrorHandling(app);
installCrashGuard(logger);

let armed = false;
// Created before any request: its callbacks run outside every request's context.
setInterval(() => {
  if (armed) new EventEmitter().emit("error", new Error("outside any request"));
}, 20);

app.get("/healthz", async () => ({ ok: true }));
app.get("/boom-later", () => {
  // An emitter with no 'error' listener, failing in a timer the handler started.
  setTimeout(() => new EventEmitter().emit("error", new Error("no listener")), 5);
  return new Promise(() => {});
});
app.register(async (scope) => {
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser("*", (_req, payload, done) => done(null, payload));
  scope.post("/boom-body", (request) => {
    // Thrown from the body's own 'data' event, which runs in the connection's context.
    (request.body as Readable).on("data", () => {
      throw new Error("thrown while reading the body");
    });
    return new Promise(() => {});
  });
});
app.get("/arm", async () => {
  armed = true;
  return { armed };
});

const address = await app.listen({ host: "127.0.0.1", port: 0 });
process.stdout.write(`${JSON.stringify({ msg: "listening", address })}\n`);
