/**
 * Intent -> upload -> ready latency for a ~10 MB JPEG through the real HTTP API, embedded mode
 * (PGlite, local-disk storage) or the real PostgreSQL when DATABASE_URL is set.
 *   npx tsx bench/upload-latency.ts [--runs 20] [--write]
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pino from "pino";
import sharp from "sharp";
import { createImgup } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { machineInfo, percentile, recordResults } from "./report.ts";

const { values } = parseArgs({
  options: { runs: { type: "string", default: "20" }, write: { type: "boolean" } },
});
const runs = Number(values.runs);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

/** Noise does not compress: ~10 MB of JPEG from a 12 MP frame at q97. */
async function tenMegabyteJpeg(seed: number): Promise<Buffer> {
  const width = 4000;
  const height = 3000;
  const raw = randomBytes(width * height * 3);
  raw[0] = seed & 0xff;
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

const dataDir = await mkdtemp(path.join(tmpdir(), "imgup-bench-"));
const port = await freePort();
const config = loadConfig({
  ...process.env,
  IMGUP_DATA_DIR: dataDir,
  PORT: String(port),
  IMGUP_PUBLIC_URL: `http://127.0.0.1:${port}`,
  IMGUP_DEV_KEY: "false",
  IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
  DATABASE_SCHEMA: process.env.DATABASE_URL ? `bench_${randomBytes(4).toString("hex")}` : "public",
  LOG_LEVEL: "silent",
});
const imgup = await createImgup(config, { logger: pino({ level: "silent" }) });
const { key } = await imgup.auth.createKey({ ownerId: "bench" });
await imgup.start();
const base = `http://127.0.0.1:${port}`;
const auth = { authorization: `Bearer ${key}`, "content-type": "application/json" };

const samples: number[] = [];
let bytes = 0;
try {
  for (let i = 0; i < runs + 2; i++) {
    const jpeg = await tenMegabyteJpeg(i);
    bytes = jpeg.length;
    const t0 = performance.now();
    const intent = await fetch(`${base}/v1/uploads`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ filename: "bench.jpg", contentType: "image/jpeg", size: jpeg.length }),
    }).then(
      (r) =>
        r.json() as Promise<{
          image: { id: string };
          upload: { url: string; headers: Record<string, string> };
        }>,
    );
    const put = await fetch(intent.upload.url, { method: "PUT", headers: intent.upload.headers, body: jpeg });
    if (put.status !== 200) throw new Error(`upload failed: ${put.status} ${await put.text()}`);
    for (;;) {
      const img = (await fetch(`${base}/v1/images/${intent.image.id}`, { headers: auth }).then((r) =>
        r.json(),
      )) as {
        status: string;
      };
      if (img.status === "ready") break;
      if (img.status !== "pending" && img.status !== "processing")
        throw new Error(`image ended ${img.status}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    if (i >= 2) samples.push(performance.now() - t0); // the first two warm up sharp and the JIT
  }
} finally {
  await imgup.stop();
  await rm(dataDir, { recursive: true, force: true });
}

const db = config.database.url ? "PostgreSQL" : "PGlite";
const line = `| upload -> ready, ${(bytes / 1e6).toFixed(1)} MB JPEG, ${db}, local storage | ${runs} | ${percentile(samples, 50).toFixed(0)} ms | ${percentile(samples, 95).toFixed(0)} ms |`;
console.log(machineInfo());
console.log("| benchmark | runs | p50 | p95 |\n|---|---|---|---|");
console.log(line);
if (values.write)
  await recordResults(
    `upload-latency-${db.toLowerCase()}`,
    `| benchmark | runs | p50 | p95 |\n|---|---|---|---|\n${line}`,
  );
