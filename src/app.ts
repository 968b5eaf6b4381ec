import { SQSClient } from "@aws-sdk/client-sqs";
import type { Logger } from "pino";
import sharp from "sharp";
import type { Config } from "./config.ts";
import { type ApiKeysRepository, KyselyApiKeysRepository } from "./db/api-keys-repository.ts";
import { DatabaseBreaker, isDatabaseUnavailable } from "./db/breaker.ts";
import { KyselyClaimsRepository } from "./db/claims-repository.ts";
import { assertSchemaCurrent, type DatabaseHandle, migrateToLatest, openDatabase } from "./db/connect.ts";
import { GuardedImagesRepository } from "./db/guarded-images-repository.ts";
import { guardPort } from "./db/guarded-port.ts";
import { KyselyImagesRepository } from "./db/images-repository.ts";
import {
  InvalidatingImagesRepository,
  invalidatingClaims,
  invalidatingMaintenance,
} from "./db/invalidating-images-repository.ts";
import { readPendingStats } from "./db/pending-stats.ts";
import { KyselyProfilesRepository } from "./db/profiles-repository.ts";
import {
  createReplicaReads,
  deliveryLookup,
  routeReads,
  windowingClaims,
  withReplicaWindows,
} from "./db/replica-setup.ts";
import { KyselyUsageRepository } from "./db/usage-repository.ts";
import { DEFAULT_SPEC_LIMITS } from "./domain/transform-spec.ts";
import { AmqpEventSource } from "./events/amqp-event-source.ts";
import { createAmqpEventMetrics } from "./events/amqp-metrics.ts";
import { SqsEventSource } from "./events/sqs-event-source.ts";
import { startAdminServer } from "./http/admin-server.ts";
import { closeHttp } from "./http/close.ts";
import { buildHttpServer } from "./http/server.ts";
import type { App } from "./http/types.ts";
import { type ImageWork, sandboxedImageWork } from "./imaging/image-work.ts";
import { createImagePool } from "./imaging/sandbox/setup.ts";
import type { JobQueue } from "./jobs/job-queue.ts";
import { JobRunner } from "./jobs/job-runner.ts";
import { PostgresJobQueue } from "./jobs/postgres-job-queue.ts";
import { wakingQueue } from "./jobs/waking-queue.ts";
import type { KeyValueStore } from "./kv/kv.ts";
import { MemoryKeyValueStore } from "./kv/memory.ts";
import { RedisKeyValueStore } from "./kv/redis.ts";
import { createLogger } from "./logging.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { ClamdScanner } from "./scanning/clamd-scanner.ts";
import { MalwareCheck } from "./scanning/malware-check.ts";
import { createMalwareScanMetrics } from "./scanning/scan-metrics.ts";
import { loadOrCreateSecret } from "./secrets.ts";
import { AuthService } from "./services/auth.ts";
import { BoundedQueue } from "./services/bounded-queue.ts";
import { CdnPurgeService, createCdnPurgeMetrics } from "./services/cdn-purge.ts";
import { ClaimsService } from "./services/claims.ts";
import { DeliveryService } from "./services/delivery.ts";
import { createDevKey, type DemoLink, demoPageLink } from "./services/dev-key.ts";
import { HotVariants } from "./services/hot-variants.ts";
import { ImageRecordCache, KvRecordInvalidator } from "./services/image-record-cache.ts";
import type { UrlBuilder } from "./services/image-view.ts";
import { ImagesService } from "./services/images.ts";
import { IntentBuffer } from "./services/intent-buffer.ts";
import { JwtVerifier } from "./services/jwt-verifier.ts";
import { publishLocalAdmin } from "./services/local-admin.ts";
import { createMaintenance, type Maintenance } from "./services/maintenance.ts";
import { createModeration } from "./services/moderation-setup.ts";
import { ProcessingService } from "./services/processing.ts";
import { processingDerivatives } from "./services/processing-derivatives.ts";
import { ProfilesService } from "./services/profiles.ts";
import { ProxyUploadService } from "./services/proxy-upload.ts";
import { createProxyUploadMetrics } from "./services/proxy-upload-metrics.ts";
import { createQuotaMetrics, QuotaService } from "./services/quotas.ts";
import { roleReadiness } from "./services/readiness.ts";
import { HealthSignals, publishHeartbeat } from "./services/readiness-signals.ts";
import { PROCESS_IMAGE, StorageEventsService } from "./services/storage-events.ts";
import { UploadCompletionService } from "./services/upload-completion.ts";
import { UploadsService } from "./services/uploads.ts";
import { VariantsService } from "./services/variants.ts";
import type { WebhookTransport } from "./services/webhook-ports.ts";
import { createWebhooks, type Webhooks } from "./services/webhooks-setup.ts";
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
  /** Reconciler, orphan sweep, doctor, owner purge; their scheduler runs in roles all and scheduler. */
  maintenance: Maintenance;
  http: App | null;
  runner: JobRunner | null;
  /** Outbound webhooks (worker runs in roles all and worker) and the event feed. */
  webhooks: Webhooks;
  /** Listens (api role) and starts the background work; resolves with the bound URL, if any. */
  start(): Promise<string | null>;
  /** Once started: the demo page link for the startup banner (null when the page is off). */
  readonly demoLink: DemoLink | null;
  /** Once started: where /healthz, /readyz and /metrics answer on IMGUP_ADMIN_PORT (null when unset). */
  readonly adminUrl: string | null;
  stop(): Promise<void>;
}

