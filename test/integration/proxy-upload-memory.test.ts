import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ListMultipartUploadsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createS3Client } from "../../src/storage/s3-client.ts";
import { imgupCli } from "../support/cli-run.ts";
import { eventually, freePort } from "../support/harness.ts";
import { type S3TestTarget, s3Env, s3TestConnection, s3TestTarget } from "../support/s3-target.ts";
import { repeated, type StreamedAnswer, streamUpload } from "../support/streaming-upload.ts";

const MiB = 1024 * 1024;
const LIMIT = 20 * MiB;
const CHUNK = randomBytes(64 * 1024);

interface Server {
  child: ChildProcess;
  baseUrl: string;
  key: string;
  dataDir: string;
  output: () => string;
}

/**
 * The acceptance test: a real `imgup serve --role api` in a child process, so that its
 * RSS is the server's alone. A 200 MB body of unknown length against the default 20 MiB limit is
 * cut off after about 20 MiB and leaves nothing behind; uploads are streamed, never held whole.
 * (Garbage socket buffers are freed when V8 gets round to it, so RSS readings carry a few MiB of
 * noise: the bounds sit well below what holding a body would cost.)
 */
describe.each(storageTargets())(
  "proxy upload memory and cut-off, server process on $name",
  ({ name, bucket, cutOffRssBound }) => {
    let limited: Server;
    let roomy: Server;
    let target: S3TestTarget | null = null;
    let roomyTarget: S3TestTarget | null = null;

    beforeAll(async () => {
      // A bucket each (on S3): what is left in the storage is counted per server.
      [target, roomyTarget] = await Promise.all([bucket(), bucket()]);
      const connection = s3TestConnection();
      const storage = (t: S3TestTarget | null) => (t && connection ? s3Env(t, connection) : {});
      [limited, roomy] = await Promise.all([
        startServer(storage(target)),
        startServer({ ...storage(roomyTarget), IMGUP_MAX_UPLOAD_BYTES: String(512 * MiB) }),
      ]);
      // Warm-up: the first requests load modules and fill caches; that is not what is measured.
      for (const server of [limited, roomy]) {
        const length = 3 * MiB;
        const sized = await upload(server, repeated(CHUNK, length), { "content-length": String(length) });
        expect(sized.status).toBe(201);
        expect((await upload(server, repeated(CHUNK, 3 * MiB))).status).toBe(201);
      }
    }, 120_000);

    afterAll(async () => {
      for (const server of [limited, roomy]) {
        if (!server) continue;
        server.child.kill("SIGTERM");
        await new Promise((r) => server.child.once("exit", r));
        await rm(server.dataDir, { recursive: true, force: true });
      }
      await target?.cleanup();
      await roomyTarget?.cleanup();
    });

    it("refuses 200 MB sent without a length with 413 after reading about 20 MiB, keeping RSS flat", async () => {
      const readBefore = await bytesRead(limited);
      const imagesBefore = await imageIds(limited);
      const { answer, rss } = await measured(limited, () =>
        upload(limited, repeated(CHUNK, 200 * 1000 * 1000)),
      );
      const read = (await bytesRead(limited)) - readBefore;
      console.log(
        `[${name}] 200 MB chunked, 20 MiB limit: ${answer.status}; server read ${mib(read)} MiB, ` +
          `client wrote ${mib(answer.bytesWritten)} MiB; ${describeRss(rss)}`,
      );
      expect(answer.status).toBe(413);
      expect(answer.body.code).toBe("payload_too_large");
      expect(answer.headers.connection).toBe("close");
      expect(answer.completed).toBe(false);
      expect(read).toBeGreaterThan(LIMIT);
      expect(read).toBeLessThan(LIMIT + MiB);
      expect(answer.bytesWritten).toBeLessThan(40 * MiB);
      expect(rss.growth).toBeLessThan(cutOffRssBound);
      // Nothing half-made: no new image, no object, no temp file, no open multipart upload.
      expect(await imageIds(limited)).toEqual(imagesBefore);
      expect(await storedObjects(limited, target)).toBe(imagesBefore.length);
    });

    it("streams a normal 10 MB upload", async () => {
      const length = 10 * 1000 * 1000;
      const { answer, rss } = await measured(limited, () =>
        upload(limited, repeated(CHUNK, length), { "content-length": String(length) }),
      );
      console.log(`[${name}] 10 MB with Content-Length: ${answer.status}; ${describeRss(rss)}`);
      expect(answer.status).toBe(201);
    });

    it("streams a 300 MB upload of unknown length without holding it (512 MiB limit)", async () => {
      const length = 300 * 1000 * 1000;
      const { answer, rss } = await measured(roomy, () => upload(roomy, repeated(CHUNK, length)));
      console.log(`[${name}] 300 MB chunked, 512 MiB limit: ${answer.status}; ${describeRss(rss)}`);
      expect(answer.status).toBe(201);
      expect(answer.completed).toBe(true);
      // Holding the body would cost 286 MiB and more.
      expect(rss.growth).toBeLessThan(64 * MiB);
    }, 120_000);
  },
);

