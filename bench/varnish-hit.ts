/**
 * Cache hits behind Varnish: Debian's varnishd with deploy/varnish/imgup.vcl in front of imgup,
 * against the same varnishd and VCL in front of nginx serving the very same variant files under the
 * same /i/{id}/thumb paths (a static origin), in alternating slices; load from autocannon in this
 * process. Every request is a hit once warmed: the target is imgup out of the hot path (hit req/s
 * within 10 % of the static origin's), and imgup's own CPU during its slices shows it.
 *   npx tsx bench/varnish-hit.ts [--seconds 5] [--rounds 3] [--connections 32] [--write]
 */
import { spawnSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { variantKey } from "../src/domain/keys.ts";
import { canonicalSpec, DEFAULT_SPEC_LIMITS, parseSpec } from "../src/domain/transform-spec.ts";
import { photoLike } from "../test/support/image-builders.ts";
import { backendUrls, checkBackends } from "./lib/backends.ts";
import { onInterrupt } from "./lib/cleanup.ts";
import { HIT_OPTIONS, hitLoad, IMMUTABLE, THUMB } from "./lib/hit-options.ts";
import { startImgupProcess } from "./lib/imgup-process.ts";
import { saturate, type Target } from "./lib/load.ts";
import { cpu, LoadStats, ms, type Summary } from "./lib/load-stats.ts";
import { findOrInstallNginx, startNginx } from "./lib/nginx.ts";
import { freePort, type ServerProcess, spawnServer } from "./lib/server-process.ts";
import { uploadUntilReady } from "./lib/upload.ts";
import { machineInfo, recordResults } from "./report.ts";

const { values } = parseArgs({
  options: {
    ...HIT_OPTIONS,
  },
});
const { seconds, rounds, connections, imageCount } = hitLoad(values);
const VCL = path.join(import.meta.dirname, "..", "deploy", "varnish", "imgup.vcl");

const varnishd = ["/usr/sbin/varnishd", "/usr/local/sbin/varnishd"].find(
  (bin) => spawnSync(bin, ["-V"]).status === 0,
);
if (!varnishd) {
  console.log("varnishd is not installed (Debian package varnish): skipped");
  process.exit(0);
}
const nginxBin = findOrInstallNginx();
if (nginxBin.bin === null) {
  console.log(`nginx is not available: skipped (${nginxBin.why})`);
  process.exit(0);
}
const version =
  /varnish-[\d.]+/.exec(spawnSync(varnishd, ["-V"], { encoding: "utf8" }).stderr)?.[0] ?? "varnish";

const backends = backendUrls();
await checkBackends(backends);
const machine = machineInfo();
console.log(machine);

/** varnishd -F with the shipped VCL, its backend pointed at `origin`. */
async function startVarnish(name: string, origin: ServerProcess, readyPath: string): Promise<ServerProcess> {
  const dir = await mkdtemp(path.join(tmpdir(), `imgup-bench-varnish-${name}-`));
  // As root, varnishd reads the VCL and keeps its work dir as an unprivileged user.
  await chmod(dir, 0o755);
  const forget = onInterrupt(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const vcl = (await readFile(VCL, "utf8")).replace(
    /\.port = "8080";/,
    `.port = "${new URL(origin.baseUrl).port}";`,
  );
  await writeFile(path.join(dir, "imgup.vcl"), vcl);
  const server = await spawnServer({
    name: `varnish→${name}`,
    command: varnishd as string,
    args: ["-F", "-n", path.join(dir, "n"), "-f", path.join(dir, "imgup.vcl")].concat([
      "-a",
      `127.0.0.1:${port}`,
      "-T",
      "none",
      "-s",
      "malloc,256m",
    ]),
    env: { PATH: process.env.PATH },
    baseUrl: `http://127.0.0.1:${port}`,
    readyPath,
  });
  return {
    ...server,
    stop: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
      forget();
    },
  };
}

const imgup = await startImgupProcess({ label: "varnish", role: "all", backends });
const started: ServerProcess[] = [];
let staticDir: string | undefined;
const rows: string[] = [];
const notes: string[] = [];
try {
  console.log(`uploading ${imageCount} images…`);
  const photo = await (await photoLike(1200, 800, 1)).jpeg({ quality: 85 }).toBuffer();
  const ids: string[] = [];
  for (let i = 0; i < imageCount; i++) {
    const up = await uploadUntilReady(imgup.baseUrl, imgup.apiKey, new Uint8Array(photo), {
      contentType: "image/jpeg",
      filename: `photo-${i}.jpg`,
    });
    ids.push(up.id);
  }
  // The static origin: the same variant files, laid out under imgup's delivery paths.
  staticDir = await mkdtemp(path.join(tmpdir(), "imgup-bench-static-"));
  const spec = canonicalSpec(parseSpec(THUMB, DEFAULT_SPEC_LIMITS));
  for (const id of ids) {
    await mkdir(path.join(staticDir, "i", id), { recursive: true });
    await symlink(
      path.join(imgup.objectsDir, variantKey(id, spec, "webp")),
      path.join(staticDir, "i", id, "thumb"),
    );
  }
  const nginx = await startNginx({ bin: nginxBin.bin, root: staticDir, cacheControl: IMMUTABLE });
  started.push(nginx);
  const thumbPath = (i: number) => `/i/${ids[i % ids.length]}/thumb`;
  const viaImgup = await startVarnish("imgup", imgup, thumbPath(0));
  started.push(viaImgup);
  const viaStatic = await startVarnish("nginx", nginx, thumbPath(0));
  started.push(viaStatic);

  // Warm both caches, and check they hold the same bytes and answer hits.
  for (let i = 0; i < ids.length; i++) {
    const a = await fetch(`${viaImgup.baseUrl}${thumbPath(i)}`);
    const b = await fetch(`${viaStatic.baseUrl}${thumbPath(i)}`);
    const [ab, bb] = [Buffer.from(await a.arrayBuffer()), Buffer.from(await b.arrayBuffer())];
    if (a.status !== 200 || b.status !== 200 || !ab.equals(bb))
      throw new Error(
        `${thumbPath(i)}: ${a.status}/${b.status}, bytes ${ab.equals(bb) ? "equal" : "differ"}`,
      );
  }
  for (const v of [viaImgup, viaStatic]) {
    const res = await fetch(`${v.baseUrl}${thumbPath(0)}`);
    await res.arrayBuffer();
    if (res.headers.get("x-cache") !== "HIT") throw new Error(`${v.name}: not a hit after warming`);
  }

  const targets = [
    { name: `${version} → imgup`, server: viaImgup },
    { name: `${version} → ${nginx.name === "nginx" ? "nginx (static)" : nginx.name}`, server: viaStatic },
  ];
  const asTarget = (s: ServerProcess): Target => ({ baseUrl: s.baseUrl, cpuMs: s.cpuMs });
  const cycling = () => {
    let n = 0;
    return () => ({ method: "GET" as const, path: thumbPath(n++), headers: { accept: "image/webp" } });
  };
  for (const t of targets) await saturate(asTarget(t.server), { connections, seconds: 1, next: cycling() });
  const stats = new Map(targets.map((t) => [t.name, new LoadStats()]));
  let imgupCpuMs = 0;
  let imgupSliceRequests = 0;
  for (let round = 0; round < rounds; round++) {
    for (const t of round % 2 ? [...targets].reverse() : targets) {
      const before = imgup.cpuMs() ?? 0;
      const slice = await saturate(asTarget(t.server), { connections, seconds, next: cycling() });
      if (t.server === viaImgup) {
        imgupCpuMs += (imgup.cpuMs() ?? 0) - before;
        imgupSliceRequests += slice.latencies.length;
      }
      stats.get(t.name)?.add(slice);
    }
  }
  const summaries = targets.map((t) => ({ name: t.name, s: (stats.get(t.name) as LoadStats).summary() }));
  for (const { name, s } of summaries) rows.push(row(name, s));
  const [a, b] = summaries;
  if (a && b) {
    notes.push(
      `Hit req/s through Varnish, imgup origin ÷ static origin: **${(a.s.perSecond / b.s.perSecond).toFixed(2)}** (target ≥ 0.9); p99 ${ms(a.s.p99)} vs ${ms(b.s.p99)} ms.`,
      `imgup's own CPU during the ${imgupSliceRequests} hits of its slices: ${imgupCpuMs.toFixed(0)} ms (${((imgupCpuMs / Math.max(1, imgupSliceRequests)) * 1000).toFixed(2)} µs per hit: its idle timers, not requests).`,
    );
    if (b.s.generatorCorePercent > 70)
      notes.push(
        `The load generator used ${b.s.generatorCorePercent.toFixed(0)} % of a core: both columns are bounded by it as much as by Varnish.`,
      );
  }
} finally {
  for (const s of started.reverse()) await s.stop().catch(() => undefined);
  if (staticDir) await rm(staticDir, { recursive: true, force: true });
  await imgup.cleanup();
}

const table = [
  `${imageCount} ready images, preset \`thumb\` (200x200 WebP), every request a cache hit after warming. Both Varnish instances run \`deploy/varnish/imgup.vcl\` as shipped (\`-s malloc,256m\`), one in front of \`imgup serve\` (PostgreSQL + Redis, local storage), one in front of nginx serving the same files at the same paths. Load: autocannon in this process, keep-alive, ${connections} connections, ${rounds} alternating slices of ${seconds} s each.`,
  "",
  "| origin | conn. | req/s | p50 ms | p90 ms | p99 ms | non-2xx | Varnish CPU ms/req | load gen. CPU |",
  "|---|---|---|---|---|---|---|---|---|",
  ...rows,
  "",
  ...notes,
].join("\n");
console.log(`\n${table}\n`);
if (values.write) await recordResults("varnish-hit", table, machine);

function row(server: string, s: Summary): string {
  return `| ${server} | ${connections} | ${s.perSecond.toFixed(0)} | ${ms(s.p50)} | ${ms(s.p90)} | ${ms(s.p99)} | ${s.non2xx + s.errors} | ${cpu(s.cpuPerRequestMs)} | ${s.generatorCorePercent.toFixed(0)} % |`;
}
