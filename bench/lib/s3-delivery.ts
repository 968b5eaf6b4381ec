/**
 * Cached-variant hits of an imgup on S3 (the TEST_S3_* server, Ceph RGW): one `imgup serve` per
 * delivery configuration, each on a fresh bucket, the same cases and load as the local-disk part.
 */
import { transformUrl } from "../../src/services/transform-urls.ts";
import { s3Env, s3TestConnection, s3TestTarget } from "../../test/support/s3-target.ts";
import type { Backends } from "./backends.ts";
import { startImgupProcess } from "./imgup-process.ts";
import { type LoadRequest, saturate } from "./load.ts";
import { LoadStats, type Summary } from "./load-stats.ts";
import { uploadUntilReady } from "./upload.ts";

export interface S3Mode {
  label: string;
  env: Record<string, string>;
  /** The status a hit answers with (a redirect is a 302). */
  hitStatus: number;
}

export const S3_MODES: S3Mode[] = [
  { label: "S3, defaults (small variants from memory)", env: {}, hitStatus: 200 },
  {
    label: "S3, every hit proxied (IMGUP_HOT_VARIANT_CACHE_MB=0)",
    env: { IMGUP_HOT_VARIANT_CACHE_MB: "0" },
    hitStatus: 200,
  },
  {
    label: "S3, 302 to a presigned GET (IMGUP_S3_DELIVERY_REDIRECT=presigned, no memory)",
    env: { IMGUP_HOT_VARIANT_CACHE_MB: "0", IMGUP_S3_DELIVERY_REDIRECT: "presigned" },
    hitStatus: 302,
  },
];

export interface S3Case {
  label: string;
  /** The imgup path of image id (and the signing secret for signed URLs). */
  path: (baseUrl: string, secret: string, id: string) => string;
}

/** null when no S3 server is configured. */
export async function s3Delivery(opts: {
  backends: Backends;
  mode: S3Mode;
  cases: S3Case[];
  photos: Buffer[];
  imageCount: number;
  connections: number;
  seconds: number;
  rounds: number;
}): Promise<Array<{ label: string; summary: Summary }> | null> {
  const connection = s3TestConnection();
  const bucket = connection ? await s3TestTarget() : null;
  if (!connection || !bucket) return null;
  const imgup = await startImgupProcess({
    label: "deliverys3",
    role: "all",
    backends: opts.backends,
    env: { ...s3Env(bucket, connection), ...opts.mode.env },
  });
  try {
    const ids: string[] = [];
    for (let i = 0; i < opts.imageCount; i++) {
      const up = await uploadUntilReady(
        imgup.baseUrl,
        imgup.apiKey,
        new Uint8Array(opts.photos[i % opts.photos.length] as Buffer),
        { contentType: "image/jpeg", filename: `photo-${i}.jpg`, sendCompleteHint: true },
      );
      ids.push(up.id);
    }
    const out: Array<{ label: string; summary: Summary }> = [];
    for (const c of opts.cases) {
      const paths = ids.map((id) => c.path(imgup.baseUrl, imgup.signingSecret, id));
      // Made, then seen once in the bucket (what a redirect needs), then every request a hit.
      for (const p of [...paths, ...paths]) await (await fetch(`${imgup.baseUrl}${p}`)).arrayBuffer();
      for (const p of paths) {
        const res = await fetch(`${imgup.baseUrl}${p}`, { redirect: "manual" });
        await res.arrayBuffer();
        if (res.status !== opts.mode.hitStatus)
          throw new Error(`${p}: ${res.status}, not ${opts.mode.hitStatus}`);
      }
      let n = 0;
      const next = (): LoadRequest => ({
        method: "GET",
        path: paths[n++ % paths.length] as string,
        headers: { accept: "image/webp" },
      });
      const target = { baseUrl: imgup.baseUrl, cpuMs: imgup.cpuMs };
      await saturate(target, { connections: opts.connections, seconds: 1, next });
      const stats = new LoadStats();
      for (let r = 0; r < opts.rounds; r++)
        stats.add(await saturate(target, { connections: opts.connections, seconds: opts.seconds, next }));
      out.push({ label: c.label, summary: stats.summary() });
    }
    return out;
  } finally {
    await imgup.cleanup();
    await bucket.cleanup();
  }
}

export function signedPath(spec: string) {
  return (baseUrl: string, secret: string, id: string) =>
    new URL(transformUrl(baseUrl, secret, spec, id)).pathname;
}
