/**
 * The machine's PostgreSQL and Redis the HTTP benchmarks run against: DATABASE_URL and REDIS_URL
 * when set, otherwise the local services this repository's tests use. Every run gets a schema and
 * a key prefix of its own, removed afterwards.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import pg from "pg";
import { deleteByPrefix } from "../../test/support/kv-targets.ts";

export interface Backends {
  databaseUrl: string;
  redisUrl: string;
}

export function backendUrls(): Backends {
  return {
    databaseUrl: process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test",
    redisUrl: process.env.REDIS_URL || "redis://127.0.0.1:6379",
  };
}

/** Fails early, naming the service, rather than after a server child has timed out. */
export async function checkBackends(b: Backends): Promise<void> {
  const client = new pg.Client({ connectionString: b.databaseUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query("select 1");
  } catch (err) {
    throw new Error(`PostgreSQL at ${redact(b.databaseUrl)} is not reachable: ${(err as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
  const redis = new Redis(b.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000 });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new Error(`Redis at ${redact(b.redisUrl)} is not reachable: ${(err as Error).message}`);
  } finally {
    redis.disconnect();
  }
}

/** A schema name and a Redis key prefix nobody else uses. */
export function freshNamespace(label: string): { schema: string; keyPrefix: string } {
  const hex = randomBytes(4).toString("hex");
  return { schema: `bench_${label}_${hex}`, keyPrefix: `bench-${label}-${hex}:` };
}

export async function withDatabase<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function dropNamespace(b: Backends, ns: { schema: string; keyPrefix: string }): Promise<void> {
  await withDatabase(b.databaseUrl, (c) => c.query(`drop schema if exists "${ns.schema}" cascade`));
  await deleteByPrefix(b.redisUrl, ns.keyPrefix);
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//…@");
}
