import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createImgup, type Imgup } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logging.ts";
import { eventually, freePort } from "../support/harness.ts";
import { photo } from "../support/image-builders.ts";
import { useTestBuild } from "../support/test-build.ts";

const run = promisify(execFile);
const RECIPE = path.resolve(import.meta.dirname, "../../deploy/nginx/imgup.conf");
/** The client connects from another loopback address than nginx's, so imgup can tell them apart. */
const CLIENT_ADDRESS = "127.0.0.2";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * deploy/nginx/imgup.conf as shipped, with only what a test host must change: ports on loopback,
 * the certificate, and the IPv6 listens (this sandbox may have no IPv6).
 */
function localized(recipe: string, p: { https: number; http: number; imgup: number; dir: string }): string {
  const replace = (text: string, from: string, to: string) => {
    if (!text.includes(from)) throw new Error(`deploy/nginx/imgup.conf no longer contains: ${from}`);
    return text.split(from).join(to);
  };
  let conf = recipe;
  conf = replace(conf, "server 127.0.0.1:8080;", `server 127.0.0.1:${p.imgup};`);
  conf = replace(conf, "    listen [::]:80;\n", "");
  conf = replace(conf, "    listen [::]:443 ssl http2;\n", "");
  conf = replace(conf, "listen 80;", `listen 127.0.0.1:${p.http};`);
  conf = replace(conf, "listen 443 ssl http2;", `listen 127.0.0.1:${p.https} ssl http2;`);
  conf = replace(
    conf,
    "/etc/letsencrypt/live/images.example.com/fullchain.pem",
    path.join(p.dir, "cert.pem"),
  );
  conf = replace(conf, "/etc/letsencrypt/live/images.example.com/privkey.pem", path.join(p.dir, "key.pem"));
  return conf;
}

function mainConf(dir: string): string {
  return `daemon off;
master_process off;
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  include ${dir}/imgup.conf;
}
`;
}

describe("deploy/nginx/imgup.conf in front of imgup", () => {
  let dir = "";
  let ca = "";
  let nginx: ChildProcess | null = null;
  let imgup: Imgup | null = null;
  let httpsPort = 0;
  let origin = "";
  let key = "";
  const lines: Array<Record<string, unknown>> = [];

  function send(method: string, url: string, headers: Record<string, string> = {}, body?: Buffer) {
    return new Promise<Answer>((resolve, reject) => {
      const req = request(url, { method, headers, ca, localAddress: CLIENT_ADDRESS }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    });
  }
  const api = (method: string, p: string, json?: unknown) =>
    send(
      method,
      `${origin}${p}`,
      { authorization: `Bearer ${key}`, ...(json ? { "content-type": "application/json" } : {}) },
      json ? Buffer.from(JSON.stringify(json)) : undefined,
    );

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "imgup-nginx-"));
    await mkdir(path.join(dir, "tmp"));
    await mkdir(path.join(dir, "data"));
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      path.join(dir, "key.pem"),
      "-out",
      path.join(dir, "cert.pem"),
    ]);
    ca = await readFile(path.join(dir, "cert.pem"), "utf8");
    httpsPort = await freePort();
    const imgupPort = await freePort();
    origin = `https://127.0.0.1:${httpsPort}`;

    const config = loadConfig({
      IMGUP_DATA_DIR: path.join(dir, "data"),
      HOST: "127.0.0.1",
      PORT: String(imgupPort),
      IMGUP_PUBLIC_URL: origin,
      IMGUP_TRUST_PROXY: "127.0.0.1",
      IMGUP_DEV_KEY: "false",
      IMGUP_JOB_POLL_MS: "50",
      IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
    });
    await useTestBuild(config);
    const logger = createLogger({
      level: "info",
      role: config.role,
      format: "json",
      destination: { write: (s: string) => void lines.push(JSON.parse(s)) },
    });
    imgup = await createImgup(config, { logger });
    key = (await imgup.auth.createKey({ ownerId: "alice" })).key;
    await imgup.start();

    const conf = localized(await readFile(RECIPE, "utf8"), {
      https: httpsPort,
      http: await freePort(),
      imgup: imgupPort,
      dir,
    });
    await writeFile(path.join(dir, "imgup.conf"), conf);
    await writeFile(path.join(dir, "nginx.conf"), mainConf(dir));
    const args = ["-p", dir, "-c", path.join(dir, "nginx.conf")];
    const tested = await run("nginx", [...args, "-t"]).catch((err: { stderr?: string }) => {
      throw new Error(`nginx -t refused the recipe:\n${err.stderr}`);
    });
    expect(tested.stderr).toContain("test is successful");
    nginx = spawn("nginx", args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    nginx.stderr?.on("data", (d: Buffer) => {
      stderr += d;
    });
    await eventually(async () => {
      if (nginx?.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
      return (await send("GET", `${origin}/healthz`).catch(() => null))?.status === 200;
    });
  });

  afterAll(async () => {
    if (nginx && nginx.exitCode === null) {
      const gone = new Promise((r) => nginx?.once("exit", r));
      nginx.kill("SIGTERM");
      await gone;
    }
    await imgup?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("hands out upload and delivery URLs on nginx's https origin; upload, processing and delivery go through it", async () => {
    const bytes = await photo(320, 200).jpeg().toBuffer();
    const intent = await api("POST", "/v1/uploads", {
      filename: "through-nginx.jpg",
      contentType: "image/jpeg",
      size: bytes.length,
    });
    expect(intent.status).toBe(201);
    const created = JSON.parse(intent.body.toString()) as {
      image: { id: string };
      upload: { url: string; method: string; headers: Record<string, string> };
    };
    expect(created.upload.url.startsWith(`${origin}/storage/`)).toBe(true);
    const put = await send(created.upload.method, created.upload.url, created.upload.headers, bytes);
    expect(put.status).toBeLessThan(300);

    const image = await eventually(async () => {
      const r = await api("GET", `/v1/images/${created.image.id}`);
      const body = JSON.parse(r.body.toString()) as { status: string; urls: { original: string } | null };
      return body.status === "ready" ? body : undefined;
    });
    expect(image.urls?.original.startsWith(`${origin}/i/`)).toBe(true);
    const original = await send("GET", image.urls?.original ?? "");
    expect(original.status).toBe(200);
    expect(original.headers["content-type"]).toBe("image/jpeg");
    expect(original.body.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
  });

  it("lets imgup see the client's address (IMGUP_TRUST_PROXY), not nginx's or a forged X-Forwarded-For", async () => {
    const res = await send("GET", `${origin}/v1/images?limit=1`, {
      authorization: `Bearer ${key}`,
      // A client's own X-Forwarded-For is replaced by nginx, never believed.
      "x-forwarded-for": "203.0.113.7",
    });
    expect(res.status).toBe(200);
    // nginx's $request_id becomes imgup's request id: one id in both logs.
    const id = String(res.headers["x-request-id"]);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    const line = await eventually(async () => lines.find((l) => l.reqId === id && "status" in l));
    expect(line).toMatchObject({ method: "GET", status: 200, ip: CLIENT_ADDRESS });
  });

  it("answers plain http with a redirect to https", async () => {
    const conf = await readFile(path.join(dir, "imgup.conf"), "utf8");
    const httpPort = Number(/listen 127\.0\.0\.1:(\d+);/.exec(conf)?.[1]);
    const res = await fetch(`http://127.0.0.1:${httpPort}/v1/images`, { redirect: "manual" });
    expect(res.status).toBe(301);
    expect(res.headers.get("location")).toBe("https://127.0.0.1/v1/images");
  });
});
