import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { SQSClient } from "@aws-sdk/client-sqs";
import pino, { type Logger } from "pino";
import sharp from "sharp";
import type { Config } from "./config.ts";
import { type ApiKeysRepository, KyselyApiKeysRepository } from "./db/api-keys-repository.ts";
import { DatabaseBreaker } from "./db/breaker.ts";
import { type DatabaseHandle, migrateToLatest, openDatabase } from "./db/connect.ts";
import { GuardedImagesRepository } from "./db/guarded-images-repository.ts";
import { KyselyImagesRepository } from "./db/images-repository.ts";
import { SqsEventSource } from "./events/sqs-event-source.ts";
import { buildHttpServer } from "./http/server.ts";
import type { App } from "./http/types.ts";
import type { JobQueue } from "./jobs/job-queue.ts";
import { JobRunner } from "./jobs/job-runner.ts";
import { PostgresJobQueue } from "./jobs/postgres-job-queue.ts";
import type { KeyValueStore } from "./kv/kv.ts";
import { MemoryKeyValueStore } from "./kv/memory.ts";
import { RedisKeyValueStore } from "./kv/redis.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { AuthService } from "./services/auth.ts";
import { DeliveryService } from "./services/delivery.ts";
import type { UrlBuilder } from "./services/image-view.ts";
import { ImagesService } from "./services/images.ts";
import { IntentBuffer } from "./services/intent-buffer.ts";
import { ProcessingService } from "./services/processing.ts";
import { DELETE_IMAGE_OBJECTS, PROCESS_IMAGE, StorageEventsService } from "./services/storage-events.ts";
import { UploadCompletionService } from "./services/upload-completion.ts";
import { UploadsService } from "./services/uploads.ts";
import { LocalObjectStore } from "./storage/local.ts";
import type { ObjectStore } from "./storage/object-store.ts";
import { S3ObjectStore } from "./storage/s3.ts";

/** Everything one imgup process runs, wired from one Config. The only place adapters are chosen. */
export interface Imgup {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  database: DatabaseHandle;
  breaker: DatabaseBreaker;
  kv: KeyValueStore;
  store: ObjectStore;
  jobs: JobQueue;
  auth: AuthService;
  processing: ProcessingService;
  storageEvents: StorageEventsService;
  intentBuffer: IntentBuffer;
  http: App | null;
  runner: JobRunner | null;
  /** Listens (api role) and starts the background work; resolves with the bound URL, if any. */
  start(): Promise<string | null>;
  stop(): Promise<void>;
}

