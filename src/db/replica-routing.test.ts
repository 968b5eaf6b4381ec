import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../config.ts";
import type { ImageRecord } from "../domain/image.ts";
import { MemoryKeyValueStore } from "../kv/memory.ts";
import type { ImagesRepository } from "./images-repository.ts";
import type { Replica } from "./replica-health.ts";
import { PrimaryWindows, type ReadTarget, ReplicaRoutingImagesRepository } from "./replica-routing.ts";

/** A repository whose every answer names where it came from. */
function source(name: string, fail = false): ImagesRepository & { calls: string[] } {
  const calls: string[] = [];
  const record = (id: string) => ({ id, ownerId: "alice", filename: name }) as unknown as ImageRecord;
  const answer = async <T>(call: string, value: T): Promise<T> => {
    calls.push(call);
    if (fail) throw new Error(`${name} is down`);
    return value;
  };
  return {
    calls,
    insert: (image) => answer("insert", record(image.id)),
    insertUnlessDuplicate: (image) =>
      answer("insertUnlessDuplicate", { outcome: "inserted", image: record(image.id) }),
    insertIfAbsent: () => answer("insertIfAbsent", { outcome: "inserted" }),
    findReadyBySha256: () => answer("findReadyBySha256", null),
    findById: (id) => answer("findById", id === "missing" ? null : record(id)),
    findForOwner: (_o, id) => answer("findForOwner", record(id)),
    findByIdempotencyKey: () => answer("findByIdempotencyKey", null),
    listForOwner: () => answer("listForOwner", [record("a")]),
    transition: (id) => answer("transition", record(id)),
    update: (id) => answer("update", record(id)),
    ping: () => answer("ping", undefined),
  };
}

function setup(opts: { healthy?: boolean; replicaFails?: boolean } = {}) {
  const primary = source("primary");
  const replicaRepo = source("replica", opts.replicaFails);
  const replica = { label: "r", db: null } as unknown as Replica;
  const failed: unknown[] = [];
  const counts: ReadTarget[] = [];
  const kv = new MemoryKeyValueStore();
  const windows = new PrimaryWindows(kv, 60_000);
  const router = new ReplicaRoutingImagesRepository(primary, {
    replicas: {
      pick: () => (opts.healthy === false ? null : replica),
      failed: (_r, err) => failed.push(err),
    },
    repoOf: () => replicaRepo,
    windows,
    counted: (t) => counts.push(t),
  });
  return { primary, replicaRepo, router, failed, counts, kv };
}

const newImage = { id: "img1", ownerId: "alice" } as Parameters<ImagesRepository["insert"]>[0];

describe("replica routing", () => {
  it("reads an owner's listing and lookups from a healthy replica", async () => {
    const { router, counts, replicaRepo, primary } = setup();
    expect((await router.listForOwner("alice", { limit: 10 }))[0]?.filename).toBe("replica");
    expect((await router.findForOwner("alice", "x"))?.filename).toBe("replica");
    expect(counts).toEqual(["replica", "replica"]);
    expect(replicaRepo.calls).toEqual(["listForOwner", "findForOwner"]);
    expect(primary.calls).toEqual([]);
  });

  it("keeps writes, transitions and write-deciding lookups on the primary", async () => {
    const { router, replicaRepo } = setup();
    await router.insert(newImage);
    await router.transition("img1", ["pending"], "processing");
    await router.update("img1", "alice", ["ready"], {});
    await router.findById("img1");
    await router.findByIdempotencyKey("alice", "k");
    await router.findReadyBySha256("alice", "h", "public");
    expect(replicaRepo.calls).toEqual([]);
  });

  it("sends an owner's reads to the primary after their write (another instance too, through the KV)", async () => {
    const { router, kv, primary, replicaRepo } = setup();
    await router.insert(newImage);
    expect((await router.listForOwner("alice", { limit: 10 }))[0]?.filename).toBe("primary");
    // Another owner is not affected.
    expect((await router.listForOwner("bob", { limit: 10 }))[0]?.filename).toBe("replica");
    const other = new ReplicaRoutingImagesRepository(source("primary-2"), {
      replicas: { pick: () => ({ label: "r" }) as unknown as Replica, failed: () => undefined },
      repoOf: () => replicaRepo,
      windows: new PrimaryWindows(kv, 60_000),
      counted: () => undefined,
    });
    expect((await other.findForOwner("alice", "img1"))?.filename).toBe("primary-2");
    expect(primary.calls).toContain("listForOwner");
  });

  it("opens the window on a transition, for the owner of the moved row", async () => {
    const { router } = setup();
    await router.transition("img1", ["processing"], "ready");
    expect((await router.findForOwner("alice", "img1"))?.filename).toBe("primary");
  });

  it("delivers from the replica unless the image or its owner has a window; an unknown id asks the primary", async () => {
    const { router, kv } = setup();
    const primaryLookup = async (id: string) =>
      ({ id, ownerId: "alice", filename: "primary" }) as unknown as ImageRecord;
    expect((await router.findForDelivery("img1", primaryLookup))?.filename).toBe("replica");
    expect((await router.findForDelivery("missing", primaryLookup))?.filename).toBe("primary");
    await new PrimaryWindows(kv, 60_000).markImages(["img1"]);
    expect((await router.findForDelivery("img1", primaryLookup))?.filename).toBe("primary");
    expect((await router.findForDelivery("img2", primaryLookup))?.filename).toBe("replica");
  });

  it("falls back to the primary when the replica fails, and reports it", async () => {
    const { router, failed, counts } = setup({ replicaFails: true });
    expect((await router.listForOwner("alice", { limit: 10 }))[0]?.filename).toBe("primary");
    expect((await router.findForDelivery("img1", router.findById.bind(router)))?.filename).toBe("primary");
    expect(failed).toHaveLength(2);
    expect(counts).toEqual(["primary", "primary"]);
  });

  it("reads the primary without a healthy replica", async () => {
    const { router, replicaRepo } = setup({ healthy: false });
    expect((await router.listForOwner("alice", { limit: 10 }))[0]?.filename).toBe("primary");
    expect(replicaRepo.calls).toEqual([]);
  });
});

describe("replica settings", () => {
  const base = { DATABASE_URL: "postgres://p@127.0.0.1:5432/db" };

  it("are off by default and read as a list", () => {
    expect(loadConfig(base).database.replicaUrls).toEqual([]);
    const c = loadConfig({ ...base, DATABASE_REPLICA_URLS: "postgres://r1/db, postgres://r2/db" });
    expect(c.database.replicaUrls).toEqual(["postgres://r1/db", "postgres://r2/db"]);
  });

  it("need a PostgreSQL primary, postgres URLs, and a window longer than lag plus interval", () => {
    expect(() => loadConfig({ DATABASE_REPLICA_URLS: "postgres://r1/db" })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, DATABASE_REPLICA_URLS: "mysql://r1/db" })).toThrow(
      /DATABASE_REPLICA_URLS/,
    );
    expect(() =>
      loadConfig({
        ...base,
        DATABASE_REPLICA_URLS: "postgres://r1/db",
        IMGUP_REPLICA_MAX_LAG_MS: "5000",
        IMGUP_REPLICA_CHECK_INTERVAL_MS: "1000",
        IMGUP_REPLICA_PRIMARY_WINDOW_MS: "5500",
      }),
    ).toThrow(/IMGUP_REPLICA_PRIMARY_WINDOW_MS/);
  });
});
