import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { purge } from "../cli-maintenance.ts";
import type { LapsedPendingRow, OwnerRow } from "../db/maintenance-repository.ts";
import { newImageId } from "../domain/ids.ts";
import type { ImageStatus } from "../domain/image.ts";
import { imagePrefix, originalKey, uploadKey, variantKey } from "../domain/keys.ts";
import { MemoryKeyValueStore } from "../kv/memory.ts";
import { LocalObjectStore } from "../storage/local.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import type { Maintenance } from "./maintenance.ts";
import { OrphanSweep, type SweepProgress } from "./orphan-sweep.ts";
import { OwnerPurgeIncompleteError, OwnerPurgeService, type PurgeProgress } from "./owner-purge.ts";
import { type ReconcileProgress, Reconciler } from "./reconciler.ts";

const logger = pino({ level: "silent" });
const signal = new AbortController().signal;

/** Every field of every report is at least what it was in the report before. */
function expectGrowing<T extends object>(reports: T[]): void {
  for (let i = 1; i < reports.length; i++) {
    for (const [field, value] of Object.entries(reports[i] as object)) {
      expect(value, `${field} in report ${i}`).toBeGreaterThanOrEqual(
        (reports[i - 1] as Record<string, number>)[field] ?? 0,
      );
    }
  }
}

