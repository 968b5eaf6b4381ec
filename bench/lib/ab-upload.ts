/**
 * Upload → ready of this checkout against another one (A/B) in the same run: both servers up at
 * once on the same PostgreSQL and Redis, uploads alternating between them (ABBA order, so neither
 * always goes first), so load from elsewhere on a shared machine falls on both alike.
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { percentile } from "../report.ts";
import type { Backends } from "./backends.ts";
import { type ImgupProcess, startImgupProcess } from "./imgup-process.ts";
import { uploadUntilReady } from "./upload.ts";

export interface AbOptions {
  /** The other checkout's root (its bin/imgup.js runs). */
  baseline: string;
  backends: Backends;
  images: { label: string; bytes: Uint8Array<ArrayBuffer> }[];
  runs: number;
  warmUp: number;
  /** Storage for both sides (default: each its own local disk), and how it is named in the table. */
  storage?: { label: string; env: Record<string, string>; sendCompleteHint: boolean };
}

/** A markdown table: p50/p95 per side and the ratio this ÷ baseline. */
export async function abUploadLatency(opts: AbOptions): Promise<string> {
  const sides = [
    { name: `this (${commitOf(path.join(import.meta.dirname, "..", ".."))})`, bin: undefined },
    { name: `baseline (${commitOf(opts.baseline)})`, bin: path.join(opts.baseline, "bin", "imgup.js") },
  ];
  const procs: ImgupProcess[] = [];
  const rows: string[] = [];
  try {
    for (const [i, side] of sides.entries())
      procs.push(
        await startImgupProcess({
          label: `ab${i}`,
          role: "all",
          backends: opts.backends,
          bin: side.bin,
          env: opts.storage?.env ?? {},
        }),
      );
    for (const image of opts.images) {
      const samples: number[][] = sides.map(() => []);
      for (let i = 0; i < opts.runs + opts.warmUp; i++) {
        const order = i % 2 === 0 ? [0, 1] : [1, 0];
        for (const s of order) {
          const p = procs[s] as ImgupProcess;
          const { totalMs } = await uploadUntilReady(p.baseUrl, p.apiKey, image.bytes, {
            contentType: "image/jpeg",
            filename: "bench.jpg",
            sendCompleteHint: opts.storage?.sendCompleteHint ?? false,
          });
          if (i >= opts.warmUp) samples[s]?.push(totalMs);
        }
      }
      const [a, b] = samples as [number[], number[]];
      const size =
        image.bytes.length >= 1e6
          ? `${(image.bytes.length / 1e6).toFixed(1)} MB`
          : `${(image.bytes.length / 1e3).toFixed(0)} KB`;
      const f = (x: number[], p: number) => percentile(x, p).toFixed(0);
      const ratio = (p: number) => (percentile(a, p) / percentile(b, p)).toFixed(2);
      const row = `| ${size} JPEG, ${image.label} | ${opts.runs} | ${f(a, 50)} | ${f(a, 95)} | ${f(b, 50)} | ${f(b, 95)} | **${ratio(50)}** | ${ratio(95)} |`;
      console.log(row);
      rows.push(row);
    }
  } finally {
    for (const p of procs) await p.cleanup();
  }
  return [
    `${opts.storage?.label ?? "Local disk"}, \`imgup serve\` (all roles), PostgreSQL + Redis; ${sides[0]?.name} against ${sides[1]?.name}, both running, uploads alternating between them (ABBA), ${opts.warmUp} warm-up uploads per size and side not counted. Ratio: this ÷ baseline (below 1: this is faster).`,
    "",
    "| image | runs | this p50 ms | this p95 ms | baseline p50 ms | baseline p95 ms | p50 ratio | p95 ratio |",
    "|---|---|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}

const git = (dir: string, ...args: string[]) =>
  execFileSync("git", ["-C", dir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();

export function commitOf(dir: string): string {
  try {
    const head = git(dir, "rev-parse", "--short", "HEAD");
    return git(dir, "status", "--porcelain", "--untracked-files=no") ? `${head}, modified` : head;
  } catch {
    return path.basename(dir);
  }
}
