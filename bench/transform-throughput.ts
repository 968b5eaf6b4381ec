/**
 * Transform throughput, the imgproxy benchmark workload: ~2000-px photos fit into 512x512 JPEG q80
 * by 2 concurrent clients, through transformImage in this process, through the image sandbox (a
 * pool of child processes with deadlines, which is what the server runs) and, in the same run,
 * through a bare sharp loop (the overhead ratios). Also: the server-side RSS while a 49 MP AVIF
 * encode runs in the sandbox and is killed at its deadline. Also: a 1280-px AVIF encode (the effort setting), and the peak RSS of one
 * 50 MP transform and probe, each in a child process of its own so the figures are not mixed.
 *   npx tsx bench/transform-throughput.ts [--seconds 10] [--clients 2] [--write]
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { sandboxedImageWork } from "../src/imaging/image-work.ts";
import { probeImage } from "../src/imaging/probe.ts";
import { ImagePool } from "../src/imaging/sandbox/pool.ts";
import { readRss } from "../src/imaging/sandbox/rss.ts";
import { transformImage } from "../src/imaging/transform.ts";
import { photo, photoLike } from "../test/support/image-builders.ts";
import { machineInfo, percentile, recordResults } from "./report.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    clients: { type: "string", default: "2" },
    write: { type: "boolean" },
    "rss-child": { type: "string" },
    "rss-case": { type: "string" },
  },
});
const MAX_PIXELS = 50_000_000;
const fit512 = {
  width: 512,
  height: 512,
  fit: "inside" as const,
  format: "jpeg" as const,
  quality: 80,
  dpr: 1,
};
// The app's settings (composition root): no libvips operation cache.
sharp.cache(false);

if (values["rss-child"]) {
  await rssChild(values["rss-child"], values["rss-case"] ?? "");
  process.exit(0);
}

const seconds = Number(values.seconds);
const clients = Number(values.clients);
const machine = machineInfo();
console.log(machine);
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** `clients` loops, each running `op` back to back over the images for `ms` milliseconds. */
async function drive(images: Buffer[], op: (input: Buffer) => Promise<unknown>, ms: number, into: Run) {
  const end = performance.now() + ms;
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        // A fresh copy, as a server reads each original anew: the sandbox must not find it cached.
        const input = Buffer.from(images[next++ % images.length] as Buffer);
        const t = performance.now();
        await op(input);
        into.samples.push(performance.now() - t);
      }
    }),
  );
  into.elapsed += (performance.now() - start) / 1000;
}

interface Run {
  samples: number[];
  elapsed: number;
}

const summary = (r: Run) => ({
  ops: r.samples.length,
  perSecond: r.samples.length / r.elapsed,
  p50: percentile(r.samples, 50),
  p95: percentile(r.samples, 95),
});

console.log("generating inputs…");
const photos: Buffer[] = [];
for (let seed = 1; seed <= 4; seed++)
  photos.push(await (await photoLike(2000, 1333, seed)).jpeg({ quality: 90 }).toBuffer());

const pipeline = (input: Buffer) => transformImage(input, fit512, { maxPixels: MAX_PIXELS });
// As the app wires it: one child per concurrent slot, the app's libvips threads in each.
const pool = new ImagePool({
  size: clients,
  taskMemoryBytes: 1024 ** 3,
  vipsConcurrency: sharp.concurrency(),
});
const work = sandboxedImageWork(pool);
const limits = { maxPixels: MAX_PIXELS, animated: false };
const sandboxed = (input: Buffer) => work.transform(input, fit512, limits, { timeoutMs: 20_000 });
const bare = (input: Buffer) =>
  sharp(input).resize(512, 512, { fit: "inside" }).jpeg({ quality: 80, progressive: true }).toBuffer();

// Warm both paths (first-call costs are not the steady state).
for (const input of photos) {
  await pipeline(input);
  await bare(input);
  await Promise.all([sandboxed(input), sandboxed(input)]);
}
console.log(`running ${seconds} s per path, ${clients} clients, sharp concurrency ${sharp.concurrency()}…`);
// Alternating slices, so that load from elsewhere on the machine falls on both paths alike.
const ROUNDS = 5;
const pipelineRun: Run = { samples: [], elapsed: 0 };
const bareRun: Run = { samples: [], elapsed: 0 };
const sandboxRun: Run = { samples: [], elapsed: 0 };
for (let round = 0; round < ROUNDS; round++) {
  await drive(photos, pipeline, (seconds * 1000) / ROUNDS, pipelineRun);
  await drive(photos, sandboxed, (seconds * 1000) / ROUNDS, sandboxRun);
  await drive(photos, bare, (seconds * 1000) / ROUNDS, bareRun);
}
const viaPipeline = summary(pipelineRun);
const viaSandbox = summary(sandboxRun);
const viaSharp = summary(bareRun);
const overhead = viaSharp.perSecond / viaPipeline.perSecond;
const sandboxVsBare = viaSandbox.perSecond / viaSharp.perSecond;
const perTransformMs = viaSandbox.p50 - viaPipeline.p50;

console.log("49 MP AVIF q100 in the sandbox, killed at a 5 s deadline…");
const huge = await photo(7000, 7000).jpeg({ quality: 85 }).toBuffer();
const parentBefore = readRss(process.pid) ?? 0;
let parentPeak = parentBefore;
let childPeak = 0;
const sampler = setInterval(() => {
  parentPeak = Math.max(parentPeak, readRss(process.pid) ?? 0);
  for (const pid of pool.pids) childPeak = Math.max(childPeak, readRss(pid) ?? 0);
}, 50);
const avifBombStart = performance.now();
const avifBomb = await work
  .transform(huge, { width: 7000, fit: "inside", format: "avif", quality: 100, dpr: 1 }, limits, {
    timeoutMs: 5000,
  })
  .then(
    () => "finished",
    (err: Error & { extra?: { reason?: string } }) => err.extra?.reason ?? err.message,
  );
