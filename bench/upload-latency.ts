/**
 * End-to-end upload latency, intent → upload → ready, through the real HTTP API of `imgup serve`
 * (all roles, one process) on the machine's PostgreSQL and Redis, for a ~100 KB and a ~10 MB
 * JPEG: local-disk storage always, and the S3 server of TEST_S3_* (Ceph RGW) when set.
 *   npx tsx bench/upload-latency.ts [--runs 20] [--write]
 * A/B: `--baseline /path/to/other/checkout` runs that checkout's `bin/imgup.js` next to this one
 * (local disk, and the S3 server of TEST_S3_* when set), alternating the two per upload, and reports
 * both and their ratio.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { photoLike } from "../test/support/image-builders.ts";
import { s3Env, s3TestConnection, s3TestTarget } from "../test/support/s3-target.ts";
import { abUploadLatency } from "./lib/ab-upload.ts";
import { backendUrls, checkBackends } from "./lib/backends.ts";
import { onInterrupt } from "./lib/cleanup.ts";
import { startImgupProcess } from "./lib/imgup-process.ts";
import { uploadUntilReady } from "./lib/upload.ts";
import { machineInfo, percentile, recordResults } from "./report.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "20" },
    write: { type: "boolean" },
    baseline: { type: "string" },
  },
});
const runs = Number(values.runs);
const WARM_UP = 2; // sharp's first decode and the JIT are not the steady state

/** A photo-like 1200x900 JPEG at the highest quality that stays near 100 KB. */
async function hundredKilobyteJpeg(): Promise<Buffer> {
  const photo = await photoLike(1200, 900, 3);
  for (const quality of [90, 85, 80, 75, 70, 60, 50]) {
    const jpeg = await photo.clone().jpeg({ quality }).toBuffer();
    if (jpeg.length <= 110_000) return jpeg;
  }
  throw new Error("could not make a ~100 KB JPEG");
}

/** Noise does not compress: ~10 MB of JPEG from a 12 MP frame at q90. */
async function tenMegabyteJpeg(): Promise<Buffer> {
  const width = 4000;
  const height = 3000;
  return sharp(randomBytes(width * height * 3), { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

const backends = backendUrls();
await checkBackends(backends);
const machine = machineInfo();
console.log(machine);
const images = [
  { label: "photo-like 1200x900", bytes: new Uint8Array(await hundredKilobyteJpeg()) },
  { label: "noise 4000x3000 (12 MP)", bytes: new Uint8Array(await tenMegabyteJpeg()) },
];

if (values.baseline) {
  const ab = { baseline: values.baseline, backends, images, runs, warmUp: WARM_UP };
  const tables = [await abUploadLatency(ab)];
  const s3 = s3TestConnection();
  const bucket = s3 ? await s3TestTarget() : null;
  if (s3 && bucket) {
    const forgetBucket = onInterrupt(bucket.cleanup);
    try {
      const label = `S3 (${new URL(s3.endpoint ?? "").host}, completion hint, one bucket for both)`;
      tables.push(
        await abUploadLatency({ ...ab, storage: { label, env: s3Env(bucket, s3), sendCompleteHint: true } }),
      );
    } finally {
      await bucket.cleanup();
      forgetBucket();
    }
  }
  const table = tables.join("\n\n");
  console.log(`\n${table}\n`);
  if (values.write) await recordResults("upload-latency-ab", table, machine);
  process.exit(0);
}

const rows: string[] = [];

async function measure(storage: string, env: Record<string, string>, sendCompleteHint: boolean) {
  const imgup = await startImgupProcess({ label: "upload", role: "all", backends, env });
  try {
    for (const image of images) {
      const samples: number[] = [];
      for (let i = 0; i < runs + WARM_UP; i++) {
        const { totalMs } = await uploadUntilReady(imgup.baseUrl, imgup.apiKey, image.bytes, {
          contentType: "image/jpeg",
          filename: "bench.jpg",
          sendCompleteHint,
        });
        if (i >= WARM_UP) samples.push(totalMs);
      }
      const size =
        image.bytes.length >= 1e6
          ? `${(image.bytes.length / 1e6).toFixed(1)} MB`
          : `${(image.bytes.length / 1e3).toFixed(0)} KB`;
      const row = `| ${storage} | ${size} JPEG, ${image.label} | ${runs} | ${percentile(samples, 50).toFixed(0)} | ${percentile(samples, 95).toFixed(0)} | ${Math.max(...samples).toFixed(0)} |`;
      console.log(row);
      rows.push(row);
    }
  } finally {
    await imgup.cleanup();
  }
}

await measure("local disk (storage event in-process)", {}, false);
const s3 = s3TestConnection();
const bucket = s3 ? await s3TestTarget() : null;
if (s3 && bucket) {
  const forgetBucket = onInterrupt(bucket.cleanup);
  try {
    // A fresh bucket has no notifications (RGW takes ~30 s to pick up a new topic), so the
    // client's completion hint is what starts processing here: that path is the one measured.
    await measure(`S3 (${new URL(s3.endpoint ?? "").host}, completion hint)`, s3Env(bucket, s3), true);
  } finally {
    await bucket.cleanup();
    forgetBucket();
  }
} else {
  console.log("S3 skipped: TEST_S3_ENDPOINT is not set (bash scripts/local-s3.sh start && eval ...)");
}

const table = [
  `\`imgup serve\` (all roles in one process), PostgreSQL + Redis; the client (this process) sends the intent, PUTs the bytes to the URL it got, then polls GET /v1/images/{id} every 10 ms until \`ready\`. Ready includes the worker's full decode, SHA-256, the eager \`thumb\` preset and the ThumbHash. ${WARM_UP} warm-up uploads per size are not counted.`,
  "",
  "| storage | image | runs | p50 ms | p95 ms | max ms |",
  "|---|---|---|---|---|---|",
  ...rows,
].join("\n");
console.log(`\n${table}\n`);
if (values.write) await recordResults("upload-latency", table, machine);
