import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createImgup } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { uploadKey } from "../../src/domain/keys.ts";
import { createLogger } from "../../src/logging.ts";
import { Api, putTo } from "../support/api.ts";
import { eventually, freePort } from "../support/harness.ts";
import { photo } from "../support/image-builders.ts";
import { useTestBuild } from "../support/test-build.ts";

interface LogLine {
  level: number;
  msg?: string;
  reqId?: string;
  jobId?: string;
  jobKind?: string;
  imageId?: string;
  [k: string]: unknown;
}

/** imgup on PGlite with the production logger writing JSON lines into `lines`. */
async function startLogged(env: Record<string, string>) {
  const dataDir = await mkdtemp(path.join(tmpdir(), "imgup-obs-"));
  const port = await freePort();
  const config = loadConfig({
    IMGUP_DATA_DIR: dataDir,
    PORT: String(port),
    IMGUP_PUBLIC_URL: `http://127.0.0.1:${port}`,
    IMGUP_DEV_KEY: "false",
    IMGUP_JOB_POLL_MS: "50",
    IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
    ...env,
  });
  await useTestBuild(config);
  const lines: LogLine[] = [];
  const logger = createLogger({
    level: "debug",
    role: config.role,
    destination: { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) },
  });
  const imgup = await createImgup(config, { logger });
  const key = (await imgup.auth.createKey({ ownerId: "alice" })).key;
  const url = await imgup.start();
  return {
    imgup,
    lines,
    api: new Api(url ?? "", key),
    stop: async () => {
      await imgup.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

const jpeg = () => photo(64, 48).jpeg().toBuffer();
const TOKEN = "events-token-0123456789abcdef";

describe("request ids in the logs (API role: nothing runs in the background)", () => {
  let run: Awaited<ReturnType<typeof startLogged>>;
  beforeAll(async () => {
    run = await startLogged({ IMGUP_ROLE: "api", IMGUP_EVENTS_TOKEN: TOKEN });
  });
  afterAll(async () => {
    await run?.stop();
  });

  /** The lines written from just before the request until its request line. */
  async function linesOf(send: () => Promise<Response>): Promise<{ res: Response; lines: LogLine[] }> {
    const from = run.lines.length;
    const res = await send();
    await res.arrayBuffer();
    const id = res.headers.get("x-request-id");
    // The request line (RequestLogController) is the last one a request writes.
    const done = (l: LogLine) =>
      typeof l.status === "number" && typeof l.method === "string" && l.reqId === id;
    await eventually(async () => run.lines.slice(from).some(done));
    const end = run.lines.findIndex((l, i) => i >= from && done(l));
    return { res, lines: run.lines.slice(from, end + 1) };
  }

  it("puts the given X-Request-Id on every line of the request, service lines included, and echoes it", async () => {
    const bytes = await jpeg();
    const intent = await run.api.createIntent({
      filename: "a.jpg",
      contentType: "image/jpeg",
      size: bytes.length,
    });
    expect(intent.status).toBe(201);
    const upload = intent.body.upload;
    const headers = new Headers(upload.headers);
    headers.set("x-request-id", "abc");
    const { res, lines } = await linesOf(() => fetch(upload.url, { method: "PUT", headers, body: bytes }));
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("abc");
    // The storage event is handled inside the PUT and logged by a service through the process logger.
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(["incoming request", "object created"]));
    expect(lines.filter((l) => l.reqId !== "abc")).toEqual([]);
    // One reqId key per line, not two (Fastify's own binding and the context's).
    expect(lines.every((l) => JSON.stringify(l).split('"reqId"').length === 2)).toBe(true);
  });

  it("never logs a credential carried in a URL: event token, upload and delivery signatures, S3 presigned parts", async () => {
    const bytes = await jpeg();
    const intent = await run.api.createIntent({
      filename: "s.jpg",
      contentType: "image/jpeg",
      size: bytes.length,
    });
    const upload = intent.body.upload;
    const uploadSig = new URL(upload.url).searchParams.get("sig") as string;
    expect(uploadSig.length).toBeGreaterThan(10);
    const put = await linesOf(() =>
      fetch(upload.url, { method: "PUT", headers: new Headers(upload.headers), body: bytes }),
    );
    const event = await linesOf(() =>
      fetch(`${run.api.baseUrl}/v1/events/storage?token=${TOKEN}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ Records: [] }),
      }),
    );
    const forged = "deadbeef".repeat(8);
    const delivery = await linesOf(() =>
      fetch(
        `${run.api.baseUrl}/i/${intent.body.image.id}/original?exp=99999999999&sig=${forged}&X-Amz-Signature=${forged}`,
      ),
    );
    const text = JSON.stringify([...put.lines, ...event.lines, ...delivery.lines]);
    expect(text).toContain("incoming request");
    expect(text).toContain("[redacted]");
    for (const secret of [uploadSig, TOKEN, forged]) expect(text).not.toContain(secret);
  });

  it("carries the id of a request with a JSON body past body parsing into the services", async () => {
    const intent = await run.api.createIntent({ filename: "b.jpg", contentType: "image/jpeg", size: 100 });
    const record = {
      eventVersion: "2.2",
      eventSource: "ceph:s3",
      eventName: "ObjectCreated:Put",
      s3: { bucket: { name: "b" }, object: { key: uploadKey(intent.body.image.id), size: 100 } },
    };
    const { res, lines } = await linesOf(() =>
      fetch(`${run.api.baseUrl}/v1/events/storage`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${TOKEN}`,
          "content-type": "application/json",
          "x-request-id": "ev-1",
        },
        body: JSON.stringify({ Records: [record] }),
      }),
    );
    expect(res.status).toBe(200);
    // "object created" comes from the service (process logger), "storage events received" from request.log.
    expect(lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining(["object created", "storage events received"]),
    );
    expect(lines.filter((l) => l.reqId !== "ev-1")).toEqual([]);
  });

  it("replaces an id that is not a safe token with a fresh one", async () => {
    for (const given of ["has spaces in it", "x".repeat(129), 'quote"d']) {
      const { res, lines } = await linesOf(() =>
        fetch(`${run.api.baseUrl}/healthz`, { headers: { "x-request-id": given } }),
      );
      const id = res.headers.get("x-request-id");
      expect(id).not.toBe(given);
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(lines.length).toBeGreaterThanOrEqual(2);
      expect(lines.every((l) => l.reqId === id)).toBe(true);
    }
  });
});

