import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createImgup } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logging.ts";
import { Api } from "../support/api.ts";
import { imgupCli } from "../support/cli-run.ts";
import { eventually, freePort } from "../support/harness.ts";
import { type ServeChild, startServeChild } from "../support/serve-child.ts";
import { useTestBuild } from "../support/test-build.ts";

const INFO = 30;
const ROOT = path.resolve(import.meta.dirname, "../..");

describe("JSON logs (stdout not a terminal)", () => {
  let serve: ServeChild;
  let adminUrl: string;
  beforeAll(async () => {
    const adminPort = await freePort();
    adminUrl = `http://127.0.0.1:${adminPort}`;
    serve = await startServeChild({
      IMGUP_EVENTS_TOKEN: "events-token-0123456789abcdef",
      IMGUP_ADMIN_PORT: String(adminPort),
    });
  });
  afterAll(async () => {
    await serve?.stop();
  });

  it("prints one startup banner naming the public URL and the admin endpoint, and no second start line", async () => {
    const banner = await eventually(async () =>
      serve.lines.filter((l) => String(l.msg).includes("ready at")),
    );
    expect(banner).toHaveLength(1);
    expect(banner[0]?.msg).toContain(`ready at ${serve.baseUrl}`);
    expect(banner[0]?.msg).toContain(`admin: ${adminUrl} (/healthz, /readyz, /metrics)`);
    expect(banner[0]).toMatchObject({ level: INFO, url: serve.baseUrl, admin: adminUrl });
    expect((await fetch(`${adminUrl}/healthz`)).status).toBe(200);
    expect(serve.lines.filter((l) => /listening/i.test(String(l.msg)))).toEqual([]);
    // Before the banner, and at info: nothing else announces where imgup answers.
    const started = serve.lines.filter(
      (l) =>
        Number(l.level) >= INFO &&
        (String(l.msg).includes(adminUrl) || String(l.msg).includes(serve.baseUrl)),
    );
    expect(started).toEqual(banner);
  });

  it("writes exactly one info line per request, with method, status, duration, request id and no credential", async () => {
    const secrets = {
      bearer: serve.apiKey,
      token: `tok${randomBytes(12).toString("hex")}`,
      sig: randomBytes(16).toString("hex"),
      amz: randomBytes(16).toString("hex"),
      badBearer: `imgup_${randomBytes(16).toString("hex")}`,
    };
    const requests: Array<{ id: string; url: string; headers: Record<string, string>; method?: string }> = [
      {
        id: "log-1",
        url: `/v1/images?limit=5&token=${secrets.token}`,
        headers: { authorization: `Bearer ${secrets.bearer}` },
      },
      {
        id: "log-2",
        url: `/i/img_nope/original?exp=99999999999&sig=${secrets.sig}&X-Amz-Signature=${secrets.amz}`,
        headers: {},
      },
      { id: "log-3", url: "/v1/images", headers: { authorization: `Bearer ${secrets.badBearer}` } },
      {
        id: "log-4",
        url: `/v1/events/storage?token=${secrets.token}`,
        method: "POST",
        headers: { "content-type": "application/json" },
      },
    ];
    for (const r of requests) {
      const res = await fetch(`${serve.baseUrl}${r.url}`, {
        method: r.method ?? "GET",
        headers: { ...r.headers, "x-request-id": r.id },
        body: r.method === "POST" ? JSON.stringify({ Records: [] }) : undefined,
      });
      await res.arrayBuffer();
      expect(res.headers.get("x-request-id")).toBe(r.id);
    }
    for (const r of requests) {
      const line = await eventually(async () =>
        serve.lines.find((l) => l.reqId === r.id && "method" in l && "status" in l),
      );
      expect(line).toMatchObject({ method: r.method ?? "GET", reqId: r.id });
      expect(typeof line.ms).toBe("number");
      expect(String(line.url).split("?")[0]).toBe(r.url.split("?")[0]);
    }
    // The lines of each request are all in by now: its request line is written last.
    for (const r of requests) {
      const info = serve.lines.filter((l) => l.reqId === r.id && Number(l.level) === INFO);
      expect(info.filter((l) => "method" in l && "status" in l)).toHaveLength(1);
      // The webhook also says what it received; the other requests write nothing but their line.
      if (r.method !== "POST") expect(info).toHaveLength(1);
    }
    expect(serve.lines.find((l) => l.reqId === "log-3")).toMatchObject({
      status: 401,
      code: "invalid_token",
    });
    // The development key is printed once, by design, before the banner; nothing after it names a credential.
    const everything = serve.output().slice(serve.output().indexOf("ready at"));
    expect(everything).toContain("[redacted]");
    for (const secret of Object.values(secrets)) expect(everything).not.toContain(secret);
    expect(everything).not.toContain("incoming request");
    expect(everything).not.toContain("request completed");
  });
});

