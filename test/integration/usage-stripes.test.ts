import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatabaseHandle } from "../../src/db/connect.ts";
import { KyselyImagesRepository } from "../../src/db/images-repository.ts";
import { USAGE_STRIPES } from "../../src/db/owner-usage-stripes.ts";
import type { Db } from "../../src/db/schema.ts";
import { KyselyUsageRepository } from "../../src/db/usage-repository.ts";
import { databaseTargets } from "../support/databases.ts";
import { newImageRow } from "../support/new-image.ts";

const newImage = (ownerId: string, declaredSize: number) => newImageRow(ownerId, { declaredSize });

const stripeOf = async (db: Db) =>
  (await sql<{ s: number }>`select imgup_usage_stripe() as s`.execute(db)).rows[0]?.s as number;

/**
 * One owner's usage counters are striped (migration 011) so that the owner's concurrent intents
 * on different connections do not queue on one row lock. Needs several server sessions: PGlite has
 * one, so only the PostgreSQL target runs here.
 */
const postgres = databaseTargets().filter((t) => t.name === "postgres");
describe.skipIf(postgres.length === 0 && process.env.CI !== "true")("usage stripes on PostgreSQL", () => {
  let handle: DatabaseHandle;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const target = postgres[0];
    if (!target) throw new Error("CI needs DATABASE_URL: the usage stripes test runs on PostgreSQL");
    ({ handle, cleanup } = await target.open());
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it("an owner's insert on one connection does not wait for another's open transaction", async () => {
    const owner = "owner-stripes-1";
    let releaseA!: () => void;
    const holdA = new Promise<void>((r) => {
      releaseA = r;
    });
    let aInserted!: (stripe: number) => void;
    const aStripe = new Promise<number>((r) => {
      aInserted = r;
    });
    // A: inserts (its trigger writes its stripe) and keeps the transaction open.
    const txA = handle.db.transaction().execute(async (trx) => {
      await new KyselyImagesRepository(trx).insert(newImage(owner, 100));
      aInserted(await stripeOf(trx));
      await holdA;
    });
    const stripeA = await aStripe;
    // B: on a connection of another stripe (pool connections are held until one is found); a
    // lock wait there would be the old one-row counter's, so it fails fast instead of queuing.
    const held: Array<() => void> = [];
    const inserted = await new Promise<boolean>((resolve, reject) => {
      const tryOne = () =>
        handle.db
          .connection()
          .execute(async (conn) => {
            if ((await stripeOf(conn)) === stripeA) {
              if (held.length >= 8) throw new Error(`nine pool connections all on stripe ${stripeA}`);
              await new Promise<void>((release) => {
                held.push(release);
                tryOne();
              });
              return;
            }
            await sql`set lock_timeout = '10s'`.execute(conn);
            await new KyselyImagesRepository(conn).insert(newImage(owner, 200));
            await sql`set lock_timeout = 0`.execute(conn);
            resolve(true);
          })
          .catch(reject);
      tryOne();
    }).finally(() => {
      for (const release of held) release();
      releaseA();
    });
    expect(inserted).toBe(true);
    await txA;
    const usage = await new KyselyUsageRepository(handle.db).usage(owner);
    expect(usage).toMatchObject({ reservedBytes: 300, pendingImages: 2 });
  });

  it("a quota-limited insert sums every stripe under one lock, so parallel intents never overshoot", async () => {
    const owner = "owner-stripes-2";
    const repo = new KyselyImagesRepository(handle.db);
    // Unlimited inserts first, spread over the pool's connections, hence over several stripes.
    await Promise.all(Array.from({ length: 10 }, () => repo.insert(newImage(owner, 1000))));
    const stripes = await handle.db
      .selectFrom("owner_usage")
      .select("stripe")
      .where("owner_id", "=", owner)
      .execute();
    expect(stripes.length).toBeGreaterThan(1);
    // 10,000 reserved; room for exactly 5 more of 1,000 under a 15,000-byte limit.
    const limits = { maxBytes: 15_000, maxImages: null };
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, () => repo.insert(newImage(owner, 1000), limits)),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(5);
    const usage = await new KyselyUsageRepository(handle.db).usage(owner);
    expect(usage).toMatchObject({ reservedBytes: 15_000, pendingImages: 15 });
    const all = await handle.db
      .selectFrom("owner_usage")
      .select("stripe")
      .where("owner_id", "=", owner)
      .execute();
    expect(all).toHaveLength(USAGE_STRIPES);
  });
});
