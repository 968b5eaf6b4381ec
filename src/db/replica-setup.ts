import type { Logger } from "pino";
import { Counter, Gauge, type Registry } from "prom-client";
import type { Config } from "../config.ts";
import type { ImageRecord } from "../domain/image.ts";
import type { KeyValueStore } from "../kv/kv.ts";
import type { RecordInvalidator } from "../services/image-record-cache.ts";
import type { ClaimsRepository } from "./claims-repository.ts";
import { type ImagesRepository, KyselyImagesRepository } from "./images-repository.ts";
import { type Replica, ReplicaSet } from "./replica-health.ts";
import { PrimaryWindows, ReplicaRoutingImagesRepository, windowingInvalidator } from "./replica-routing.ts";

type Lookup = (id: string) => Promise<ImageRecord | null>;

/** Read replicas of one imgup process: built only when DATABASE_REPLICA_URLS names some. */
export interface ReplicaReads {
  set: ReplicaSet;
  windows: PrimaryWindows;
  /** The images repository that routes lag-tolerant reads (wrap the primary's, under the breaker). */
  route(primary: ImagesRepository): ImagesRepository;
  /** The delivery lookup: a replica's record, or `primary`'s when the router says so. */
  delivery(primary: Lookup): Lookup;
  start(): Promise<void>;
  close(): Promise<void>;
}

export function createReplicaReads(
  db: Config["database"],
  kv: KeyValueStore,
  registry: Registry,
  log: Logger,
): ReplicaReads | null {
  if (db.replicaUrls.length === 0) return null;
  const reads = new Counter({
    name: "imgup_db_replica_reads_total",
    help: "Lag-tolerant image reads (owner listings and lookups, delivery lookups) by where they were served",
    labelNames: ["target"],
    registers: [registry],
  });
  const healthy = new Gauge({
    name: "imgup_db_replica_healthy",
    help: "1 when the read replica answers and lags within IMGUP_REPLICA_MAX_LAG_MS, else 0",
    labelNames: ["replica"],
    registers: [registry],
  });
  for (const target of ["replica", "primary"]) reads.inc({ target }, 0);
  const set = new ReplicaSet(
    {
      primaryUrl: db.url as string,
      urls: db.replicaUrls,
      schema: db.schema,
      poolSize: db.poolSize,
      connectTimeoutMs: db.connectTimeoutMs,
      queryTimeoutMs: db.replicaQueryTimeoutMs,
      maxLagMs: db.replicaMaxLagMs,
      checkIntervalMs: db.replicaCheckIntervalMs,
      onHealth: (replica, up) => healthy.set({ replica }, up ? 1 : 0),
    },
    log,
  );
  const windows = new PrimaryWindows(kv, db.replicaPrimaryWindowMs);
  const repos = new Map<Replica, ImagesRepository>();
  const repoOf = (replica: Replica) => {
    const known = repos.get(replica);
    if (known) return known;
    const repo = new KyselyImagesRepository(replica.db);
    repos.set(replica, repo);
    return repo;
  };
  let router: ReplicaRoutingImagesRepository | null = null;
  return {
    set,
    windows,
    route(primaryRepo) {
      router = new ReplicaRoutingImagesRepository(primaryRepo, {
        replicas: set,
        repoOf,
        windows,
        counted: (target) => reads.inc({ target }),
      });
      return router;
    },
    delivery(primaryLookup) {
      return (id) => (router ? router.findForDelivery(id, primaryLookup) : primaryLookup(id));
    },
    start: () => set.start(),
    close: () => set.close(),
  };
}

/** The images repository as wired: routed through the replicas when there are any. */
export function routeReads(primary: ImagesRepository, replicas: ReplicaReads | null): ImagesRepository {
  return replicas ? replicas.route(primary) : primary;
}

/** The delivery lookup as wired: without replicas the primary's own function, not a wrapper. */
export function deliveryLookup(primary: Lookup, replicas: ReplicaReads | null): Lookup {
  return replicas ? replicas.delivery(primary) : primary;
}

/** The record-cache invalidator as wired: opening windows first when there are replicas. */
export function withReplicaWindows(
  inner: RecordInvalidator,
  replicas: ReplicaReads | null,
): RecordInvalidator {
  return replicas ? windowingInvalidator(inner, replicas.windows) : inner;
}

/**
 * Claims as wired: a claim is an owner's write of the images table outside ImagesRepository, so it
 * opens the owner's window too (their `?ref=` listing right after must see it).
 */
export function windowingClaims(repo: ClaimsRepository, replicas: ReplicaReads | null): ClaimsRepository {
  if (!replicas) return repo;
  const claim = repo.claim.bind(repo);
  return Object.assign(Object.create(repo) as ClaimsRepository, {
    claim: async (id: string, ownerId: string, ref: string | null) => {
      const [result] = await Promise.all([claim(id, ownerId, ref), replicas.windows.markOwner(ownerId)]);
      return result;
    },
  });
}
