/**
 * Cached-variant delivery: imgup (`imgup serve`, PostgreSQL + Redis, local storage) serving
 * variants it already made, against nginx serving the very same files from imgup's storage
 * directory, in the same run, in alternating slices; load from autocannon in this process. Also a
 * cold pass: every request a new signed size, the transform path end to end.
 *   npx tsx bench/cached-variant.ts [--seconds 5] [--rounds 3] [--connections 32] [--write]
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { variantKey } from "../src/domain/keys.ts";
import { canonicalSpec, DEFAULT_SPEC_LIMITS, parseSpec } from "../src/domain/transform-spec.ts";
import { transformUrl } from "../src/services/transform-urls.ts";
import { photoLike } from "../test/support/image-builders.ts";
import { backendUrls, checkBackends } from "./lib/backends.ts";
import { HIT_OPTIONS, hitLoad, IMMUTABLE, THUMB } from "./lib/hit-options.ts";
import { startImgupProcess } from "./lib/imgup-process.ts";
import { type LoadRequest, saturate, type Target } from "./lib/load.ts";
import { cpu, LoadStats, ms, type Summary } from "./lib/load-stats.ts";
import { findOrInstallNginx, startNginx } from "./lib/nginx.ts";
import { S3_MODES, s3Delivery, signedPath } from "./lib/s3-delivery.ts";
import type { ServerProcess } from "./lib/server-process.ts";
import { uploadUntilReady } from "./lib/upload.ts";
import { machineInfo, recordResults } from "./report.ts";

const { values } = parseArgs({
  options: {
    ...HIT_OPTIONS,
    // Writes the server's CPU profile (node --cpu-prof) into this directory.
    profile: { type: "string" },
    skipCold: { type: "boolean" },
    // The S3 part (TEST_S3_* set): images per configuration; 0 skips it.
    s3Images: { type: "string", default: "5" },
  },
});
const { seconds, rounds, connections, imageCount } = hitLoad(values);
const SIGNED = "w_640,h_480,fit_cover,f_webp";

const backends = backendUrls();
await checkBackends(backends);
const machine = machineInfo();
console.log(machine);
const nginxBin = findOrInstallNginx();
if (nginxBin.bin === null) console.log(`nginx comparison skipped: ${nginxBin.why}`);

const imgup = await startImgupProcess({
  label: "delivery",
  role: "all",
  backends,
  ...(values.profile ? { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${values.profile}`] } : {}),
});
let nginx: (ServerProcess & { version: string }) | undefined;
const rows: string[] = [];
const notes: string[] = [];
const nginxByCase = new Map<string, Summary>();
try {
  console.log(`uploading ${imageCount} images…`);
  const photos: Buffer[] = [];
  for (let seed = 1; seed <= 4; seed++)
    photos.push(await (await photoLike(2000, 1333, seed)).jpeg({ quality: 90 }).toBuffer());
  const ids: string[] = [];
  for (let i = 0; i < imageCount; i++) {
    const bytes = new Uint8Array(photos[i % photos.length] as Buffer);
    const up = await uploadUntilReady(imgup.baseUrl, imgup.apiKey, bytes, {
      contentType: "image/jpeg",
      filename: `photo-${i}.jpg`,
    });
    ids.push(up.id);
  }
  const signedUrls = ids.map((id) => new URL(transformUrl(imgup.baseUrl, imgup.signingSecret, SIGNED, id)));
  const cases = [
    {
      label: "preset `thumb` (200x200 WebP, eager)",
      imgupPath: (i: number) => `/i/${ids[i]}/thumb`,
      spec: THUMB,
    },
    {
      label: `signed \`${SIGNED}\``,
      imgupPath: (i: number) => (signedUrls[i] as URL).pathname,
      spec: SIGNED,
    },
  ];
  // Make every variant once (the signed ones are not eager) and check both servers send the same bytes.
  const filePath = (spec: string, i: number) =>
    variantKey(ids[i] as string, canonicalSpec(parseSpec(spec, DEFAULT_SPEC_LIMITS)), "webp");
  for (const c of cases) {
    for (let i = 0; i < ids.length; i++) {
      const res = await fetch(`${imgup.baseUrl}${c.imgupPath(i)}`);
      if (res.status !== 200) throw new Error(`${c.imgupPath(i)}: ${res.status} ${await res.text()}`);
      const onDisk = await readFile(path.join(imgup.objectsDir, filePath(c.spec, i)));
      if (!onDisk.equals(Buffer.from(await res.arrayBuffer())))
        throw new Error(`${c.imgupPath(i)} differs from its file ${filePath(c.spec, i)}`);
    }
  }
  if (nginxBin.bin) {
    nginx = await startNginx({ bin: nginxBin.bin, root: imgup.objectsDir, cacheControl: IMMUTABLE });
    const probe = await fetch(`${nginx.baseUrl}/${filePath(THUMB, 0)}`);
    const viaImgup = await fetch(`${imgup.baseUrl}${cases[0]?.imgupPath(0)}`);
    if (!Buffer.from(await probe.arrayBuffer()).equals(Buffer.from(await viaImgup.arrayBuffer())))
      throw new Error("nginx and imgup serve different bytes for the same variant");
  }

  const asTarget = (s: ServerProcess): Target => ({ baseUrl: s.baseUrl, cpuMs: s.cpuMs });
  const cycling = (pathOf: (i: number) => string) => {
    let n = 0;
    return (): LoadRequest => ({
      method: "GET",
      path: pathOf(n++ % ids.length),
      headers: { accept: "image/webp" },
    });
  };
  for (const c of cases) {
    const targets = [{ name: "imgup", server: imgup as ServerProcess, next: cycling(c.imgupPath) }];
    if (nginx)
      targets.push({
        name: nginx.version, // e.g. nginx/1.22.1
        server: nginx,
        next: cycling((i) => `/${filePath(c.spec, i)}`),
      });
    for (const t of targets) await saturate(asTarget(t.server), { connections, seconds: 1, next: t.next }); // warm-up
    const stats = new Map(targets.map((t) => [t.name, new LoadStats()]));
    for (let round = 0; round < rounds; round++) {
      for (const t of round % 2 ? [...targets].reverse() : targets)
        stats.get(t.name)?.add(await saturate(asTarget(t.server), { connections, seconds, next: t.next }));
    }
    const summaries = targets.map((t) => ({ name: t.name, s: (stats.get(t.name) as LoadStats).summary() }));
    for (const { name, s } of summaries) rows.push(row(c.label, name, s));
    const [a, b] = summaries;
    if (a && b) notes.push(ratioLine(c.label, a.s, b.s));
    if (b) nginxByCase.set(c.label, b.s);
    console.log(rows.slice(-summaries.length).join("\n"));
  }

  // S3: imgup's hits against the same nginx figures (nginx serving local files is the bar).
  const s3Cases = [
    { label: cases[0]?.label as string, path: (_b: string, _s: string, id: string) => `/i/${id}/thumb` },
    { label: cases[1]?.label as string, path: signedPath(SIGNED) },
  ];
  for (const mode of Number(values.s3Images) > 0 ? S3_MODES : []) {
    const results = await s3Delivery({
      backends,
      mode,
      cases: s3Cases,
      photos,
      imageCount: Number(values.s3Images),
      connections,
      seconds,
      rounds,
    });
    if (!results) {
      notes.push("S3 skipped: TEST_S3_ENDPOINT is not set (bash scripts/local-s3.sh start && eval ...).");
      break;
    }
    for (const r of results) {
      rows.push(row(r.label, `imgup, ${mode.label}`, r.summary));
      const ng = nginxByCase.get(r.label);
      if (ng) notes.push(ratioLine(`${r.label}, ${mode.label}`, r.summary, ng));
      console.log(rows.at(-1));
    }
  }

  if (!values.skipCold) {
    // Cold: a new signed width per request, so every request is a transform (2000 px JPEG in).
    let width = 0;
    const cold = new LoadStats();
    const coldConnections = 8;
    cold.add(
      await saturate(asTarget(imgup), {
        connections: coldConnections,
        seconds: seconds * 2,
        next: () => {
          const id = ids[width % ids.length] as string;
          const url = new URL(
            transformUrl(imgup.baseUrl, imgup.signingSecret, `w_${300 + (width++ % 7000)},f_jpeg,q_80`, id),
          );
          return { method: "GET", path: url.pathname };
        },
      }),
    );
    rows.push(
      row(
        `cold: new signed width per request (→ ~300–${300 + Math.min(width, 7000)} px JPEG q80)`,
        "imgup",
        cold.summary(),
        coldConnections,
      ),
    );
  }
} finally {
  await nginx?.stop();
  await imgup.cleanup();
}

const table = [
  `${imageCount} ready images (2000x1333 JPEG originals); requests cycle through them. imgup: \`imgup serve\` (all roles), PostgreSQL + Redis, local-disk storage; nginx: ${nginx ? `${nginx.version}, ` : "skipped, "}worker_processes = cores, sendfile, no access log, serving imgup's storage directory. Load: autocannon in a third process, keep-alive, ${connections} connections, ${rounds} alternating slices of ${seconds} s per server. imgup with its defaults: image records cached per instance and checked per hit against versions in Redis (one MGET per event-loop turn), variants up to 256 KiB held in memory (64 MiB). S3 rows (Ceph RGW of TEST_S3_*, ${values.s3Images} images each, completion hint): one \`imgup serve\` per configuration, its ratios against the nginx figures above; the redirect rows count their 302s under non-2xx (a 302 is the hit there).`,
  "",
  "| variant | server | conn. | req/s | p50 ms | p90 ms | p99 ms | non-2xx | server CPU ms/req | load gen. CPU |",
  "|---|---|---|---|---|---|---|---|---|---|",
  ...rows,
  "",
  ...notes,
].join("\n");
console.log(`\n${table}\n`);
if (values.write) await recordResults("cached-variant", table, machine);

function row(label: string, server: string, s: Summary, conns = connections): string {
  return `| ${label} | ${server} | ${conns} | ${s.perSecond.toFixed(0)} | ${ms(s.p50)} | ${ms(s.p90)} | ${ms(s.p99)} | ${s.non2xx + s.errors} | ${cpu(s.cpuPerRequestMs)} | ${s.generatorCorePercent.toFixed(0)} % |`;
}

function ratioLine(label: string, imgupS: Summary, nginxS: Summary): string {
  const cpuRatio =
    imgupS.cpuPerRequestMs && nginxS.cpuPerRequestMs
      ? `; server CPU per request imgup ÷ nginx **${(imgupS.cpuPerRequestMs / nginxS.cpuPerRequestMs).toFixed(1)}**`
      : "";
  // One autocannon thread cannot outrun two nginx workers: then nginx's req/s is a floor.
  const generatorBound =
    nginxS.generatorCorePercent > 70
      ? ` (the load generator used ${nginxS.generatorCorePercent.toFixed(0)} % of a core against nginx, so nginx's req/s and this ratio are lower bounds)`
      : "";
  return `${label}: req/s imgup ÷ nginx **${(imgupS.perSecond / nginxS.perSecond).toFixed(2)}** (target ≥ 0.5)${generatorBound}${cpuRatio} (target ≤ 3).`;
}
