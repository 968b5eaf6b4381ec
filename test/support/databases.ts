import { randomBytes } from "node:crypto";
import { type DatabaseHandle, dropSchema, migrateToLatest, openDatabase } from "../../src/db/connect.ts";
import { pgliteSeed } from "./test-build.ts";

export interface DatabaseTarget {
  name: "pglite" | "postgres";
  /** A migrated, empty database; cleanup drops whatever open created and closes the connection. */
  open: () => Promise<{ handle: DatabaseHandle; cleanup: () => Promise<void> }>;
}

/**
 * The databases every DB-backed test runs against: embedded PGlite always, a real PostgreSQL server too
 * when DATABASE_URL is set. Use as `describe.each(databaseTargets())("… on $name", ({ open }) => …)`.
 */
export function databaseTargets(): DatabaseTarget[] {
  const targets: DatabaseTarget[] = [
    {
      name: "pglite",
      open: async () => {
        const handle = await openDatabase({
          pgliteDir: "memory://",
          schema: "public",
          poolSize: 1,
          pgliteSeed: await pgliteSeed(),
        });
        try {
          await migrateToLatest(handle.db);
        } catch (err) {
          await handle.close();
          throw err;
        }
        return { handle, cleanup: () => handle.close() };
      },
    },
  ];
  const url = process.env.DATABASE_URL;
  if (url) {
    targets.push({
      name: "postgres",
      open: async () => {
        // A schema per test file keeps parallel test workers (and reruns after a crash) apart.
        const schema = `t_${randomBytes(6).toString("hex")}`;
        // Pool bigger than any test's parallelism, so concurrent claims really overlap on the server.
        const handle = await openDatabase({ url, pgliteDir: "memory://", schema, poolSize: 10 });
        const cleanup = async () => {
          try {
            await dropSchema(handle.db, schema);
          } finally {
            await handle.close();
          }
        };
        try {
          await migrateToLatest(handle.db);
        } catch (err) {
          await cleanup();
          throw err;
        }
        return { handle, cleanup };
      },
    });
  }
  return targets;
}