describe("progress of the long maintenance runs (in-memory rows, objects on a local disk)", () => {
  let root: string;
  let store: LocalObjectStore;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), "imgup-progress-"));
    store = new LocalObjectStore({ root, publicBaseUrl: "http://x", secret: "s", maxObjectBytes: 1e6 });
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const put = (key: string) => store.put(key, Buffer.from("x"), { contentType: "image/jpeg" });

  it("sweep: reports listed objects, then each delete, with counts that only grow", async () => {
    const live = newImageId();
    await put(originalKey(live));
    const orphans = Array.from({ length: 6 }, () => newImageId());
    for (const id of orphans) await put(uploadKey(id));
    const statuses = new Map<string, ImageStatus>([[live, "ready"]]);
    const sweep = new OrphanSweep({
      repo: {
        statuses: async (ids) =>
          new Map(ids.flatMap((id) => (statuses.has(id) ? [[id, statuses.get(id) as ImageStatus]] : []))),
      },
      store,
      kv: new MemoryKeyValueStore(),
      logger,
      settings: { graceMs: 0, concurrency: 2 },
      now: () => Date.now() + 3600_000,
    });
    const reports: SweepProgress[] = [];
    const report = await sweep.run({ dryRun: false, signal, onProgress: (p) => reports.push({ ...p }) });
    expect(report).toMatchObject({ listed: 7, live: 1, withoutRow: 6, deleted: 6 });
    expectGrowing(reports);
    // One report once the page is listed, then one per delete.
    expect(reports[0]).toEqual({ listed: 7, orphans: 6, deleted: 0, errors: 0 });
    expect(reports.map((r) => r.deleted)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  /**
   * Five ready images of alice's (an original and a variant each) and the purge service over them;
   * deleting the objects of the image at `failing` fails.
   */
  async function purgeSetup(failing?: number) {
    const rows = new Map<string, OwnerRow & { ownerId: string }>();
    const ids = Array.from({ length: 5 }, (_, i) => newImageId(Date.now() + i)).sort();
    for (const id of ids) {
      rows.set(id, {
        id,
        ownerId: "alice",
        status: "ready",
        objectKey: originalKey(id),
        multipartUploadId: null,
      });
      await put(originalKey(id));
      await put(variantKey(id, "w_100", "webp"));
    }
    const objectStore: ObjectStore = Object.create(store);
    objectStore.deletePrefix = async (prefix, sig) => {
      if (failing !== undefined && prefix === imagePrefix(ids[failing] as string))
        throw new Error("storage said no");
      return store.deletePrefix(prefix, sig);
    };
    const mine = () =>
      [...rows.values()].filter((r) => r.ownerId === "alice").sort((a, b) => (a.id < b.id ? -1 : 1));
    const purge = new OwnerPurgeService({
      repo: {
        countOwner: async () => mine().length,
        markOwnerDeleted: async () => 0,
        findForDeletion: async (id) => rows.get(id) ?? null,
        ownerRows: async (_owner, after, limit) =>
          mine()
            .filter((r) => after === null || r.id > after)
            .slice(0, limit),
        markDeleted: async (marked) => {
          for (const id of marked)
            rows.set(id, { ...(rows.get(id) as OwnerRow & { ownerId: string }), status: "deleted" });
          return marked.length;
        },
        removeDeleted: async (gone) => gone.filter((id) => rows.delete(id)).length,
      },
      store: objectStore,
      jobs: { requeue: async () => ({ id: "job" }) },
      logger,
      // Two batches of at most 3.
      settings: { batchSize: 3, concurrency: 2 },
    });
    return { rows, ids, purge };
  }

  it("purge: the job is queued before any row is marked, so a crash while marking leaves it to the job", async () => {
    const queued: string[] = [];
    const purge = new OwnerPurgeService({
      repo: {
        countOwner: async () => 3,
        markOwnerDeleted: async () => {
          throw new Error("the process dies while marking");
        },
        findForDeletion: async () => null,
        ownerRows: async () => [],
        markDeleted: async () => 0,
        removeDeleted: async () => 0,
      },
      store,
      jobs: {
        requeue: async (job) => {
          queued.push(job.key);
          return { id: "job" };
        },
      },
      logger,
    });
    await expect(purge.purge("alice")).rejects.toThrow("dies while marking");
    expect(queued).toEqual(["purge-owner:alice"]);
  });

  it("purge: reports each image whose objects are gone, then the rows removed, with counts that only grow", async () => {
    const { rows, purge } = await purgeSetup();
    const reports: PurgeProgress[] = [];
    const result = await purge.purgeObjects("alice", signal, (p) => reports.push({ ...p }));
    expect(result).toEqual({ removed: 5, failed: 0 });
    expect(rows.size).toBe(0);
    expect((await store.list("")).objects).toEqual([]);
    expectGrowing(reports);
    // Per image: 1, 2, 3, then batch one's rows; 4, 5, then batch two's.
    expect(reports.map((r) => [r.objectsRemoved, r.removed])).toEqual([
      [1, 0],
      [2, 0],
      [3, 0],
      [3, 3],
      [4, 3],
      [5, 3],
      [5, 5],
    ]);
  });

  it("purge: an image whose objects stay is counted as failed, and the run ends with the counts in its error", async () => {
    const { rows, ids, purge } = await purgeSetup(1);
    const reports: PurgeProgress[] = [];
    const err = await purge.purgeObjects("alice", signal, (p) => reports.push({ ...p })).catch((e) => e);
    expect(err).toBeInstanceOf(OwnerPurgeIncompleteError);
    expect(err).toMatchObject({ ownerId: "alice", removed: 4, failed: 1 });
    expect(reports.at(-1)).toEqual({ objectsRemoved: 4, removed: 4, failed: 1 });
    expect([...rows.keys()]).toEqual([ids[1]]);
  });

  it("imgup purge: failures are in the report and the exit code, not an error", async () => {
    const { purge: ownerPurge } = await purgeSetup(3);
    const lines: string[] = [];
    // The command reads nothing of Maintenance but the purge service.
    const m = { ownerPurge } as unknown as Maintenance;
    const code = await purge(m, { ownerId: "alice", dryRun: false }, (l) => lines.push(l));
    expect(code).toBe(1);
    expect(lines).toEqual([
      "purge: owner alice had 5 images; 0 hidden at once",
      "purge: 4 images removed with their objects",
      "purge: 1 could not be removed (see the log); run purge again",
    ]);
  });

  it("reconcile: reports each lapsed image checked, with what was queued and expired so far", async () => {
    const ids = Array.from({ length: 4 }, (_, i) => newImageId(Date.now() + i)).sort();
    const pending: LapsedPendingRow[] = ids.map((id) => ({
      id,
      ownerId: "alice",
      objectKey: originalKey(id),
      multipartUploadId: null,
      uploadExpiresAt: new Date(0),
      job: null,
    }));
    // The first two uploads arrived (their events were lost); the other two never did.
    for (const id of ids.slice(0, 2)) await put(uploadKey(id));
    const enqueued: string[] = [];
    const reconciler = new Reconciler({
      repo: {
        lapsedPending: async (_before, limit, after) =>
          pending.filter((r) => !after || r.id > after.id).slice(0, limit),
        stuckProcessing: async () => [],
        expire: async () => true,
      },
      store,
      jobs: {
        enqueue: async (job) => {
          enqueued.push(job.key);
          return { id: job.key, created: true };
        },
        requeue: async (job) => ({ id: job.key }),
      },
      logger,
      // One at a time, two per batch: the order of the reports is the rows' order.
      settings: { pendingGraceMs: 0, processingGraceMs: 0, leaseMs: 0, batchSize: 2, concurrency: 1 },
    });
    const reports: ReconcileProgress[] = [];
    const report = await reconciler.run({ dryRun: false, signal, onProgress: (p) => reports.push({ ...p }) });
    expect(report).toMatchObject({ pendingChecked: 4, processingQueued: 2, expired: 2, errors: 0 });
    expect(enqueued).toHaveLength(2);
    expectGrowing(reports);
    expect(reports).toEqual([
      { checked: 1, queued: 1, expired: 0, errors: 0 },
      { checked: 2, queued: 2, expired: 0, errors: 0 },
      { checked: 3, queued: 2, expired: 1, errors: 0 },
      { checked: 4, queued: 2, expired: 2, errors: 0 },
    ]);
  });
});
