/**
 * Cached-variant delivery through the real HTTP server: one image, its thumb preset already made,
 * N concurrent keep-alive clients fetching it for S seconds. Also a cold pass (every request a
 * different signed size: the transform path end to end).
 *   npx tsx bench/cached-variant.ts [--seconds 10] [--clients 16] [--write]
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { sql } from "kysely";
import pino from "pino";
import { createImgup } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { transformUrl } from "../src/services/transform-urls.ts";
import { photoLike } from "../test/support/image-builders.ts";
import { machineInfo, percentile, recordResults } from "./report.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    clients: { type: "string", default: "16" },
    write: { type: "boolean" },
  },
});
const seconds = Number(values.seconds);
const clients = Number(values.clients);
const KEY = randomBytes(32).toString("hex");

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

/** Runs `clients` loops for `ms`, each fetching next(); returns latencies (ms) and bytes. */
async function load(next: (i: number) => string, ms: number) {
  const latencies: number[] = [];
  let bytes = 0;
  let errors = 0;
  let n = 0;
  const end = Date.now() + ms;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < end) {
        const t0 = performance.now();
        const res = await fetch(next(n++));
        const body = await res.arrayBuffer();
        latencies.push(performance.now() - t0);
        if (res.status === 200) bytes += body.byteLength;
        else errors++;
      }
    }),
  );
  return { latencies, bytes, errors, rps: latencies.length / (ms / 1000) };
}

const dataDir = await mkdtemp(path.join(tmpdir(), "imgup-bench-"));
const port = await freePort();
const config = loadConfig({
  DATABASE_URL: process.env.DATABASE_URL,
  DATABASE_SCHEMA: process.env.DATABASE_URL ? `bench_${randomBytes(4).toString("hex")}` : undefined,
  IMGUP_DATA_DIR: dataDir,
  PORT: String(port),
  IMGUP_PUBLIC_URL: `http://127.0.0.1:${port}`,
  IMGUP_DEV_KEY: "false",
  IMGUP_SIGNING_SECRET: KEY,
  IMGUP_TRANSFORM_MISSES_BURST: "1000000",
  IMGUP_TRANSFORM_MISSES_PER_SEC: "1000000",
  LOG_LEVEL: "silent",
});
const imgup = await createImgup(config, { logger: pino({ level: "silent" }) });
const { key } = await imgup.auth.createKey({ ownerId: "bench" });
await imgup.start();
const base = `http://127.0.0.1:${port}`;
const rows: string[] = [];
try {
  const jpeg = await (await photoLike(2000, 1333, 1)).jpeg({ quality: 90 }).toBuffer();
  const intent = (await fetch(`${base}/v1/uploads`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ filename: "b.jpg", contentType: "image/jpeg", size: jpeg.length }),
  }).then((r) => r.json())) as {
    image: { id: string };
    upload: { url: string; headers: Record<string, string> };
  };
  await fetch(intent.upload.url, { method: "PUT", headers: intent.upload.headers, body: jpeg });
  const id = intent.image.id;
  for (;;) {
    const img = (await fetch(`${base}/v1/images/${id}`, { headers: { authorization: `Bearer ${key}` } }).then(
      (r) => r.json(),
    )) as { status: string };
    if (img.status === "ready") break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const thumb = `${base}/i/${id}/thumb`;
  await load(() => thumb, 1000); // warm-up
  const cached = await load(() => thumb, seconds * 1000);
  rows.push(
    `| cached preset (200x200 WebP, ${(cached.bytes / Math.max(1, cached.latencies.length) / 1024).toFixed(1)} KiB) | ${clients} | ${cached.rps.toFixed(0)} | ${percentile(cached.latencies, 50).toFixed(1)} | ${percentile(cached.latencies, 99).toFixed(1)} | ${cached.errors} |`,
  );
  const cold = await load(
    (i) => transformUrl(base, KEY, `w_${200 + (i % 3000)},f_jpeg,q_80`, id),
    seconds * 1000,
  );
  rows.push(
    `| cold: new signed size per request (2000 px JPEG → ~512 px JPEG q80) | ${clients} | ${cold.rps.toFixed(1)} | ${percentile(cold.latencies, 50).toFixed(0)} | ${percentile(cold.latencies, 99).toFixed(0)} | ${cold.errors} |`,
  );
} finally {
  if (config.database.url)
    await sql`drop schema ${sql.raw(config.database.schema)} cascade`.execute(imgup.database.db);
  await imgup.stop();
  await rm(dataDir, { recursive: true, force: true });
}
const table = [
  `${config.database.url ? "PostgreSQL" : "Embedded PGlite"}, local-disk storage, HTTP/1.1 keep-alive clients in the same process, ${seconds} s per row.`,
  "",
  "| request | clients | req/s | p50 ms | p99 ms | non-200 |",
  "|---|---|---|---|---|---|",
  ...rows,
].join("\n");
console.log(machineInfo());
console.log(table);
if (values.write)
  await recordResults(`cached-variant-${config.database.url ? "postgresql" : "pglite"}`, table);
