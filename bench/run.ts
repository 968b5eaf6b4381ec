/**
 * `npm run bench`: every benchmark in turn, each recording its section of bench/RESULTS.md.
 * With DATABASE_URL set, the HTTP benchmarks run against that PostgreSQL instead of PGlite.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";

const benches = [
  ["upload-latency.ts", "--runs", "20"],
  ["transform-throughput.ts", "--seconds", "10"],
  ["cached-variant.ts", "--seconds", "10"],
];
let failed = 0;
for (const [file, ...args] of benches) {
  console.log(`\n== ${file} ${args.join(" ")}`);
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", path.join(import.meta.dirname, file as string), ...args, "--write"],
    {
      stdio: "inherit",
    },
  );
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
