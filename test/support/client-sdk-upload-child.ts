/**
 * One SDK upload of a file from disk in a process of its own, so that the memory it reports is
 * the SDK's alone (imgup runs in the test's process). The first attempt of part 3 fails as a
 * dropped connection would. Usage: node --import tsx client-sdk-upload-child.ts BASE_URL TOKEN FILE
 * Prints one JSON line: the image, part attempts, RSS baseline and peak while hashing and uploading.
 */
import { openAsBlob } from "node:fs";
import { sha256OfBlob } from "../../client/hash.ts";
import { createClient, type UploadProgress } from "../../client/index.ts";

const [baseUrl, token, file] = process.argv.slice(2);
if (!baseUrl || !token || !file) throw new Error("usage: BASE_URL TOKEN FILE");

const attempts = new Map<number, number>();
const failingOnce: typeof fetch = async (input, init) => {
  const part = new URL(String(input)).searchParams.get("partNumber");
  if (part) {
    const n = Number(part);
    attempts.set(n, (attempts.get(n) ?? 0) + 1);
    if (n === 3 && attempts.get(n) === 1) throw new TypeError("simulated network failure");
  }
  return fetch(input, init);
};

const client = createClient({ baseUrl, token, fetch: failingOnce, pollIntervalMs: 200 });
const blob = await openAsBlob(file, { type: "image/png" });
// Load what loads once (Node's fetch, the WASM hasher) before the baseline: the question is
// whether memory grows with the file, not what a module costs.
await client.listImages({ limit: 1 });
await sha256OfBlob(new Blob(["warm-up"]));
const rss = { baseline: process.memoryUsage().rss, peak: 0, hashing: 0, uploading: 0 };
let phase: UploadProgress["phase"] = "hashing";
let uploaded = 0;
const sample = () => {
  if (phase === "processing") return;
  const now = process.memoryUsage().rss;
  rss.peak = Math.max(rss.peak, now);
  rss[phase] = Math.max(rss[phase], now);
};
const sampling = setInterval(sample, 250);
const started = Date.now();
const { image } = await client.upload(blob, {
  filename: "huge.png",
  onProgress: (p) => {
    sample();
    phase = p.phase;
    if (p.phase === "uploading") uploaded = p.loaded;
  },
});
clearInterval(sampling);
console.log(
  JSON.stringify({ image, uploaded, attempts: [...attempts], rss, seconds: (Date.now() - started) / 1000 }),
);