export async function createImgup(
  config: Config,
  /**
   * Tests only: kvClock, the KV's clock (buckets; the in-process KV's TTLs too), see
   * RedisKeyValueStoreOptions.now; kvCommandTimeoutMs, so a loaded test machine's slow Redis
   * replies do not turn into fail-open decisions.
   */
  opts: {
    logger?: Logger;
    kvClock?: () => number;
    kvCommandTimeoutMs?: number;
    imageWork?: ImageWork;
    /** Tests only: the webhook worker's clock (retries, disabling) and its outbound transport. */
    webhookClock?: () => number;
    webhookTransport?: WebhookTransport;
  } = {},
): Promise<Imgup> {
  // A logger of the caller's (tests) lacks the request/job context on service lines; createLogger has it.
  const logger =
    opts.logger ?? createLogger({ level: config.logLevel, role: config.role, format: config.logFormat });
  const metrics = createMetrics();
  // libvips' operation cache only helps repeated identical ops; memory matters more here.
  sharp.cache(false);
  sharp.concurrency(Math.max(1, Math.min(4, config.jobs.concurrency)));

  const secret =
    config.signingSecret ??
    loadOrCreateSecret(config.dataDir, (file) =>
      logger.warn(
        { file },
        "IMGUP_SIGNING_SECRET is not set: generated one (set it when running several instances)",
      ),
    );
  const database = await openDatabase(config.database);
  try {
    // Migrating is an explicit step (`imgup migrate`) unless embedded or IMGUP_AUTO_MIGRATE=true.
    if (config.database.autoMigrate) await migrateToLatest(database.db);
    else await assertSchemaCurrent(database.db);
  } catch (err) {
    await database.close();
    throw err;
  }
  const kv: KeyValueStore = config.kv.redisUrl
    ? new RedisKeyValueStore({
        url: config.kv.redisUrl,
        keyPrefix: config.kv.keyPrefix,
        onError: (err) => logger.warn({ err: err.message }, "redis connection error"),
        now: opts.kvClock,
        commandTimeoutMs: opts.kvCommandTimeoutMs,
      })
    : new MemoryKeyValueStore({ now: opts.kvClock });

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
  // Every write that could make a cached record stale replaces its version in the KV (delivery caches).
  // Read replicas (none unless DATABASE_REPLICA_URLS): lag-tolerant reads, read-your-writes windows.
  const replicaReads = createReplicaReads(config.database, kv, metrics.registry, logger);
  const recordVersions = withReplicaWindows(
    new KvRecordInvalidator(kv, 2 * config.deliveryCache.recordMaxAgeMs + 60_000),
    replicaReads,
  );
  const imagesRepo = new InvalidatingImagesRepository(
    new GuardedImagesRepository(routeReads(new KyselyImagesRepository(database.db), replicaReads), breaker),
    recordVersions,
  );
  // One breaker for every port of the database: an outage opens it once, and each call fails at once.
  const guardedKeys: ApiKeysRepository = guardPort(new KyselyApiKeysRepository(database.db), breaker);
  const usageRepo = guardPort(new KyselyUsageRepository(database.db), breaker);
  const quotaMetrics = createQuotaMetrics(metrics.registry);
  const { maxBytes, maxImages } = config.quotas;
  const quotas = new QuotaService(usageRepo, { maxBytes, maxImages }, quotaMetrics);
  const queue = guardPort(
    new PostgresJobQueue({
      db: database.db,
      defaultMaxAttempts: config.jobs.maxAttempts,
      perGroupConcurrency: config.jobs.perOwnerConcurrency,
    }),
    breaker,
  );
  metrics.observeJobQueue(() => queue.stats());
  metrics.observePendingImages(() => breaker.execute(() => readPendingStats(database.db)));
  let runner: JobRunner | null = null;
  const jobs = wakingQueue(queue, () => runner?.wake());

  const auth = new AuthService(guardedKeys, JwtVerifier.create(config.auth.jwt));
  // Cross-instance liveness (worker heartbeat, storage events) for the API's /readyz, in the KV.
  const signals = new HealthSignals(kv, logger);
  // Intents and storage events that arrive while the database is down; replayed in order on recovery.
  const intentBuffer: IntentBuffer = new IntentBuffer(kv, imagesRepo, metrics, logger, {
    replayEvent: (event) => storageEvents.replay(event),
  });
  metrics.observeBuffer(async () => ({
    entries: await intentBuffer.length(),
    deadLetters: await intentBuffer.deadLetterCount(),
  }));
  const storageEvents: StorageEventsService = new StorageEventsService(
    jobs,
    logger,
    async (id) => (await imagesRepo.findById(id))?.ownerId ?? null,
    (key) => store.logicalKey(key),
    () => signals.storageEventSeen(),
    intentBuffer,
  );
  localStore?.setObjectCreatedListener((event) => storageEvents.objectCreated(event).then(() => undefined));
  // Without replicas this is the repository's own lookup: no wrapper on the delivery path.
  const recordLookup = deliveryLookup((id) => imagesRepo.findById(id), replicaReads);
  const delivery = new DeliveryService(imagesRepo, store, secret, logger, Date.now, {
    records: new ImageRecordCache(recordLookup, kv, {
      entries: config.deliveryCache.recordEntries,
      maxAgeMs: config.deliveryCache.recordMaxAgeMs,
    }),
    hot: new HotVariants(config.deliveryCache.hotVariantBytes, config.deliveryCache.hotVariantMaxBytes),
    ...(config.deliveryCache.s3Redirect === "presigned" && store instanceof S3ObjectStore
      ? { redirect: { store, ttlSeconds: config.deliveryCache.s3RedirectTtlSeconds } }
      : {}),
  });
  // Every decode and encode runs in killable child processes (imageWork: tests may gate it).
  const imagePool = createImagePool(config, logger);
  const imageWork = opts.imageWork ?? sandboxedImageWork(imagePool);
  const decodeLimits = { maxPixels: config.uploads.maxPixels, maxJpegScans: config.imaging.maxJpegScans };
  const variants = new VariantsService(
    delivery,
    store,
    config.delivery.presets,
    new BoundedQueue({
      concurrency: config.delivery.transformConcurrency,
      maxQueued: config.delivery.transformQueue,
      perOwnerConcurrency: config.delivery.ownerTransformConcurrency,
      onDepth: (depth) => metrics.transformQueueLength.set(depth),
    }),
    {
      maxPixels: config.uploads.maxPixels,
      maxBytes: config.uploads.maxBytes,
      animated: config.delivery.animated,
      specLimits: DEFAULT_SPEC_LIMITS,
      signingKeys: config.delivery.urlSigningKeys ?? [secret],
      timeoutMs: config.imaging.transformTimeoutMs,
      maxJpegScans: config.imaging.maxJpegScans,
      failureTtlSeconds: config.delivery.transformFailureTtlSeconds,
    },
    metrics,
    logger,
    imageWork,
    kv,
    {
      repo: usageRepo,
      cap: { ratio: config.quotas.variantBytesRatio, minBytes: config.quotas.variantBytesMin },
      touchIntervalMs: config.quotas.variantTouchIntervalMs,
      metrics: quotaMetrics,
    },
  );
  // The clamd scan of every upload (IMGUP_CLAMD_URL), fail-closed unless IMGUP_CLAMD_FAIL_OPEN.
  const { clamd, ...scanSettings } = config.malwareScan;
  const malwareCheck = clamd
    ? new MalwareCheck({
        scanner: new ClamdScanner({ address: clamd, timeoutMs: scanSettings.timeoutMs }),
        failOpen: scanSettings.failOpen,
        retryMs: scanSettings.retryMs,
        metrics: createMalwareScanMetrics(metrics.registry),
        log: logger,
      })
    : null;
  // The moderation hook (IMGUP_VALIDATION_URL): the worker's gate and the decisions on held images.
  const moderation = createModeration({
    settings: config.moderation,
    publicUrl: config.publicUrl,
    images: imagesRepo,
    store,
    logger,
    metrics,
  });
  const processing = new ProcessingService(
    imagesRepo,
    store,
    { ...config.uploads, ...decodeLimits, timeoutMs: config.imaging.processingTimeoutMs },
    imageWork,
    logger,
    metrics,
    processingDerivatives({
      variants,
      work: imageWork,
      presets: config.delivery.presets,
      eagerPresets: config.delivery.eagerPresets,
      limits: decodeLimits,
      log: logger,
    }),
    malwareCheck,
    moderation.gate,
  );
  const urls: UrlBuilder = {
    publicUrl: config.publicUrl,
    secret,
    privateUrlTtlSeconds: config.delivery.privateUrlTtlSeconds,
    now: Date.now,
    presetNames: Object.keys(config.delivery.presets),
  };

  const claims = invalidatingClaims(
    windowingClaims(guardPort(new KyselyClaimsRepository(database.db), breaker), replicaReads),
    recordVersions,
  );
  const webhooks = createWebhooks({
    db: database.db,
    breaker,
    config,
    urls,
    logger,
    registry: metrics.registry,
    now: opts.webhookClock,
    transport: opts.webhookTransport,
  });

  const cdnPurge = new CdnPurgeService({
    settings: config.cdnPurge,
    publicUrl: config.publicUrl,
    jobs,
    logger,
    metrics: createCdnPurgeMetrics(metrics.registry),
  });
  const maintenance = createMaintenance({
    db: database.db,
    store,
    kv,
    jobs,
    logger,
    leaseMs: config.jobs.leaseMs,
    settings: config.maintenance,
    corsOrigins: {
      configured: config.cors.apiOrigins,
      page: config.demoPage.enabled ? new URL(config.publicUrl).origin : undefined,
    },
    metrics,
    guard: (repo) => invalidatingMaintenance(guardPort(repo, breaker), recordVersions),
    buffer: intentBuffer,
    claims,
    cdn: cdnPurge,
  });
  metrics.observePipeline(() => maintenance.pipelineCheck.latest());
  const runsScheduler = config.role === "all" || config.role === "scheduler";

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
        // delete-image-objects and purge-owner-images
        ...maintenance.jobHandlers,
        ...cdnPurge.jobHandlers(),
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
  const amqp =
    runsWorker && config.events.amqpUrl
      ? new AmqpEventSource({
          url: config.events.amqpUrl,
          queue: config.events.amqpQueue,
          prefetch: config.events.amqpPrefetch,
          logger,
          metrics: createAmqpEventMetrics(metrics.registry),
          handle: async (events) => {
            for (const event of events) await storageEvents.objectCreated(event);
          },
        })
      : null;

  const readiness = roleReadiness({
    config,
    database: async () =>
      breaker.state === "open"
        ? "degraded: circuit open, intents and events are buffered"
        : imagesRepo.ping(),
    kv,
    store,
    signals,
    runLoop: runner,
    eventQueue: amqp ? () => amqp.check() : null,
  });
  const images = new ImagesService(imagesRepo, jobs, metrics, cdnPurge);
  const profiles = new ProfilesService(
    config.uploads.profiles,
    guardPort(new KyselyProfilesRepository(database.db), breaker),
    { supportedTypes: config.uploads.allowedTypes, presetNames: Object.keys(config.delivery.presets) },
  );
  const http =
    config.role === "all" || config.role === "api"
      ? await buildHttpServer(
          {
            config,
            auth,
            kv,
            metrics,
            uploads: new UploadsService(
              imagesRepo,
              store,
              config.uploads,
              metrics,
              intentBuffer,
              Date.now,
              () => signals.uploadIssued(),
              profiles,
              quotas,
            ),
            proxyUploads: new ProxyUploadService(
              imagesRepo,
              store,
              jobs,
              config.uploads,
              createProxyUploadMetrics(metrics.registry),
              logger,
              Date.now,
              quotas,
            ),
            completion: new UploadCompletionService(imagesRepo, store, jobs, config.uploads.urlTtlSeconds),
            images,
            ownerPurge: maintenance.ownerPurge,
            quotas,
            delivery,
            variants,
            storageEvents,
            urls,
            localStorage: localStore,
            readiness,
            claims: new ClaimsService(claims, images),
            profiles,
            webhooks: webhooks.service,
            eventsFeed: webhooks.feed,
            moderation: moderation.decisions,
          },
          logger,
        )
      : null;

  // Replays intents buffered during a database outage, from any instance (a KV lock picks one).
  let drainTimer: NodeJS.Timeout | null = null;
  let localAdmin: { withdraw(): void } | null = null;
  let demoLink: DemoLink | null = null;
  let admin: { url: string; close(graceMs: number): Promise<void> } | null = null;
  let heartbeat: { stop(): void } | null = null;
  // The drain's own insert is what probes a half-open breaker: with no other traffic, skipping
  // while "open" would leave the breaker (and the buffer) stuck forever.
  const drain = async () => {
    if ((await intentBuffer.length().catch(() => 0)) === 0) return;
    await intentBuffer.drain().catch((err) => {
      if (isDatabaseUnavailable(err))
        logger.debug({ err: err.message }, "database still unavailable; buffer kept");
      else logger.warn({ err: err.message }, "buffer drain failed; retrying");
    });
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
    maintenance,
    http,
    webhooks,
    get runner() {
      return runner;
    },
    get demoLink() {
      return demoLink;
    },
    get adminUrl() {
      return admin?.url ?? null;
    },
    async start() {
      const devKey =
        config.auth.devKey && !(await auth.hasAnyKey()) ? await createDevKey(auth, config) : null;
      // Only the API routes reads to replicas; other roles just open windows with their writes.
      if (http) await replicaReads?.start();
      runner?.start();
      if (runsWorker) {
        await webhooks.syncConfigured();
        webhooks.worker.start();
      }
      if (runner) {
        const { heartbeatIntervalMs: intervalMs, workerStallMs: stallMs } = config.health;
        heartbeat = publishHeartbeat(runner, signals, { intervalMs, stallMs, log: logger });
      }
      if (config.admin.port !== undefined)
        admin = await startAdminServer({ config, metrics, readiness }, logger);
      sqs?.start();
      amqp?.start();
      if (runsScheduler) maintenance.scheduler.start();
      drainTimer = setInterval(() => void drain(), 1000);
      drainTimer.unref();
      if (!http) return null;
      const address = await http.listen({ host: config.host, port: config.port });
      // Only the embedded database needs it: with PostgreSQL the CLI opens the database itself.
      if (!config.database.url && config.database.pgliteDir !== "memory://") {
        localAdmin = publishLocalAdmin(config.dataDir, address, auth);
      }
      demoLink = demoPageLink(config, logger, devKey);
      return address;
    },
    async stop() {
      if (drainTimer) clearInterval(drainTimer);
      heartbeat?.stop();
      localAdmin?.withdraw();
      // Requests in flight and running jobs share most of the bound, side by side; releasing the
      // jobs left and closing the pools get the rest.
      const drainMs = Math.floor(config.http.shutdownTimeoutMs * 0.8);
      await Promise.all([
        closeHttp(http, drainMs),
        admin?.close(drainMs),
        maintenance.scheduler.stop(),
        sqs?.stop(),
        amqp?.stop(),
        runner?.stop(drainMs),
        webhooks.worker.stop(),
      ]);
      // After the drain: what still runs in a child is abandoned with its request or job.
      await imagePool.stop();
      await store.close();
      await kv.close();
      await replicaReads?.close();
      await database.close();
    },
  };
}