describe("job lines name the job, not the request that queued it", () => {
  let run: Awaited<ReturnType<typeof startLogged>>;
  beforeAll(async () => {
    run = await startLogged({});
  });
  afterAll(async () => {
    await run?.stop();
  });

  it("processing woken by a request logs jobId and imageId, never that request's id", async () => {
    const bytes = await jpeg();
    const intent = await run.api.createIntent({
      filename: "c.jpg",
      contentType: "image/jpeg",
      size: bytes.length,
    });
    const id = intent.body.image.id;
    // The PUT enqueues the job and wakes the worker from inside the request.
    expect((await putTo(intent.body.upload, bytes, { "x-request-id": "put-1" })).status).toBe(200);
    expect((await run.api.settled(id)).status).toBe("ready");
    await eventually(async () => run.lines.some((l) => l.msg === "job done" && l.key === `process:${id}`));
    const ready = run.lines.filter((l) => l.msg === "image ready" && l.imageId === id);
    expect(ready).toHaveLength(1);
    expect(ready[0]).toMatchObject({ jobKind: "process-image" });
    expect(ready[0]?.jobId).toMatch(/^\d+$/);
    const jobLines = run.lines.filter((l) => l.jobId !== undefined);
    expect(jobLines.length).toBeGreaterThanOrEqual(3);
    expect(jobLines.filter((l) => l.reqId !== undefined)).toEqual([]);
    // And the worker's next polls do not inherit it either.
    expect(
      run.lines.filter((l) => l.reqId === "put-1" && l.msg !== undefined).map((l) => l.msg),
    ).not.toContain("job done");
  });
});

describe("/readyz names the dependency that failed", () => {
  const running: Array<{ stop: () => Promise<void> }> = [];
  const servers: Array<{ close: () => Promise<void> }> = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.stop()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  const start = async (env: Record<string, string>) => {
    const run = await startLogged({ IMGUP_ROLE: "api", LOG_LEVEL: "silent", ...env });
    running.push(run);
    return run;
  };
  const readyz = async (run: { api: Api }) => {
    const res = await run.api.request<{ status: string; checks: Record<string, string>; failed: string[] }>(
      "GET",
      "/readyz",
    );
    return res;
  };
  const s3To = (port: number) => ({
    IMGUP_STORAGE: "s3",
    S3_BUCKET: "readyz",
    S3_ENDPOINT: `http://127.0.0.1:${port}`,
    S3_FORCE_PATH_STYLE: "true",
    S3_ACCESS_KEY_ID: "test",
    S3_SECRET_ACCESS_KEY: "test-secret",
  });

  it("is 200 ok with every check ok", async () => {
    const res = await readyz(await start({}));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: "ok",
      checks: { database: "ok", kv: "ok", storage: "ok" },
      failed: [],
    });
  });

  it("is 503 naming the storage when its endpoint refuses connections", async () => {
    const res = await readyz(await start(s3To(await freePort())));
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ status: "unavailable", failed: ["storage"] });
    expect(res.body.checks).toMatchObject({ database: "ok", kv: "ok" });
    expect(res.body.checks.storage).toMatch(/ECONNREFUSED/);
  });

  it("is 503 naming the KV when Redis refuses connections", async () => {
    const res = await readyz(await start({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` }));
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ status: "unavailable", failed: ["kv"] });
    expect(res.body.checks).toMatchObject({ database: "ok", storage: "ok" });
    expect(res.body.checks.kv).toMatch(/unreachable|ECONNREFUSED/i);
  });

  it("bounds a check that hangs: the storage accepts connections and never answers", async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
    });
    servers.push({
      close: async () => {
        for (const socket of sockets) socket.destroy();
        await new Promise((r) => silent.close(r));
      },
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as { port: number }).port;
    const run = await start({ ...s3To(port), IMGUP_READY_TIMEOUT_MS: "300" });
    const res = await readyz(run);
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ failed: ["storage"], checks: { storage: "timed out after 300 ms" } });
  });
});