function storageTargets() {
  // On disk a body is only ever a few 64 KiB chunks in flight. S3 needs a length per request, so a
  // body of unknown length goes up in 5 MiB parts, each held (and copied once) while it is sent.
  const local = { name: "local disk", bucket: async () => null, cutOffRssBound: 12 * MiB };
  const s3 = { name: "Ceph RGW", bucket: () => s3TestTarget(), cutOffRssBound: 24 * MiB };
  return s3TestConnection() ? [local, s3] : [local];
}

const describeRss = (rss: Rss) =>
  `RSS grew ${mib(rss.growth)} MiB (before ${mib(rss.before)}, peak ${mib(rss.peak)}, after ${mib(rss.after)} MiB)`;

async function startServer(env: Record<string, string>): Promise<Server> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "imgup-proxy-rss-"));
  const port = await freePort();
  const child = spawn(process.execPath, [imgupCli(), "serve", "--role", "api"], {
    cwd: path.resolve(import.meta.dirname, "../.."),
    env: {
      PATH: process.env.PATH ?? "",
      IMGUP_DATA_DIR: dataDir,
      PORT: String(port),
      HOST: "127.0.0.1",
      IMGUP_PUBLIC_URL: `http://127.0.0.1:${port}`,
      IMGUP_DEV_KEY: "true",
      IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
      IMGUP_RATE_LIMIT_BURST: "1000",
      IMGUP_SINGLE_INSTANCE: "true",
      LOG_LEVEL: "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d) => {
    out = (out + d).slice(-20_000);
  });
  child.stderr?.on("data", (d) => {
    out = (out + d).slice(-20_000);
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  await eventually(async () => (await fetch(`${baseUrl}/healthz`)).ok, 60_000).catch((err) => {
    throw new Error(`imgup did not start: ${err}\n${out}`);
  });
  const key = (await readFile(path.join(dataDir, "dev-api-key"), "utf8")).trim();
  return { child, baseUrl, key, dataDir, output: () => out };
}

function upload(server: Server, chunks: Iterable<Buffer>, headers: Record<string, string> = {}) {
  return streamUpload(`${server.baseUrl}/v1/images`, {
    headers: { authorization: `Bearer ${server.key}`, "content-type": "image/jpeg", ...headers },
    chunks,
  });
}

interface Rss {
  before: number;
  peak: number;
  after: number;
  /** The largest rise over the lowest RSS seen before it: growth, even past a collection. */
  growth: number;
}

/**
 * The server's RSS sampled every 10 ms around a request. A collection of older garbage may drop
 * it by hundreds of MiB mid-request (the embedded PGlite's start-up heap), so growth is measured
 * from the lowest point seen so far, not from the reading before.
 */
async function measured(server: Server, run: () => Promise<StreamedAnswer>) {
  const pid = server.child.pid;
  if (pid === undefined) throw new Error("no server process");
  const before = await status(pid, "VmRSS");
  const rss: Rss = { before, peak: before, after: before, growth: 0 };
  let low = before;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const now = await status(pid, "VmRSS");
      low = Math.min(low, now);
      rss.peak = Math.max(rss.peak, now);
      rss.growth = Math.max(rss.growth, now - low);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const answer = await run();
  await new Promise((r) => setTimeout(r, 200));
  sampling = false;
  await sampler;
  rss.after = await status(pid, "VmRSS");
  return { answer, rss };
}

async function status(pid: number, field: "VmRSS"): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1];
  if (!kb) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(kb) * 1024;
}

async function bytesRead(server: Server): Promise<number> {
  const text = await (await fetch(`${server.baseUrl}/metrics`)).text();
  return Number(/^imgup_proxy_upload_bytes_total (\d+)/m.exec(text)?.[1] ?? Number.NaN);
}

async function imageIds(server: Server): Promise<string[]> {
  const res = await fetch(`${server.baseUrl}/v1/images?limit=100`, {
    headers: { authorization: `Bearer ${server.key}` },
  });
  return ((await res.json()) as { items: { id: string }[] }).items.map((i) => i.id);
}

/** Objects in the storage; and no temp file (disk) or unfinished multipart upload (S3) is left. */
async function storedObjects(server: Server, bucket: S3TestTarget | null): Promise<number> {
  if (bucket) {
    const client = createS3Client(bucket.options);
    try {
      const Bucket = bucket.options.bucket;
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket }));
      expect(uploads.Uploads ?? []).toEqual([]);
      return (await client.send(new ListObjectsV2Command({ Bucket }))).KeyCount ?? 0;
    } finally {
      client.destroy();
    }
  }
  const root = path.join(server.dataDir, "storage");
  expect(await readdir(path.join(root, "tmp"))).toEqual([]);
  const files = await readdir(path.join(root, "objects"), { recursive: true, withFileTypes: true });
  return files.filter((f) => f.isFile()).length;
}

const mib = (bytes: number) => (bytes / MiB).toFixed(1);
