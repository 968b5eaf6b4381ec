/**
 * `npm run bench`: every benchmark in turn, each in a process of its own, each recording its
 * section of bench/RESULTS.md. The HTTP ones run on DATABASE_URL and REDIS_URL (default: the
 * local PostgreSQL and Redis the tests use); with TEST_S3_* set, upload latency also runs on S3;
 * with DATABASE_REPLICA_URLS set (`scripts/local-replica.sh env`), intents also run with a replica.
 *   npm run bench [-- --only intents,cached-variant]
 * Exits non-zero when any benchmark failed. Budget: under 10 minutes on a 2-core machine.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { only: { type: "string" } } });

const BENCHES: Array<{ name: string; args: string[] }> = [
  { name: "upload-latency", args: ["--runs", "20"] },
  { name: "transform-throughput", args: ["--seconds", "10"] },
  {
    name: "intents",
    args: [
      "--seconds",
      "5",
      "--rounds",
      "2",
      ...(process.env.DATABASE_REPLICA_URLS ? ["--replica", process.env.DATABASE_REPLICA_URLS] : []),
    ],
  },
  { name: "cached-variant", args: ["--seconds", "5", "--rounds", "3"] },
  // Needs Debian's varnishd and nginx; says so and exits 0 without them.
  { name: "varnish-hit", args: ["--seconds", "5", "--rounds", "3"] },
  // Needs TEST_S3_* (Ceph RGW) and RabbitMQ; says so and exits 0 without S3.
  { name: "event-latency", args: ["--runs", "20"] },
  // Needs Debian's clamd (clamav-daemon); says so and exits 0 without it.
  { name: "malware-scan", args: ["--runs", "30"] },
];
const BUDGET_MS = 10 * 60_000;
/** One benchmark that hangs must not hold the rest hostage. */
const TIMEOUT_MS = 6 * 60_000;

const only = values.only?.split(",").map((s) => s.trim());
const unknown = only?.filter((n) => !BENCHES.some((b) => b.name === n)) ?? [];
if (unknown.length) {
  console.error(
    `unknown benchmark(s): ${unknown.join(", ")}; known: ${BENCHES.map((b) => b.name).join(", ")}`,
  );
  process.exit(2);
}

const outcomes: Array<{ name: string; ok: boolean; ms: number }> = [];
const started = performance.now();
for (const bench of BENCHES.filter((b) => !only || only.includes(b.name))) {
  console.log(`\n== ${bench.name} ${bench.args.join(" ")}`);
  const t0 = performance.now();
  const ok = await runChild(path.join(import.meta.dirname, `${bench.name}.ts`), [...bench.args, "--write"]);
  outcomes.push({ name: bench.name, ok, ms: performance.now() - t0 });
}
const total = performance.now() - started;

const s = (ms: number) => `${(ms / 1000).toFixed(0)} s`;
console.log("\n== summary");
for (const o of outcomes) console.log(`${o.ok ? "ok    " : "FAILED"} ${o.name.padEnd(22)} ${s(o.ms)}`);
console.log(`total ${s(total)}${total > BUDGET_MS ? ` (over the ${s(BUDGET_MS)} budget)` : ""}`);
process.exit(outcomes.every((o) => o.ok) ? 0 : 1);

function runChild(file: string, args: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", file, ...args], { stdio: "inherit" });
    const timer = setTimeout(() => {
      console.error(`${path.basename(file)} exceeded ${s(TIMEOUT_MS)}; stopping it`);
      // SIGTERM first: the benchmark then stops its servers and drops its schema (lib/cleanup.ts).
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 30_000).unref();
    }, TIMEOUT_MS);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve(code === 0);
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      console.error(err);
      resolve(false);
    });
  });
}
