/**
 * Upload intents per second and their latency: imgup (`imgup serve --role api` on the machine's
 * PostgreSQL and Redis) against a bare Fastify route doing one INSERT in the same PostgreSQL, in
 * the same run, in alternating slices. The ratio is the figure that holds on a shared machine.
 *   npx tsx bench/intents.ts [--seconds 5] [--rounds 2] [--rates 200,500,1000] [--connections 32] [--write]
 * `--baseline /path/to/other/checkout` adds that checkout's imgup as a third target, in the same
 * alternating slices, and reports this ÷ baseline too (printed only, never written).
 * `--replica postgres://…` (e.g. `$(bash scripts/local-replica.sh env)`'s URL) adds imgup with
 * DATABASE_REPLICA_URLS as another target: what read-replica routing costs the intent path (its
 * read-your-writes window mark per write), reported as replica ÷ imgup (printed only).
 */
import { randomBytes, randomUUID } from "node:crypto";
import path from "node:path";
import { parseArgs } from "node:util";
import { commitOf } from "./lib/ab-upload.ts";
import { backendUrls, checkBackends, dropNamespace, freshNamespace, withDatabase } from "./lib/backends.ts";
import { onInterrupt } from "./lib/cleanup.ts";
import { startImgupProcess } from "./lib/imgup-process.ts";
import { type LoadRequest, PacedClient, saturate, type Target } from "./lib/load.ts";
import { cpu, LoadStats, ms, type SliceResult, type Summary } from "./lib/load-stats.ts";
import { freePort, type ServerProcess, spawnServer } from "./lib/server-process.ts";
import { machineInfo, recordResults } from "./report.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "2" },
    rates: { type: "string", default: "200,500,1000" },
    connections: { type: "string", default: "32" },
    write: { type: "boolean" },
    baseline: { type: "string" },
    replica: { type: "string" },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const rates = values.rates.split(",").map(Number);
const connections = Number(values.connections);
const POOL_SIZE = 10; // imgup's default DATABASE_POOL_SIZE; the bare server gets the same

const backends = backendUrls();
await checkBackends(backends);
const machine = machineInfo();
console.log(machine);

/** A realistic intent: a phone photo's name, type and size, and the SHA-256 an SDK computes. */
function intentRequest(apiKey: string): () => LoadRequest {
  let n = 0;
  return () => {
    n++;
    return {
      method: "POST",
      path: "/v1/uploads",
      headers: {
        authorization: `Bearer ${apiKey}`,
        "content-type": "application/json",
        "idempotency-key": randomUUID(),
      },
      body: JSON.stringify({
        filename: `IMG_${String(n).padStart(5, "0")}.jpg`,
        contentType: "image/jpeg",
        size: 200_000 + ((n * 7919) % 8_000_000),
        sha256: randomBytes(32).toString("hex"),
      }),
    };
  };
}

const imgup = await startImgupProcess({ label: "intents", role: "api", backends });
const baseline = values.baseline
  ? await startImgupProcess({
      label: "intentsbase",
      role: "api",
      backends,
      bin: path.join(values.baseline, "bin", "imgup.js"),
    }).catch(async (err) => {
      // The first server is running already: it must not outlive a baseline that did not start.
      await imgup.cleanup();
      throw err;
    })
  : null;
const withReplica = values.replica
  ? await startImgupProcess({
      label: "intentsreplica",
      role: "api",
      backends,
      env: { DATABASE_REPLICA_URLS: values.replica },
    }).catch(async (err) => {
      await imgup.cleanup();
      await baseline?.cleanup();
      throw err;
    })
  : null;
