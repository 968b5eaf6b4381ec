import { sql } from "kysely";
// kysely 0.29 moved the migrator out of the root entry point.
import { type Migration, Migrator } from "kysely/migration";
import * as m001 from "./migrations/001-initial.ts";
import * as m002 from "./migrations/002-multipart-part-size.ts";
import * as m003 from "./migrations/003-maintenance-indexes.ts";
import * as m004 from "./migrations/004-placeholder.ts";
import * as m005 from "./migrations/005-job-groups.ts";
import * as m006 from "./migrations/006-outbox.ts";
import * as m007 from "./migrations/007-claims-and-profiles.ts";
import * as m008 from "./migrations/008-quotas.ts";
import * as m010 from "./migrations/010-moderation.ts";
import * as m011 from "./migrations/011-usage-stripes.ts";
import type { Db } from "./schema.ts";

/** Every migration this code knows, in order. Names are compared as strings by Kysely. */
const MIGRATIONS: Record<string, Migration> = {
  "001-initial": m001,
  "002-multipart-part-size": m002,
  "003-maintenance-indexes": m003,
  "004-placeholder": m004,
  "005-job-groups": m005,
  "008-quotas": m008,
  "006-outbox": m006,
  "007-claims-and-profiles": m007,
  "010-moderation": m010,
  "011-usage-stripes": m011,
};

/**
 * The pool's statement_timeout (the breaker's query timeout) is for requests; building an index on a
 * large table may take longer. Each migration runs in the migrator's transaction, so `set local`
 * lifts the bound for that transaction only.
 */
const UNBOUNDED_MIGRATIONS: Record<string, Migration> = Object.fromEntries(
  Object.entries(MIGRATIONS).map(([name, m]) => [
    name,
    {
      ...m,
      up: async (db) => {
        await sql`set local statement_timeout = 0`.execute(db);
        await m.up(db);
      },
    },
  ]),
);

/** Kysely's bookkeeping table, in the schema the connection's search_path names. */
const MIGRATION_TABLE = "kysely_migration";

export interface SchemaStatus {
  /** Known to this code and applied. */
  applied: string[];
  /** Known to this code, not applied yet: `imgup migrate` applies them. */
  pending: string[];
  /** Applied by a newer imgup: this code does not know them. */
  unknown: string[];
}

/** The database schema is not the one this code was written for; the message says what to do. */
export class SchemaVersionError extends Error {
  constructor(
    message: string,
    readonly status: SchemaStatus,
  ) {
    super(message);
    this.name = "SchemaVersionError";
  }
}

async function currentSchema(db: Db): Promise<string | undefined> {
  const current = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  return current.rows[0]?.schema;
}

/** Applies the pending migrations; the names applied (empty when already up to date). */
export async function migrateToLatest(db: Db): Promise<string[]> {
  // Without an explicit schema Kysely's "does the migration table exist" check matches a table of that
  // name in any schema, so a second schema on the same server would never get its bookkeeping tables.
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => UNBOUNDED_MIGRATIONS },
    migrationTableSchema: await currentSchema(db),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}

/** What is applied, pending and unknown, read without writing anything. */
export async function schemaStatus(db: Db): Promise<SchemaStatus> {
  const schema = (await currentSchema(db)) ?? "public";
  const exists = await sql<{ n: number }>`
    select count(*)::int as n from information_schema.tables
    where table_schema = ${schema} and table_name = ${MIGRATION_TABLE}`.execute(db);
  const done =
    (exists.rows[0]?.n ?? 0) > 0
      ? (
          await sql<{ name: string }>`select name from ${sql.table(`${schema}.${MIGRATION_TABLE}`)}`.execute(
            db,
          )
        ).rows.map((r) => r.name)
      : [];
  const known = Object.keys(MIGRATIONS);
  return {
    applied: known.filter((n) => done.includes(n)),
    pending: known.filter((n) => !done.includes(n)),
    unknown: done.filter((n) => !known.includes(n)).sort(),
  };
}

/**
 * Refuses a schema this code cannot run on. Behind (or empty): `imgup migrate` first. Newer: a newer
 * imgup migrated it, and this older one refuses to start on it (see docs/operations.md, "Upgrading").
 */
export async function assertSchemaCurrent(db: Db): Promise<SchemaStatus> {
  const status = await schemaStatus(db);
  if (status.unknown.length > 0) {
    throw new SchemaVersionError(
      `the database schema is newer than this imgup: it has migrations this version does not know ` +
        `(${status.unknown.join(", ")}). A newer imgup migrated it; run that version here.`,
      status,
    );
  }
  if (status.pending.length > 0) {
    const what =
      status.applied.length === 0
        ? "the database has no imgup schema yet"
        : `the database schema is behind this imgup (${status.pending.length} pending: ${status.pending.join(", ")})`;
    throw new SchemaVersionError(
      `${what}: run \`imgup migrate\` first (or set IMGUP_AUTO_MIGRATE=true to migrate at start)`,
      status,
    );
  }
  return status;
}
