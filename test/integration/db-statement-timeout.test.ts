import { randomBytes } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DatabaseHandle, dropSchema, migrateToLatest, openDatabase } from "../../src/db/connect.ts";

const url = process.env.DATABASE_URL;

/**
 * The breaker's timeout abandons a slow query on the client side; the pool's statement_timeout makes
 * the server cancel it too, so it does not keep running on (and holding) its pooled connection.
 */
describe.skipIf(!url)("PostgreSQL pool statement_timeout = the query timeout", () => {
  const schema = `t_${randomBytes(6).toString("hex")}`;
  let handle: DatabaseHandle;

  beforeAll(async () => {
    handle = await openDatabase({ url, pgliteDir: "memory://", schema, poolSize: 1, queryTimeoutMs: 300 });
  });
  afterAll(async () => {
    await dropSchema(handle.db, schema);
    await handle.close();
  });

  it("the server cancels a query slower than the timeout, and the only pooled connection is free again", async () => {
    await expect(sql`select pg_sleep(30)`.execute(handle.db)).rejects.toMatchObject({ code: "57014" });
    // Pool of one: this query gets the same connection, with nothing left running on it.
    const r = await sql<{ one: number }>`select 1 as one`.execute(handle.db);
    expect(r.rows[0]?.one).toBe(1);
  });

  // Smoke only: these migrations are fast; that they are exempt (set local) is not shown here.
  it("migrations run on a pool with it, which keeps its bound afterwards", async () => {
    expect((await migrateToLatest(handle.db)).length).toBeGreaterThan(0);
    const shown = await sql<{ statement_timeout: string }>`show statement_timeout`.execute(handle.db);
    expect(shown.rows[0]?.statement_timeout).toBe("300ms");
  });
});
