import { randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api } from "../support/api.ts";
import { eventually, type Running, startImgup } from "../support/harness.ts";
import { closedWithin, type RawExchange, rawConnect } from "../support/raw-http.ts";

/** Issue 12, item 5: slow bodies are cut, connections per address are capped. */
const BODY_TIMEOUT_MS = 300;
const GRACE_MS = 300;
const MIN_RATE = 10_000;
// Only a real hang reaches this: the configured deadline with generous slack.
const BOUND_MS = BODY_TIMEOUT_MS * 3 + 10_000;

const pglite = { name: "pglite" as const, env: {}, cleanup: async () => {} };

function head(method: string, path: string, headers: Record<string, string | number>): string {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return `${method} ${path} HTTP/1.1\r\nHost: x\r\n${lines.join("\r\n")}\r\n\r\n`;
}

describe("wire limits", () => {
  let run: Running;
  let api: Api;
  const open: RawExchange[] = [];

  beforeAll(async () => {
    run = await startImgup(pglite, {
      IMGUP_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
      IMGUP_UPLOAD_RATE_GRACE_MS: String(GRACE_MS),
      IMGUP_UPLOAD_MIN_BYTES_PER_SEC: String(MIN_RATE),
      // Long enough that the body clocks, not the idle timeout, are what close these sockets.
      IMGUP_IDLE_TIMEOUT_MS: "120000",
      IMGUP_MAX_UPLOAD_BYTES: String(1024 * 1024),
    });
    api = new Api(run.baseUrl, run.alice);
  });
  afterAll(async () => {
    for (const ex of open) ex.socket.destroy();
    await run?.stop();
  });

  async function slowBody(method: string, path: string, headers: Record<string, string | number>) {
    const ex = await rawConnect(run.baseUrl);
    open.push(ex);
    ex.socket.write(head(method, path, headers));
    ex.socket.write('{"a":1');
    await closedWithin(ex, BOUND_MS);
    return ex;
  }

  it("a JSON body that stops short of its Content-Length: 408 body_timeout, then the server closes", async () => {
    const ex = await slowBody("POST", "/v1/uploads", {
      authorization: `Bearer ${run.alice}`,
      "content-type": "application/json",
      "content-length": 1000,
    });
    expect(ex.status()).toBe(408);
    expect(ex.received()).toContain("body_timeout");
  });

  it("an unauthenticated trickle is closed as well", async () => {
    const ex = await slowBody("POST", "/v1/uploads", {
      "content-type": "application/json",
      "content-length": 1000,
    });
    expect(ex.received()).not.toContain("HTTP/1.1 2");
  });

  it("a PUT /storage/… whose body is shorter than its Content-Length is answered 408 and closed", async () => {
    const bytes = await sharp({ create: { width: 32, height: 32, channels: 3, background: "#123" } })
      .png()
      .toBuffer();
    const created = await api.createIntent({
      filename: "a.png",
      contentType: "image/png",
      size: bytes.length,
    });
    expect(created.status).toBe(201);
    const url = new URL(created.body.upload.url);
    const ex = await rawConnect(run.baseUrl);
    open.push(ex);
    ex.socket.write(
      head("PUT", `${url.pathname}${url.search}`, {
        ...created.body.upload.headers,
        "content-length": bytes.length,
      }),
    );
    ex.socket.write(bytes.subarray(0, 10));
    await closedWithin(ex, BOUND_MS);
    expect(ex.status()).toBe(408);
    expect(ex.received()).toContain("body_too_slow");
  });

  it("a raw POST /v1/images trickling below the minimum rate is answered 408 and closed", async () => {
    const ex = await rawConnect(run.baseUrl);
    open.push(ex);
    ex.socket.write(
      head("POST", "/v1/images", {
        authorization: `Bearer ${run.alice}`,
        "content-type": "image/png",
        "content-length": 500_000,
      }),
    );
    ex.socket.write(randomBytes(100));
    await closedWithin(ex, BOUND_MS);
    expect(ex.status()).toBe(408);
    expect(ex.received()).toContain("body_too_slow");
  });

  it("a form with a 1 KB image and megabytes around it is refused 413 (chunked: no Content-Length)", async () => {
    const image = await sharp({ create: { width: 16, height: 16, channels: 3, background: "#456" } })
      .png()
      .toBuffer();
    const boundary = "----hostile";
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${run.baseUrl}/v1/images`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${run.alice}`,
          "content-type": `multipart/form-data; boundary=${boundary}`,
          "transfer-encoding": "chunked",
        },
      });
      req.once("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.once("error", reject);
      req.write(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n` +
          "Content-Type: image/png\r\n\r\n",
      );
      req.write(image);
      req.write(`\r\n--${boundary}--\r\n`);
      // The epilogue: ignored by the parser, and three times the upload limit.
      const junk = Buffer.alloc(64 * 1024, 0x41);
      let left = 3 * 1024 * 1024;
      const pump = () => {
        while (left > 0) {
          left -= junk.length;
          if (!req.write(junk)) return void req.once("drain", pump);
        }
        req.end();
      };
      pump();
    });
    expect(status).toBe(413);
  });

  it("answers normally afterwards", async () => {
    expect((await fetch(`${run.baseUrl}/healthz`)).status).toBe(200);
  });
});

describe("connections per client address", () => {
  const MAX = 4;
  let run: Running;
  const open: RawExchange[] = [];
  beforeAll(async () => {
    run = await startImgup(pglite, { IMGUP_MAX_CONNECTIONS_PER_IP: String(MAX) });
  });
  afterAll(async () => {
    for (const ex of open) ex.socket.destroy();
    await run?.stop();
  });

  it("over the cap, a new connection is closed at once; below it again, connections are served", async () => {
    for (let i = 0; i < MAX; i++) open.push(await rawConnect(run.baseUrl));
    // Each held connection is really accepted (served) before the next is judged.
    for (const ex of open) {
      ex.socket.write(head("GET", "/healthz", {}));
      await eventually(async () => ex.status() === 200, BOUND_MS);
    }
    const over = await rawConnect(run.baseUrl);
    over.socket.write(head("GET", "/healthz", {}));
    await closedWithin(over, BOUND_MS);
    expect(over.received()).toBe("");

    const first = open.shift();
    first?.socket.destroy();
    await first?.closed;
    await eventually(
      async () => (await fetch(`${run.baseUrl}/healthz`).catch(() => null))?.status === 200,
      BOUND_MS,
    );
  });
});

describe("a refusal answered while the client is still sending its body", () => {
  let run: Running;
  let ex: RawExchange | undefined;
  beforeAll(async () => {
    // A body timeout no loaded machine reaches: what is tested is the drain, not its bound.
    run = await startImgup(pglite, { IMGUP_BODY_TIMEOUT_MS: "600000" });
  });
  afterAll(async () => {
    ex?.socket.destroy();
    await run?.stop();
  });

  it("reads the rest of the body, so the client gets the answer, not a reset", async () => {
    ex = await rawConnect(run.baseUrl, { allowHalfOpen: true });
    const socket = ex.socket;
    const body = JSON.stringify({
      filename: "a.png",
      contentType: "image/png",
      size: 10,
      pad: "x".repeat(200_000),
    });
    let reset: Error | null = null;
    socket.on("error", (err) => {
      reset = err;
    });
    const serverEnded = new Promise<void>((resolve) => socket.once("end", () => resolve()));
    socket.write(
      head("POST", "/v1/uploads", { "content-type": "application/json", "content-length": body.length }),
    );
    socket.write(body.slice(0, 100));
    // Unauthenticated: refused before the body is read, and the server ends its side.
    await serverEnded;
    expect(ex.status()).toBe(401);
    expect(ex.received().toLowerCase()).toContain("connection: close");
    // The client goes on sending, as one mid-upload does. A socket the server closed outright
    // resets these writes; a lingering one reads and discards them.
    for (let at = 100; at < body.length && !reset; at += 20_000) {
      await new Promise<void>((resolve) => socket.write(body.slice(at, at + 20_000), () => resolve()));
      await new Promise((r) => setTimeout(r, 20));
    }
    socket.end();
    await closedWithin(ex, BOUND_MS);
    expect(reset).toBeNull();
  });
});