const replicaRatios: string[] = [];
const bareNs = freshNamespace("bare");
const forgetBareNs = onInterrupt(() => dropNamespace(backends, bareNs));
let bare: ServerProcess | undefined;
const rows: string[] = [];
const ratios: string[] = [];
const baselineRatios: string[] = [];
try {
  const barePort = await freePort();
  bare = await spawnServer({
    name: "bare Fastify + pg",
    command: process.execPath,
    args: ["--import", "tsx", path.join(import.meta.dirname, "bare-intent-server.ts")],
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: backends.databaseUrl,
      BENCH_SCHEMA: bareNs.schema,
      DATABASE_POOL_SIZE: String(POOL_SIZE),
      PORT: String(barePort),
    },
    baseUrl: `http://127.0.0.1:${barePort}`,
    readyPath: "/healthz",
  });
  const targets = [
    { name: "imgup", server: imgup as ServerProcess, next: intentRequest(imgup.apiKey) },
    { name: "bare", server: bare, next: intentRequest("bare") },
    ...(baseline
      ? [{ name: "baseline", server: baseline as ServerProcess, next: intentRequest(baseline.apiKey) }]
      : []),
    ...(withReplica
      ? [{ name: "replica", server: withReplica as ServerProcess, next: intentRequest(withReplica.apiKey) }]
      : []),
  ];
  // Every 201 imgup sends, warm-up included, must end up as a row (checked at the end). When
  // autocannon stops, up to one request per connection is still in flight, and a request that
  // timed out may have been stored: such rows exist without a 201 we counted.
  let imgupCreated = 0;
  let unansweredAtMost = 0;
  const count = (name: string, slice: SliceResult, closedLoop: boolean) => {
    if (name === "imgup") {
      imgupCreated += slice.statuses.get(201) ?? 0;
      unansweredAtMost += slice.errors + (closedLoop ? connections : 0);
    }
    return slice;
  };
  for (const t of targets) await expectCreated(t.server, t.next());
  imgupCreated++;

  const asTarget = (s: ServerProcess): Target => ({ baseUrl: s.baseUrl, cpuMs: s.cpuMs });
  // Warm-up: JIT, connection pools, PostgreSQL's caches; not recorded.
  for (const t of targets)
    count(t.name, await saturate(asTarget(t.server), { connections, seconds: 2, next: t.next }), true);

  const paced = new Map(targets.map((t) => [t.name, new PacedClient(asTarget(t.server), 64)]));
  const loads: Array<{ label: string; rate: number | null }> = [
    ...rates.map((rate) => ({ label: `${rate}/s`, rate })),
    { label: `unbounded (${connections} conn.)`, rate: null },
  ];
  for (const load of loads) {
    const stats = new Map(targets.map((t) => [t.name, new LoadStats()]));
    for (let round = 0; round < rounds; round++) {
      // Alternate which goes first, so a drift in the machine's load favours neither.
      for (const t of round % 2 ? [...targets].reverse() : targets) {
        const slice =
          load.rate === null
            ? await saturate(asTarget(t.server), { connections, seconds, next: t.next })
            : await (paced.get(t.name) as PacedClient).run(load.rate, seconds, t.next);
        stats.get(t.name)?.add(count(t.name, slice, load.rate === null));
      }
    }
    const a = (stats.get("imgup") as LoadStats).summary();
    const b = (stats.get("bare") as LoadStats).summary();
    rows.push(row(load.label, "imgup", a), row(load.label, "bare Fastify + 1 INSERT", b));
    ratios.push(
      load.rate === null
        ? `| ${load.label} | throughput **${(a.perSecond / b.perSecond).toFixed(2)}** | p50 ${(a.p50 / b.p50).toFixed(2)}, p99 ${(a.p99 / b.p99).toFixed(2)} | ${cpuRatio(a, b)} |`
        : `| ${load.label} | achieved ${(a.perSecond / b.perSecond).toFixed(2)} | p50 **${(a.p50 / b.p50).toFixed(2)}**, p99 **${(a.p99 / b.p99).toFixed(2)}** | ${cpuRatio(a, b)} |`,
    );
    console.log(rows.at(-2));
    console.log(rows.at(-1));
    const base = stats.get("baseline")?.summary();
    if (base && values.baseline) {
      const line = `| ${load.label} | baseline (${commitOf(values.baseline)}) | ${base.perSecond.toFixed(0)} | ${ms(base.p50)} | ${ms(base.p90)} | ${ms(base.p99)} | ${base.non2xx} | ${base.errors} | ${cpu(base.cpuPerRequestMs)} | ${base.generatorCorePercent.toFixed(0)} % |`;
      console.log(line);
      baselineRatios.push(
        `| ${load.label} | ${(a.perSecond / base.perSecond).toFixed(2)} | p50 ${(a.p50 / base.p50).toFixed(2)}, p99 ${(a.p99 / base.p99).toFixed(2)} | ${cpuRatio(a, base)} |`,
      );
    }
    const repl = stats.get("replica")?.summary();
    if (repl) {
      console.log(
        `| ${load.label} | imgup + read replica | ${repl.perSecond.toFixed(0)} | ${ms(repl.p50)} | ${ms(repl.p90)} | ${ms(repl.p99)} | ${repl.non2xx} | ${repl.errors} | ${cpu(repl.cpuPerRequestMs)} | ${repl.generatorCorePercent.toFixed(0)} % |`,
      );
      replicaRatios.push(
        `| ${load.label} | ${(repl.perSecond / a.perSecond).toFixed(2)} | p50 ${(repl.p50 / a.p50).toFixed(2)}, p99 ${(repl.p99 / a.p99).toFixed(2)} | ${cpuRatio(repl, a)} |`,
      );
    }
  }
  for (const client of paced.values()) client.close();
  await checkRows(imgup.schema, imgupCreated, unansweredAtMost);
} finally {
  await bare?.stop();
  await dropNamespace(backends, bareNs).catch((err) => console.error("bare cleanup:", err));
  forgetBareNs();
  await imgup.cleanup();
  await baseline?.cleanup();
  await withReplica?.cleanup();
}
if (replicaRatios.length > 0) {
  console.log(
    [
      "\nimgup with a read replica ÷ without:",
      "| load | req/s | latency | server CPU per request |",
      "|---|---|---|---|",
      ...replicaRatios,
    ].join("\n"),
  );
}
if (baselineRatios.length > 0) {
  console.log(
    [
      "\nthis ÷ baseline:",
      "| load | req/s | latency | server CPU per request |",
      "|---|---|---|---|",
      ...baselineRatios,
    ].join("\n"),
  );
}