/** `imgup serve` with its stdout on a pseudo-terminal (util-linux `script`), as in an operator's shell. */
async function serveOnTerminal(): Promise<{
  output: () => string;
  child: ChildProcess;
  stop: () => Promise<void>;
}> {
  const port = await freePort();
  const dataDir = await mkdtemp(path.join(tmpdir(), "imgup-tty-"));
  const baseUrl = `http://127.0.0.1:${port}`;
  const child = spawn("script", ["-qfec", `${process.execPath} ${imgupCli()} serve`, "/dev/null"], {
    cwd: ROOT,
    detached: true,
    env: {
      PATH: process.env.PATH ?? "",
      TERM: "xterm-256color",
      IMGUP_DATA_DIR: dataDir,
      PORT: String(port),
      HOST: "127.0.0.1",
      IMGUP_PUBLIC_URL: baseUrl,
      IMGUP_DEMO_PAGE: "false",
      IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
      LOG_LEVEL: "info",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d;
  });
  child.stderr?.on("data", (d: Buffer) => {
    out += d;
  });
  const stop = async () => {
    if (child.exitCode === null && child.pid) {
      const gone = new Promise((r) => child.once("exit", r));
      process.kill(-child.pid, "SIGKILL");
      await gone;
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${out}`);
      return (await fetch(`${baseUrl}/healthz`).catch(() => null))?.ok;
    }, 90_000);
    const res = await fetch(`${baseUrl}/v1/images?token=secret-in-a-terminal`);
    await res.arrayBuffer();
    await eventually(async () => out.includes("GET /v1/images"));
  } catch (err) {
    await stop();
    throw err;
  }
  return { output: () => out, child, stop };
}

describe("human logs on a terminal (util-linux script gives stdout a pseudo-terminal)", () => {
  it("are coloured lines with level names and times, not JSON: banner and one line per request", async () => {
    const tty = await serveOnTerminal();
    try {
      const text = tty.output();
      const esc = String.fromCharCode(27);
      const plain = text.replace(new RegExp(`${esc}\\[[0-9;]*m`, "g"), "");
      expect(text).toMatch(new RegExp(`${esc}\\[3\\dm`));
      expect(plain).not.toMatch(/^\{"level"/m);
      expect(plain).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: imgup ready at http:\/\/127\.0\.0\.1:\d+/m);
      expect(plain).toMatch(
        /^\[[\d:.]+\] INFO: GET \/v1\/images\?token=\[redacted\] 401 unauthenticated [\d.]+ ms/m,
      );
      expect(plain.match(/GET \/v1\/images/g)).toHaveLength(1);
      expect(plain).not.toContain("secret-in-a-terminal");
    } finally {
      await tty.stop();
    }
  });
});

describe("maintenance passes", () => {
  it("that find nothing log at debug; one that does something logs at info", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "imgup-quiet-"));
    const port = await freePort();
    const config = loadConfig({
      IMGUP_DATA_DIR: dataDir,
      PORT: String(port),
      IMGUP_PUBLIC_URL: `http://127.0.0.1:${port}`,
      IMGUP_DEV_KEY: "false",
      IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
      IMGUP_UPLOAD_URL_TTL: "1",
      IMGUP_PENDING_GRACE_MS: "0",
    });
    await useTestBuild(config);
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: "debug",
      role: config.role,
      format: "json",
      destination: { write: (s: string) => void lines.push(JSON.parse(s)) },
    });
    const imgup = await createImgup(config, { logger });
    try {
      const key = (await imgup.auth.createKey({ ownerId: "alice" })).key;
      await imgup.start();
      const finished = (task: string) => lines.filter((l) => l.msg === `${task} finished`);
      for (const task of ["reconcile", "sweep"]) {
        const outcome = await imgup.maintenance.scheduler.runNow(task, { dryRun: false });
        expect(outcome.ran).toBe(true);
        expect(finished(task).map((l) => l.level)).toEqual([20]);
      }
      // A pending image whose upload URL lapsed: the next reconcile expires it, and says so at info.
      const api = new Api(`http://127.0.0.1:${port}`, key);
      const intent = await api.createIntent({ filename: "a.jpg", contentType: "image/jpeg", size: 100 });
      expect(intent.status).toBe(201);
      await eventually(async () => {
        await imgup.maintenance.scheduler.runNow("reconcile", { dryRun: false });
        return finished("reconcile").some((l) => l.level === INFO);
      });
      expect(finished("reconcile").find((l) => l.level === INFO)?.report).toMatchObject({ expired: 1 });
    } finally {
      await imgup.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe("the development key (embedded mode)", () => {
  it("is an owner key, logged when it is created and on no later start", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "imgup-devkey-"));
    const start = async () => {
      const port = await freePort();
      const config = loadConfig({
        IMGUP_DATA_DIR: dataDir,
        PORT: String(port),
        HOST: "127.0.0.1",
        IMGUP_PUBLIC_URL: `http://127.0.0.1:${port}`,
        // Without the demo page the key itself goes to the log: the line this test watches.
        IMGUP_DEMO_PAGE: "false",
        IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
      });
      const lines: string[] = [];
      const logger = createLogger({
        level: "debug",
        role: config.role,
        format: "json",
        destination: { write: (s: string) => void lines.push(s) },
      });
      const imgup = await createImgup(config, { logger });
      await imgup.start();
      return { imgup, baseUrl: `http://127.0.0.1:${port}`, text: () => lines.join("") };
    };
    const keyShape = /imgup_[A-Za-z0-9_-]{16,}/g;
    try {
      const first = await start();
      let key = "";
      try {
        key = (await readFile(path.join(dataDir, "dev-api-key"), "utf8")).trim();
        expect(first.text().match(keyShape)).toEqual([key]);
        const api = new Api(first.baseUrl, key);
        expect((await api.request("GET", "/v1/images")).status).toBe(200);
        // A printed key must not be able to manage keys or purge owners.
        expect((await api.request("GET", "/v1/admin/keys")).status).toBe(403);
      } finally {
        await first.imgup.stop();
      }
      const second = await start();
      try {
        expect(second.text().match(keyShape)).toBeNull();
        expect(second.text()).not.toContain(key);
        expect((await readFile(path.join(dataDir, "dev-api-key"), "utf8")).trim()).toBe(key);
      } finally {
        await second.imgup.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
