import { mkdirSync } from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { Kysely, PGliteDialect, PostgresDialect, sql } from "kysely";
// kysely 0.29 moved the migrator out of the root entry point.
import { Migrator } from "kysely/migration";
import pg from "pg";
import { acquireEmbeddedLock } from "./embedded-lock.ts";
import * as m001 from "./migrations/001-initial.ts";
import * as m002 from "./migrations/002-multipart-part-size.ts";
import * as m003 from "./migrations/003-maintenance-indexes.ts";
import * as m004 from "./migrations/004-placeholder.ts";
import * as m005 from "./migrations/005-job-groups.ts";
import type { Database, Db } from "./schema.ts";

export interface DatabaseOptions {
  /** postgres://… for a real server; undefined for embedded PGlite. */
  url?: string;
  /** PGlite data directory, or "memory://" for a throwaway database. */
  pgliteDir: string;
  /** Postgres schema to use (created if missing); lets tests and tenants share one server. */
  schema: string;
  poolSize: number;
  connectTimeoutMs?: number;
}

export interface DatabaseHandle {
  db: Db;
  dialect: "postgres" | "pglite";
  close(): Promise<void>;
}

const INT8_OID = 20;

export async function openDatabase(opts: DatabaseOptions): Promise<DatabaseHandle> {
  if (opts.url) {
    const schema = quoteIdent(opts.schema);
    const pool = new pg.Pool({
      connectionString: opts.url,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
      max: opts.poolSize,
      // Sizes and counts fit in a double; strings everywhere would leak into the domain.
      types: {
        getTypeParser: ((oid: number, format?: "text" | "binary") =>
          oid === INT8_OID
            ? (v: string) => Number(v)
            : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
      },
      options: `-c search_path=${schema}`,
    });
    // A client whose server went away emits "error"; the query in flight fails on its own, and an
    // unhandled event (idle, or checked out between two queries) would kill the whole process.
    pool.on("error", () => undefined);
    pool.on("connect", (client) => client.on("error", () => undefined));
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    await sql`create schema if not exists ${sql.raw(schema)}`.execute(db);
    return { db, dialect: "postgres", close: () => db.destroy() };
  }
  let lock: { release(): void } | null = null;
  if (opts.pgliteDir !== "memory://") {
    mkdirSync(opts.pgliteDir, { recursive: true, mode: 0o700 });
    lock = acquireEmbeddedLock(
      path.join(path.dirname(opts.pgliteDir), `${path.basename(opts.pgliteDir)}.lock`),
    );
  }
  let pglite: PGlite;
  try {
    pglite = new PGlite(opts.pgliteDir);
    await pglite.waitReady;
  } catch (err) {
    lock?.release();
    throw err;
  }
  // Kysely's runtime driver holds one connection mutex, so overlapping transactions on the single
  // PGlite session are serialized instead of interleaving (see test/integration/database.test.ts).
  const db = new Kysely<Database>({ dialect: new PGliteDialect({ pglite }) });
  if (opts.schema !== "public") {
    await sql`create schema if not exists ${sql.raw(quoteIdent(opts.schema))}`.execute(db);
    await sql`set search_path to ${sql.raw(quoteIdent(opts.schema))}`.execute(db);
  }
  return {
    db,
    dialect: "pglite",
    close: async () => {
      try {
        await db.destroy();
      } finally {
        lock?.release();
      }
    },
  };
}

export async function migrateToLatest(db: Db): Promise<string[]> {
  // Without an explicit schema Kysely's "does the migration table exist" check matches a table of that
  // name in any schema, so a second schema on the same server would never get its bookkeeping tables.
  const current = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  const migrator = new Migrator({
    db,
    provider: {
      getMigrations: async () => ({
        "001-initial": m001,
        "002-multipart-part-size": m002,
        "003-maintenance-indexes": m003,
        "004-placeholder": m004,
        "005-job-groups": m005,
      }),
    },
    migrationTableSchema: current.rows[0]?.schema,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}

/** Drops a schema with everything in it (tests clean up after themselves). */
export async function dropSchema(db: Db, schema: string): Promise<void> {
  await sql`drop schema if exists ${sql.raw(quoteIdent(schema))} cascade`.execute(db);
}

function quoteIdent(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid schema name: ${name}`);
  return `"${name}"`;
}