const table = [
  `POST /v1/uploads with a fresh Idempotency-Key and a realistic body (name, type, size, sha256) per request. imgup: \`imgup serve --role api\`, PostgreSQL + Redis, pool ${POOL_SIZE}; bare: Fastify, JSON schema, one INSERT through a pg Pool of ${POOL_SIZE}. Each server in its own process; load from a third. Fixed rates: open loop, latency counted from when each request was due; unbounded: autocannon, ${connections} connections. ${rounds} alternating slices of ${seconds} s per target and load.`,
  "",
  "| load | server | req/s | p50 ms | p90 ms | p99 ms | non-2xx | errors | server CPU ms/req | load gen. CPU |",
  "|---|---|---|---|---|---|---|---|---|---|",
  ...rows,
  "",
  "imgup ÷ bare (server CPU excludes PostgreSQL and Redis):",
  "",
  "| load | req/s | latency | server CPU per request |",
  "|---|---|---|---|",
  ...ratios,
  ...(replicaRatios.length > 0
    ? [
        "",
        "imgup with DATABASE_REPLICA_URLS ÷ imgup without (the read-your-writes mark per write):",
        "",
        "| load | req/s | latency | server CPU per request |",
        "|---|---|---|---|",
        ...replicaRatios,
      ]
    : []),
].join("\n");
console.log(`\n${table}\n`);
if (values.write) await recordResults("intents", table, machine);

function row(load: string, server: string, s: Summary): string {
  return `| ${load} | ${server} | ${s.perSecond.toFixed(0)} | ${ms(s.p50)} | ${ms(s.p90)} | ${ms(s.p99)} | ${s.non2xx} | ${s.errors} | ${cpu(s.cpuPerRequestMs)} | ${s.generatorCorePercent.toFixed(0)} % |`;
}

function cpuRatio(a: Summary, b: Summary): string {
  return a.cpuPerRequestMs === null || b.cpuPerRequestMs === null
    ? "n/a"
    : `**${(a.cpuPerRequestMs / b.cpuPerRequestMs).toFixed(2)}**`;
}

/** One request by hand before any load: a benchmark of 401s would be worthless. */
async function expectCreated(server: ServerProcess, req: LoadRequest): Promise<void> {
  const res = await fetch(`${server.baseUrl}${req.path}`, {
    method: req.method,
    headers: req.headers ?? {},
    body: req.body ?? null,
  });
  if (res.status !== 201)
    throw new Error(`${server.name}: expected 201, got ${res.status} ${await res.text()}`);
}

/** Every 201 imgup sent must be a row: a fast answer that stored nothing would be a fake figure. */
async function checkRows(schema: string, created: number, unanswered: number): Promise<void> {
  const rows = await withDatabase(backends.databaseUrl, (c) =>
    c.query<{ n: string }>(`select count(*) as n from "${schema}".images`),
  );
  const stored = Number(rows.rows[0]?.n ?? 0);
  if (stored < created || stored > created + unanswered)
    throw new Error(`imgup answered 201 ${created} times but stored ${stored} images`);
  console.log(`imgup answered 201 ${created} times and stored ${stored} images (≤ ${unanswered} unanswered)`);
}
