/**
 * Cold start and idle memory of each role, from the TypeScript sources through tsx (how imgup ran
 * before the build) and compiled (dist/, plain node), on PostgreSQL + Redis.
 *
 * Start: process spawn → GET /healthz answering (roles with HTTP: all, api, and any role given an
 * admin port) or the role's first log line (worker, scheduler without one). CPU: user+sys of the
 * process at that moment. RSS: the process, and with its image children, after IDLE_MS at idle.
 *
 * Usage: npm run build && tsx bench/cold-start.ts [--runs N] [--write]
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { backendUrls, checkBackends, dropNamespace, freshNamespace } from "./lib/backends.ts";
import { freePort } from "./lib/server-process.ts";
import { machineInfo, recordResults } from "./report.ts";

const ROOT = path.join(import.meta.dirname, "..");
const ROLES = ["all", "api", "worker", "scheduler"] as const;
const IDLE_MS = 5000;
const MODES = {
  "tsx (sources)": ["--import", "tsx", path.join(ROOT, "src/cli.ts")],
  "compiled (dist/)": [path.join(ROOT, "dist/cli.js")],
} as const;
type Mode = keyof typeof MODES;
type Role = (typeof ROLES)[number];

interface Sample {
  startMs: number;
  cpuMs: number;
  rssMiB: number;
  treeRssMiB: number;
}

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf("--runs") + 1] ?? 3) || 3;
const write = args.includes("--write");

function procStat(pid: number): { cpuMs: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  // utime and stime are fields 14 and 15 (1-based), in clock ticks (100 per second on Linux).
  return { cpuMs: (Number(fields[11]) + Number(fields[12])) * 10 };
}

function rssKiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/);
  return Number(line?.[1] ?? 0);
}

function descendants(pid: number): number[] {
  const out: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const file = `/proc/${pid}/task/${task}/children`;
    const kids = existsSync(file) ? readFileSync(file, "utf8").trim().split(/\s+/).filter(Boolean) : [];
    for (const kid of kids.map(Number)) out.push(kid, ...descendants(kid));
  }
  return out;
}

async function measure(mode: Mode, role: Role, env: NodeJS.ProcessEnv): Promise<Sample> {
  const port = await freePort();
  const withHttp = role === "all" || role === "api";
  const started = performance.now();
  const child: ChildProcess = spawn(process.execPath, [...MODES[mode], "serve", "--role", role], {
    cwd: ROOT,
    env: { ...env, PORT: String(port), IMGUP_PUBLIC_URL: `http://127.0.0.1:${port}` },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let logged = false;
  child.stdout?.on("data", (d: Buffer) => {
    output += d;
    logged = true;
  });
  child.stderr?.on("data", (d: Buffer) => {
    output += d;
  });
  try {
    const deadline = Date.now() + 180_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${mode} ${role} exited ${child.exitCode}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`${mode} ${role} did not start:\n${output}`);
      const up = withHttp
        ? (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok === true
        : logged;
      if (up) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const startMs = performance.now() - started;
    const pid = child.pid as number;
    const { cpuMs } = procStat(pid);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const rss = rssKiB(pid);
    const tree = descendants(pid).reduce((sum, p) => sum + rssKiB(p), rss);
    return { startMs, cpuMs, rssMiB: rss / 1024, treeRssMiB: tree / 1024 };
  } finally {
    const gone = new Promise((r) => child.once("exit", r));
    if (child.exitCode === null) child.kill("SIGTERM");
    await gone;
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? Number.NaN;
}

const backends = backendUrls();
await checkBackends(backends);
if (!existsSync(path.join(ROOT, "dist/cli.js")))
  throw new Error("dist/cli.js is missing: run `npm run build` first");
const machine = machineInfo();
const ns = freshNamespace("coldstart");
const dataDir = await mkdtemp(path.join(tmpdir(), "imgup-coldstart-"));
const env: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  DATABASE_URL: backends.databaseUrl,
  DATABASE_SCHEMA: ns.schema,
  REDIS_URL: backends.redisUrl,
  REDIS_KEY_PREFIX: ns.keyPrefix,
  IMGUP_DATA_DIR: dataDir,
  HOST: "127.0.0.1",
  IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
  IMGUP_DEV_KEY: "false",
  IMGUP_DEMO_PAGE: "false",
  LOG_LEVEL: "info",
};
const results = new Map<string, Sample[]>();
try {
  // Migrated once up front, so no start below pays for (or refuses over) the schema.
  await promisify(execFile)(process.execPath, [path.join(ROOT, "dist/cli.js"), "migrate"], { env });
  for (let run = 0; run < runs; run++) {
    for (const role of ROLES) {
      // Alternating which mode goes first, so a neighbour's burst falls on both alike.
      const modes = Object.keys(MODES) as Mode[];
      for (const mode of run % 2 === 0 ? modes : modes.reverse()) {
        const sample = await measure(mode, role, env);
        const key = `${role}|${mode}`;
        results.set(key, [...(results.get(key) ?? []), sample]);
        console.error(
          `${role.padEnd(9)} ${mode.padEnd(17)} start ${sample.startMs.toFixed(0)} ms, cpu ${sample.cpuMs} ms, rss ${sample.rssMiB.toFixed(0)} MiB (tree ${sample.treeRssMiB.toFixed(0)})`,
        );
      }
    }
  }
} finally {
  await dropNamespace(backends, ns).catch(() => undefined);
  await rm(dataDir, { recursive: true, force: true });
}

const rows = [...results.entries()].map(([key, samples]) => {
  const [role, mode] = key.split("|");
  const m = (f: (s: Sample) => number) => median(samples.map(f));
  return `| ${role} | ${mode} | ${m((s) => s.startMs).toFixed(0)} | ${m((s) => s.cpuMs).toFixed(0)} | ${m((s) => s.rssMiB).toFixed(0)} | ${m((s) => s.treeRssMiB).toFixed(0)} |`;
});
const table = `\`imgup serve --role R\` on PostgreSQL + Redis (schema migrated beforehand), median of ${runs} starts per cell, modes alternating. Start: spawn → \`/healthz\` answering (all, api) or the first log line (worker, scheduler). CPU: user+sys of the process when it answered. RSS after ${IDLE_MS / 1000} s idle: the process, and with its image sandbox children.

| role | run as | start ms | CPU ms | RSS MiB | RSS with children MiB |
|---|---|---|---|---|---|
${rows.join("\n")}
`;
console.log(table);
if (write) await recordResults("cold-start", table, machine);