export async function createImgup(config: Config, opts: { logger?: Logger } = {}): Promise<Imgup> {
  const logger = opts.logger ?? pino({ level: config.logLevel, base: { role: config.role } });
  const metrics = createMetrics();
  // libvips' operation cache only helps repeated identical ops; memory matters more here.
  sharp.cache(false);
  sharp.concurrency(Math.max(1, Math.min(4, config.jobs.concurrency)));

  const secret = config.signingSecret ?? loadOrCreateSecret(config.dataDir, logger);
  const database = await openDatabase(config.database);
  await migrateToLatest(database.db);
  const kv: KeyValueStore = config.kv.redisUrl
    ? new RedisKeyValueStore({
        url: config.kv.redisUrl,
        keyPrefix: config.kv.keyPrefix,
        onError: (err) => logger.warn({ err: err.message }, "redis connection error"),
      })
    : new MemoryKeyValueStore();

  const localStore =
    config.storage.driver === "local"
      ? new LocalObjectStore({
          root: config.storage.localRoot,
          publicBaseUrl: config.publicUrl,
          secret,
          maxObjectBytes: config.uploads.maxBytes,
        })
      : null;
  const store: ObjectStore =
    localStore ?? new S3ObjectStore({ ...config.storage.s3, maxObjectBytes: config.uploads.maxBytes });

  const breakerStates = { closed: 0, "half-open": 1, open: 2 } as const;
  const breaker = new DatabaseBreaker(
    {
      failures: config.database.breakerFailures,
      halfOpenAfterMs: config.database.breakerHalfOpenAfterMs,
      timeoutMs: config.database.queryTimeoutMs,
    },
    logger,
    (state) => metrics.dbBreakerState.set(breakerStates[state]),
  );
  const imagesRepo = new GuardedImagesRepository(new KyselyImagesRepository(database.db), breaker);
  const keysRepo = new KyselyApiKeysRepository(database.db);
  const guardedKeys: ApiKeysRepository = {
    insert: (k) => keysRepo.insert(k),
    findByHash: (h) => breaker.execute(() => keysRepo.findByHash(h)),
    count: () => keysRepo.count(),
  };
  const queue = new PostgresJobQueue({ db: database.db, defaultMaxAttempts: config.jobs.maxAttempts });
  let runner: JobRunner | null = null;
  const jobs = wakingQueue(queue, () => runner?.wake());

  const auth = new AuthService(guardedKeys, config.auth.jwtSecret);
  const storageEvents = new StorageEventsService(jobs, logger);
  localStore?.setObjectCreatedListener((event) => storageEvents.objectCreated(event).then(() => undefined));
  const processing = new ProcessingService(imagesRepo, store, config.uploads, logger);
  const intentBuffer = new IntentBuffer(kv, imagesRepo, metrics, logger);
  const urls: UrlBuilder = {
    publicUrl: config.publicUrl,
    secret,
    privateUrlTtlSeconds: config.delivery.privateUrlTtlSeconds,
    now: Date.now,
  };

  const runsWorker = config.role === "all" || config.role === "worker";
  if (runsWorker) {
    runner = new JobRunner({
      queue,
      concurrency: config.jobs.concurrency,
      leaseMs: config.jobs.leaseMs,
      pollIntervalMs: config.jobs.pollIntervalMs,
      logger,
      handlers: {
        [PROCESS_IMAGE]: async (job, signal) => {
          await processing.process(String(job.payload.imageId), signal);
        },
        [DELETE_IMAGE_OBJECTS]: async (job, signal) => {
          const removed = await store.deletePrefix(String(job.payload.prefix), signal);
          logger.info({ imageId: job.payload.imageId, removed }, "image objects deleted");
        },
      },
    });
  }
  const sqs =
    runsWorker && config.events.sqsQueueUrl
      ? new SqsEventSource({
          client: new SQSClient({ region: config.events.sqsRegion ?? config.storage.s3.region }),
          queueUrl: config.events.sqsQueueUrl,
          logger,
          handle: async (events) => {
            for (const event of events) await storageEvents.objectCreated(event);
          },
        })
      : null;

  const http =
    config.role === "all" || config.role === "api"
      ? buildHttpServer(
          {
            config,
            auth,
            kv,
            metrics,
            uploads: new UploadsService(imagesRepo, store, config.uploads, metrics, intentBuffer),
            completion: new UploadCompletionService(imagesRepo, store, jobs, config.uploads.urlTtlSeconds),
            images: new ImagesService(imagesRepo, jobs),
            delivery: new DeliveryService(imagesRepo, store, secret, logger),
            storageEvents,
            urls,
            localStorage: localStore,
            readiness: async () => ({
              database:
                breaker.state === "open"
                  ? "degraded: circuit open, intents are buffered"
                  : await check(() => imagesRepo.ping()),
              kv: await check(() => kv.ping()),
              storage: await check(() => store.ping()),
            }),
          },
          logger,
        )
      : null;

  // Replays intents buffered during a database outage, from any instance (a KV lock picks one).
  let drainTimer: NodeJS.Timeout | null = null;
  const drain = async () => {
    if (breaker.state === "open" || (await intentBuffer.length().catch(() => 0)) === 0) return;
    await intentBuffer
      .drain()
      .catch((err) => logger.warn({ err: err.message }, "buffer drain failed; retrying"));
  };

  return {
    config,
    logger,
    metrics,
    database,
    breaker,
    kv,
    store,
    jobs,
    auth,
    processing,
    storageEvents,
    intentBuffer,
    http,
    get runner() {
      return runner;
    },
    async start() {
      if (config.auth.devKey && !(await auth.hasAnyKey())) await createDevKey(auth, config, logger);
      runner?.start();
      sqs?.start();
      drainTimer = setInterval(() => void drain(), 1000);
      drainTimer.unref();
      if (!http) return null;
      return http.listen({ host: config.host, port: config.port });
    },
    async stop() {
      if (drainTimer) clearInterval(drainTimer);
      await http?.close();
      await sqs?.stop();
      await runner?.stop(config.http.shutdownTimeoutMs);
      await store.close();
      await kv.close();
      await database.close();
    },
  };
}

/** Lets in-process producers wake the local worker at once instead of at its next poll. */
function wakingQueue(queue: JobQueue, wake: () => void): JobQueue {
  return {
    enqueue: async (job) => {
      const r = await queue.enqueue(job);
      wake();
      return r;
    },
    requeue: async (job) => {
      const r = await queue.requeue(job);
      wake();
      return r;
    },
    claim: (o) => queue.claim(o),
    complete: (j) => queue.complete(j),
    fail: (j, e, r) => queue.fail(j, e, r),
    extendLease: (j, l) => queue.extendLease(j, l),
    get: (k) => queue.get(k),
    stats: () => queue.stats(),
  };
}

async function check(fn: () => Promise<void>): Promise<string> {
  try {
    await fn();
    return "ok";
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Embedded mode only needs a stable secret across restarts; production sets IMGUP_SIGNING_SECRET. */
function loadOrCreateSecret(dataDir: string, logger: Logger): string {
  const file = path.join(dataDir, "signing-secret");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString("base64url");
  writeFileSync(file, secret, { mode: 0o600 });
  logger.warn(
    { file },
    "IMGUP_SIGNING_SECRET is not set: generated one (set it when running several instances)",
  );
  return secret;
}

async function createDevKey(auth: AuthService, config: Config, logger: Logger): Promise<void> {
  const { key } = await auth.createKey({ ownerId: "dev", name: "development key", scopes: ["admin"] });
  const file = path.join(config.dataDir, "dev-api-key");
  mkdirSync(config.dataDir, { recursive: true });
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  logger.warn({ file }, `created a development API key for owner "dev": ${key}`);
}
