import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatabaseHandle } from "../../src/db/connect.ts";
import { EventsRepository, toStoredEvent } from "../../src/db/events-repository.ts";
import { KyselyImagesRepository } from "../../src/db/images-repository.ts";
import { MaintenanceRepository } from "../../src/db/maintenance-repository.ts";
import { writeOutboxEvent } from "../../src/db/outbox.ts";
import { START_POSITION } from "../../src/domain/webhook-events.ts";
import { databaseTargets } from "../support/databases.ts";
import { eventually } from "../support/harness.ts";
import { newImageRow } from "../support/new-image.ts";

const newImage = (ownerId: string) => newImageRow(ownerId, { declaredSize: 10 });

/** The outbox is written with the state change, never apart from it. */
describe.each(databaseTargets())("outbox on $name", ({ name, open }) => {
  let handle: DatabaseHandle;
  let cleanup: () => Promise<void>;
  let images: KyselyImagesRepository;
  let events: EventsRepository;

  beforeAll(async () => {
    ({ handle, cleanup } = await open());
    images = new KyselyImagesRepository(handle.db);
    events = new EventsRepository(handle.db);
  });
  afterAll(async () => cleanup?.());

  /**
   * What was written for an image, read from the table: the readers' horizon (the oldest running
   * transaction on the server, which another test file may hold) is the gap test's subject, not this.
   */
  const eventsOf = async (imageId: string) =>
    (
      await handle.db
        .selectFrom("outbox_events")
        .selectAll()
        .where("image_id", "=", imageId)
        .orderBy("txid")
        .orderBy("seq")
        .execute()
    ).map(toStoredEvent);

  it("writes image.ready with the row as the transition left it, and nothing for internal states", async () => {
    const img = await images.insert(newImage("o1"));
    await images.transition(img.id, ["pending"], "processing");
    expect(await eventsOf(img.id)).toEqual([]);
    const ready = await images.transition(img.id, ["processing"], "ready", { width: 7, readyAt: new Date() });
    expect(ready?.status).toBe("ready");
    const [event, ...rest] = await eventsOf(img.id);
    expect(rest).toEqual([]);
    expect(event).toMatchObject({ type: "image.ready", ownerId: "o1", imageId: img.id });
    expect(event?.id).toMatch(/^evt_[0-9a-f]{32}$/);
    const snap = event?.image;
    expect(snap).toMatchObject({ id: img.id, status: "ready", width: 7, ownerId: "o1" });
    expect(snap?.readyAt?.getTime()).toBe(ready?.readyAt?.getTime());
  });

  it("writes nothing when the conditional update did not apply, and the override type when asked", async () => {
    const img = await images.insert(newImage("o1"));
    expect(await images.transition(img.id, ["processing"], "ready")).toBeNull();
    expect(await eventsOf(img.id)).toEqual([]);
    await images.transition(
      img.id,
      ["pending"],
      "deleted",
      { deletedAt: new Date() },
      { event: "image.expired" },
    );
    expect((await eventsOf(img.id)).map((e) => e.type)).toEqual(["image.expired"]);
  });

  it("rolls the transition back when its event cannot be written", async () => {
    const img = await images.insert(newImage("o1"));
    await images.transition(img.id, ["pending"], "processing");
    await sql`alter table outbox_events add constraint no_rejects check (type <> 'image.rejected')`.execute(
      handle.db,
    );
    try {
      await expect(images.transition(img.id, ["processing"], "rejected")).rejects.toThrow();
    } finally {
      await sql`alter table outbox_events drop constraint no_rejects`.execute(handle.db);
    }
    expect((await images.findById(img.id))?.status).toBe("processing");
    expect(await eventsOf(img.id)).toEqual([]);
  });

  it("maintenance updates emit too: expire, owner purge marks, batch marks", async () => {
    const repo = new MaintenanceRepository(handle.db, "process:");
    const a = await images.insert(newImage("purged"));
    const b = await images.insert(newImage("purged"));
    const c = await images.insert(newImage("o2"));
    const d = await images.insert(newImage("o2"));
    expect(await repo.expire(a.id)).toBe(true);
    expect(await repo.expire(a.id)).toBe(false);
    expect(await repo.markOwnerDeleted("purged", 10)).toBe(2);
    expect(await repo.markDeleted([c.id, d.id])).toBe(2);
    expect(await repo.markDeleted([c.id])).toBe(0);
    expect((await eventsOf(a.id)).map((e) => e.type)).toEqual(["image.expired", "image.deleted"]);
    expect((await eventsOf(b.id)).map((e) => e.type)).toEqual(["image.deleted"]);
    expect((await eventsOf(c.id)).map((e) => e.type)).toEqual(["image.deleted"]);
    expect((await eventsOf(d.id)).map((e) => e.image.status)).toEqual(["deleted"]);
  });

  it("writeOutboxEvent commits and rolls back with the caller's transaction", async () => {
    const img = await images.insert(newImage("o3"));
    await expect(
      handle.db.transaction().execute(async (trx) => {
        const row = await trx
          .selectFrom("images")
          .selectAll()
          .where("id", "=", img.id)
          .executeTakeFirstOrThrow();
        await writeOutboxEvent(trx, "image.claimed", row);
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");
    expect(await eventsOf(img.id)).toEqual([]);
    await handle.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom("images")
        .selectAll()
        .where("id", "=", img.id)
        .executeTakeFirstOrThrow();
      await writeOutboxEvent(trx, "image.claimed", row);
    });
    expect((await eventsOf(img.id)).map((e) => e.type)).toEqual(["image.claimed"]);
  });

  it.runIf(name === "postgres")(
    "a reader never passes an event whose transaction is still running",
    async () => {
      // Two owners: one owner's changes queue on its usage row (quotas), which would block the
      // second transition behind the open transaction instead of committing after it began.
      const first = await images.insert(newImage("o4"));
      const second = await images.insert(newImage("o5"));
      const ours = async () =>
        (await events.readAfter(START_POSITION, 10_000, null)).filter((e) =>
          [first.id, second.id].includes(e.imageId),
        );
      expect(await ours()).toEqual([]);
      let release!: () => void;
      const held = new Promise<void>((r) => {
        release = r;
      });
      let written!: () => void;
      const wroteFirst = new Promise<void>((r) => {
        written = r;
      });
      const slow = handle.db.transaction().execute(async (trx) => {
        await new KyselyImagesRepository(trx).transition(first.id, ["pending"], "deleted");
        written();
        await held;
      });
      try {
        await wroteFirst;
        // Committed after the slow one began: a later position, and hidden until the slow one ends.
        await images.transition(second.id, ["pending"], "deleted");
        expect(await ours()).toEqual([]);
      } finally {
        release();
        await slow;
      }
      // Another test file's transaction may still hold the horizon back for a moment.
      await eventually(async () => (await ours()).length === 2);
      expect((await ours()).map((e) => e.imageId)).toEqual([first.id, second.id]);
    },
  );
});
