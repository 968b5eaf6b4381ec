import { setTimeout as delay } from "node:timers/promises";
import { sql } from "kysely";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { DatabaseHandle } from "../../src/db/connect.ts";
import { migrateToLatest } from "../../src/db/connect.ts";
import type { Db } from "../../src/db/schema.ts";
import { databaseTargets } from "../support/databases.ts";

function insertKey(db: Db, keyHash: string) {
  return db
    .insertInto("api_keys")
    .values({ id: `id-${keyHash}`, owner_id: "owner-1", key_hash: keyHash, name: keyHash, scopes: "images" })
    .execute();
}

async function keyHashes(db: Db): Promise<string[]> {
  const rows = await db.selectFrom("api_keys").select("key_hash").orderBy("key_hash").execute();
  return rows.map((r) => r.key_hash);
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe.each(databaseTargets())("database on $name", ({ name, open }) => {
  let handle: DatabaseHandle;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    ({ handle, cleanup } = await open());
  });
  afterAll(async () => {
    await cleanup?.();
  });
  beforeEach(async () => {
    await handle.db.deleteFrom("api_keys").execute();
  });

  it("applies the migrations once", async () => {
    expect(handle.dialect).toBe(name);
    const tables = await sql<{ table_name: string }>`
      select table_name from information_schema.tables where table_schema = current_schema()
    `.execute(handle.db);
    expect(tables.rows.map((r) => r.table_name)).toEqual(
      expect.arrayContaining(["images", "api_keys", "jobs"]),
    );
    expect(await migrateToLatest(handle.db)).toEqual([]);
  });

  it("keeps the committed writes of overlapping transactions and rolls back a failed one", async () => {
    const db = handle.db;
    const events: string[] = [];
    const aInserted = deferred();
    const bInserted = deferred();

    const txA = db.transaction().execute(async (trx) => {
      await insertKey(trx, "a1");
      aInserted.resolve();
      // On a server, hold A open until B has written, so the two really interleave. PGlite has one session
      // and Kysely serializes transactions on it, so B cannot start before A ends: a short pause only.
      await (name === "postgres" ? bInserted.promise : delay(50));
      await insertKey(trx, "a2");
      events.push("a-commit");
    });
    await aInserted.promise;

    const txB = db.transaction().execute(async (trx) => {
      await insertKey(trx, "b1");
      events.push("b-insert");
      bInserted.resolve();
      await delay(20);
      await insertKey(trx, "b2");
    });
    const plain = insertKey(db, "p1");
    const txC = db
      .transaction()
      .execute(async (trx) => {
        await insertKey(trx, "c1");
        throw new Error("boom");
      })
      .then(
        () => "committed",
        (err: Error) => err.message,
      );

    await Promise.all([txA, txB, plain]);
    expect(await txC).toBe("boom");
    expect(await keyHashes(db)).toEqual(["a1", "a2", "b1", "b2", "p1"]);
    expect(events).toEqual(name === "postgres" ? ["b-insert", "a-commit"] : ["a-commit", "b-insert"]);
  });

  it("rolls back a transaction whose statement failed and stays usable", async () => {
    const db = handle.db;
    await insertKey(db, "k1");
    await expect(
      db.transaction().execute(async (trx) => {
        await insertKey(trx, "k2");
        await insertKey(trx, "k1"); // unique key_hash violation
      }),
    ).rejects.toThrow();
    await insertKey(db, "k3");
    expect(await keyHashes(db)).toEqual(["k1", "k3"]);
  });
});
