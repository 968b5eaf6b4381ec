import { mkdirSync } from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { Kysely, PGliteDialect, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { BackendError, checkBackendUrl, classifyBackendError } from "../backend-errors.ts";
import { acquireEmbeddedLock } from "./embedded-lock.ts";
import type { Database, Db } from "./schema.ts";

// Callers (and tests) keep importing the migrator from here.
export { assertSchemaCurrent, migrateToLatest, SchemaVersionError, schemaStatus } from "./migrations.ts";

export interface DatabaseOptions {
  /** postgres://… for a real server; undefined for embedded PGlite. */
  url?: string;
  /** PGlite data directory, or "memory://" for a throwaway database. */
  pgliteDir: string;
  /** Postgres schema to use (created if missing); lets tests and tenants share one server. */
  schema: string;
  poolSize: number;
  connectTimeoutMs?: number;
  /**
   * The breaker's query timeout, also the server-side statement_timeout: a query the breaker gave up
   * on is cancelled by the server instead of holding its pooled connection.
   */
  queryTimeoutMs?: number;
  /**
   * A PGlite data directory dump (`dumpDataDir`) a memory:// database starts from. Loading one takes
   * a third of an initdb: the test suite opens hundreds of migrated databases from one template.
   */
  pgliteSeed?: Blob;
}

export interface DatabaseHandle {
  db: Db;
  dialect: "postgres" | "pglite";
  close(): Promise<void>;
}

const INT8_OID = 20;

export async function openDatabase(opts: DatabaseOptions): Promise<DatabaseHandle> {
  if (opts.url) {
    const badUrl = checkBackendUrl("database", opts.url);
    if (badUrl) throw new BackendError(badUrl);
    const schema = quoteIdent(opts.schema);
    const pool = new pg.Pool({
      connectionString: opts.url,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
      max: opts.poolSize,
      ...(opts.queryTimeoutMs ? { statement_timeout: opts.queryTimeoutMs } : {}),
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
    try {
      // The first connection: what goes wrong here is the operator's to fix, so it names the setting.
      await sql`create schema if not exists ${sql.raw(schema)}`.execute(db);
    } catch (err) {
      await db.destroy().catch(() => undefined);
      throw new BackendError(classifyBackendError("database", err, { url: opts.url }), { cause: err });
    }
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
    pglite =
      opts.pgliteSeed && opts.pgliteDir === "memory://"
        ? new PGlite(opts.pgliteDir, { loadDataDir: opts.pgliteSeed })
        : new PGlite(opts.pgliteDir);
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

/** Drops a schema with everything in it (tests clean up after themselves). */
export async function dropSchema(db: Db, schema: string): Promise<void> {
  await sql`drop schema if exists ${sql.raw(quoteIdent(schema))} cascade`.execute(db);
}

function quoteIdent(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid schema name: ${name}`);
  return `"${name}"`;
}
