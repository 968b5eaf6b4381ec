import { ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { createS3Client } from "../../src/storage/s3-client.ts";
import type { ImageJson } from "./api.ts";
import { type DbTarget, dbTargets, kvEnvTargets, type Running, startImgup } from "./harness.ts";
import { listAll } from "./maintenance.ts";
import { type S3TestTarget, s3Env, s3TestConnection, s3TestTarget } from "./s3-target.ts";

/** An imgup for the proxy upload tests, and what the tests inspect of its storage. */
export interface ProxyTarget {
  name: string;
  start: (env: Record<string, string>) => Promise<ProxyRun>;
}

export interface ProxyRun extends Running {
  /** Multipart uploads the storage still holds (S3 only; always 0 on local disk). */
  openMultipartUploads: () => Promise<number>;
  /** Forgets every key of the KV, or null for the in-process KV (which cannot be reached from here). */
  flushKv: (() => Promise<void>) | null;
}

/**
 * PGlite with the in-process KV always; PostgreSQL with Redis when DATABASE_URL / REDIS_URL are set;
 * and Ceph RGW (on the last of those databases) when TEST_S3_* are set.
 */
export function proxyTargets(): ProxyTarget[] {
  const dbs = dbTargets();
  const kvs = kvEnvTargets();
  const local = dbs.map((db, i) => {
    const kv = i === 0 ? kvs[0] : kvs.at(-1);
    return { name: `${db.name} + ${kv?.name} + local disk`, db, kv, s3: false };
  });
  const last = local.at(-1);
  const connection = s3TestConnection();
  const all =
    connection && last
      ? [...local, { ...last, name: `${last.db.name} + ${last.kv?.name} + Ceph RGW`, s3: true }]
      : local;
  return all.map(({ name, db, kv, s3 }) => ({
    name,
    start: async (env) => {
      const kvTarget = kv?.make();
      const bucket: S3TestTarget | null = s3 ? await s3TestTarget() : null;
      const storageEnv = bucket && connection ? s3Env(bucket, connection) : {};
      const dbTarget: DbTarget = db.make();
      const run = await startImgup(dbTarget, { ...kvTarget?.env, ...storageEnv, ...env });
      const client = bucket && connection ? createS3Client(connection) : null;
      return {
        ...run,
        openMultipartUploads: async () => {
          if (!client || !bucket) return 0;
          const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket.options.bucket }));
          return out.Uploads?.length ?? 0;
        },
        flushKv: kvTarget?.name === "redis" ? () => kvTarget.flush() : null,
        stop: async () => {
          await run.stop();
          client?.destroy();
          await bucket?.cleanup();
          await kvTarget?.flush();
        },
      };
    },
  }));
}

/** Every key in the storage. */
export const storageKeys = (run: Running) => listAll(run);

/** Bytes the server has read from proxy upload bodies so far (its own counter). */
export async function proxyBytesRead(run: Running): Promise<number> {
  const metric = await run.imgup.metrics.registry.getSingleMetric("imgup_proxy_upload_bytes_total")?.get();
  return metric?.values[0]?.value ?? 0;
}

/** Rows by status for the owner: what is left of every proxy upload, refused ones included. */
export async function proxyRows(run: Running, ownerId: string): Promise<Record<string, number>> {
  const rows = await run.imgup.database.db
    .selectFrom("images")
    .select(["status"])
    .where("owner_id", "=", ownerId)
    .where("upload_method", "=", "proxy")
    .execute();
  const counts: Record<string, number> = {};
  for (const { status } of rows) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

export type FormPart =
  | { name: string; value: string }
  | { name: string; filename?: string; type: string; body: Iterable<Buffer> };

/** A multipart/form-data body, streamed part by part (a file part's body is never joined). */
export function* formBody(boundary: string, parts: FormPart[]): Generator<Buffer> {
  for (const part of parts) {
    if ("value" in part) {
      yield Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"\r\n\r\n${part.value}\r\n`,
      );
      continue;
    }
    const filename = part.filename === undefined ? "" : `; filename="${part.filename}"`;
    yield Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"${filename}\r\nContent-Type: ${part.type}\r\n\r\n`,
    );
    yield* part.body;
    yield Buffer.from("\r\n");
  }
  yield Buffer.from(`--${boundary}--\r\n`);
}

export interface ProxyAnswer {
  image: ImageJson;
  code?: string;
  [k: string]: unknown;
}

/** POST /v1/images as alice, the way a user's code would (fetch sends Content-Length). */
export async function proxyPost(
  run: Running,
  body: Buffer | FormData | undefined,
  opts: { headers?: Record<string, string>; query?: string; key?: string } = {},
) {
  const res = await fetch(`${run.baseUrl}/v1/images${opts.query ?? ""}`, {
    method: "POST",
    headers: { authorization: `Bearer ${opts.key ?? run.alice}`, ...opts.headers },
    body: Buffer.isBuffer(body) ? new Uint8Array(body) : body,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : {}) as ProxyAnswer };
}