const avifBombMs = performance.now() - avifBombStart;
clearInterval(sampler);
await pool.stop();

const avifInput = await (await photoLike(1280, 853, 9)).jpeg({ quality: 90 }).toBuffer();
const avifTimes: number[] = [];
for (let i = 0; i < 5; i++) {
  const t = performance.now();
  await transformImage(avifInput, { fit: "inside", format: "avif", dpr: 1 }, { maxPixels: MAX_PIXELS });
  avifTimes.push(performance.now() - t);
}

console.log("50 MP cases (child processes)…");
const dir = await mkdtemp(path.join(tmpdir(), "imgup-bench-"));
const big = await photoLike(8660, 5773, 5);
const bigJpeg = path.join(dir, "50mp.jpg");
const bigPng = path.join(dir, "50mp.png");
await writeFile(bigJpeg, await big.clone().jpeg({ quality: 85 }).toBuffer());
await writeFile(bigPng, await big.clone().png({ compressionLevel: 6 }).toBuffer());
const rss = {
  baseline: measureChild(bigJpeg, "baseline"),
  jpeg: measureChild(bigJpeg, "transform"),
  png: measureChild(bigPng, "transform"),
  probe: measureChild(bigJpeg, "probe"),
};
await rm(dir, { recursive: true, force: true });

const row = (name: string, r: ReturnType<typeof summary>) =>
  `| ${name} | ${r.ops} | ${r.perSecond.toFixed(1)} | ${r.p50.toFixed(0)} | ${r.p95.toFixed(0)} |`;
const table = [
  `Workload: 4 photo-like 2000x1333 JPEGs (q90) fit into 512x512 JPEG q80, ${clients} concurrent clients, ${seconds} s per path in ${ROUNDS} alternating slices, sharp concurrency ${sharp.concurrency()}, cache off.`,
  "",
  "| path | ops | images/s | p50 ms | p95 ms |",
  "|---|---|---|---|---|",
  row("transformImage (pipeline, in process)", viaPipeline),
  row("image sandbox (child processes, as served)", viaSandbox),
  row("bare sharp loop", viaSharp),
  "",
  `Overhead ratio (bare images/s ÷ pipeline images/s): **${overhead.toFixed(2)}**.`,
  `Sandbox throughput ÷ bare sharp: **${sandboxVsBare.toFixed(2)}**; sandbox cost per transform (p50 sandbox − p50 in-process): **${perTransformMs.toFixed(1)} ms**.`,
  "",
  `49 MP (7000x7000) JPEG → AVIF q100 in the sandbox with a 5 s deadline: ${avifBomb} after ${avifBombMs.toFixed(0)} ms; server process RSS ${mib(parentBefore)} before, ${mib(parentPeak)} peak; the child peaked at ${mib(childPeak)} before it was killed.`,
  "",
  `1280x853 photo-like → AVIF q63 (effort 2, 4:2:0) through transformImage, 5 runs: p50 ${percentile(avifTimes, 50).toFixed(0)} ms, max ${Math.max(...avifTimes).toFixed(0)} ms.`,
  "",
  "Peak RSS of one child process (Node + sharp loaded, one operation on a 50 MP input, 8660x5773):",
  "",
  "| case | peak RSS |",
  "|---|---|",
  `| modules loaded, nothing done | ${mib(rss.baseline)} |`,
  `| transformImage 50 MP JPEG → 512 px JPEG | ${mib(rss.jpeg)} |`,
  `| transformImage 50 MP PNG → 512 px JPEG | ${mib(rss.png)} |`,
  `| probeImage 50 MP JPEG (header + full decode) | ${mib(rss.probe)} |`,
  "",
  `Peak RSS of this benchmark process (which built the 50 MP inputs): ${mib(await peakRss())}.`,
].join("\n");
console.log(`\n${table}\n`);
if (values.write) await recordResults("transform-throughput", table, machine);

/** Runs one case in a fresh process and returns its peak RSS in bytes. */
function measureChild(file: string, which: string): number {
  const res = spawnSync(
    process.execPath,
    [...process.execArgv, import.meta.filename, "--rss-child", file, "--rss-case", which],
    { encoding: "utf8", maxBuffer: 1 << 20 },
  );
  const m = /^maxrss=(\d+)$/m.exec(res.stdout);
  if (res.status !== 0 || !m) throw new Error(`rss child ${which} failed: ${res.stderr}`);
  return Number(m[1]);
}

async function rssChild(file: string, which: string): Promise<void> {
  const input = await readFile(file);
  if (which === "transform") await transformImage(input, fit512, { maxPixels: MAX_PIXELS });
  if (which === "probe") {
    const probe = await probeImage(input, { maxPixels: MAX_PIXELS });
    if (!probe.ok) throw new Error(probe.detail);
  }
  console.log(`maxrss=${await peakRss()}`);
}

/**
 * VmHWM: the peak resident set of this process image. getrusage's maxRSS would do elsewhere, but on
 * Linux it survives exec, so a child spawned by a big parent would report the parent's peak.
 */
async function peakRss(): Promise<number> {
  try {
    const status = await readFile("/proc/self/status", "utf8");
    const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
    if (kb) return Number(kb) * 1024;
  } catch {}
  return process.resourceUsage().maxRSS * 1024;
}
