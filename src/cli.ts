import { parseArgs } from "node:util";
import { createImgup, type Imgup } from "./app.ts";
import { keysCommand } from "./cli-keys.ts";
import {
  isMaintenanceCommand,
  MAINTENANCE_USAGE,
  type MaintenanceHandle,
  runMaintenanceCommand,
} from "./cli-maintenance.ts";
import { assertDeployable, ConfigError, loadConfig, type Role } from "./config.ts";
import { migrateToLatest, openDatabase } from "./db/connect.ts";
import { EmbeddedDatabaseLockedError } from "./db/embedded-lock.ts";
import { UPLOAD_KEY_SUFFIX } from "./domain/keys.ts";
import { installCrashGuard } from "./http/plugins/errors.ts";
import { startupBanner } from "./logging.ts";
import { readEmbeddedSecret } from "./secrets.ts";
import { transformUrl } from "./services/transform-urls.ts";
import { normalizeKeyPrefix } from "./storage/s3.ts";
import { configureBucketWebhook } from "./storage/s3-notifications.ts";

const USAGE = `usage: imgup <command> [options]

commands:
  serve [--role all|api|worker|scheduler]   run imgup (default: every role in one process)
  migrate                                   apply database migrations and exit
  keys create --owner ID [--name N] [--scope admin]
                                            create an API key (printed once)
  keys list [--owner ID] [--json]           list active API keys
  keys revoke KEY_ID                        revoke an API key
  sign-url --image ID --spec w_400,h_300,fit_cover,f_auto
                                            print a signed on-the-fly variant URL
  events ceph-webhook --push-endpoint URL [--topic NAME]
                                            point a Ceph RGW bucket's notifications at imgup
${MAINTENANCE_USAGE}

configuration comes from environment variables; see docs/configuration.md.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "serve":
      return serve(rest);
    case "migrate":
      return migrate();
    case "keys":
      return keys(rest);
    case "events":
      return events(rest);
    case "sign-url":
      return signUrlCommand(rest);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      if (isMaintenanceCommand(command)) return runMaintenanceCommand(command, rest, openMaintenance);
      console.error(`unknown command: ${command}\n\n${USAGE}`);
      return 2;
  }
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { role: { type: "string" } } });
  const roles = ["all", "api", "worker", "scheduler"];
  if (values.role !== undefined && !roles.includes(values.role)) {
    console.error(`--role must be one of ${roles.join(", ")}`);
    return 2;
  }
  const config = loadConfig(process.env, { role: values.role as Role | undefined });
  assertDeployable(config, process.env);
  const imgup = await createImgup(config);
  installCrashGuard(imgup.logger);
  const url = await imgup.start();
  const publicUrl = url ? imgup.config.publicUrl : null;
  startupBanner(imgup.logger, { role: imgup.config.role, url: publicUrl, listen: url, demo: imgup.demoLink });
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    let received: NodeJS.Signals | null = null;
    const onSignal = (s: NodeJS.Signals) => {
      // A second signal means "now": the operator gave up waiting.
      if (received) {
        imgup.logger.warn({ signal: s }, "second signal during shutdown: exiting at once");
        process.exit(1);
      }
      received = s;
      resolve(s);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
  return shutDown(imgup, signal);
}

/** Below this, closing the pools and releasing jobs would be cut short by the last-resort exit. */
const MIN_SHUTDOWN_BOUND_MS = 1000;

/**
 * Stops accepting requests, lets those in flight and the running jobs finish (or releases the jobs),
 * closes the pools, and exits within IMGUP_SHUTDOWN_TIMEOUT_MS whatever hangs.
 */
async function shutDown(imgup: Imgup, signal: NodeJS.Signals): Promise<number> {
  const boundMs = Math.max(imgup.config.http.shutdownTimeoutMs, MIN_SHUTDOWN_BOUND_MS);
  const started = performance.now();
  imgup.logger.info({ signal, boundMs }, "shutting down");
  const lastResort = setTimeout(() => {
    imgup.logger.error({ boundMs }, "shutdown did not finish within IMGUP_SHUTDOWN_TIMEOUT_MS; exiting");
    process.exit(1);
  }, boundMs);
  await imgup.stop();
  clearTimeout(lastResort);
  imgup.logger.info({ ms: Math.round(performance.now() - started) }, "shut down");
  return 0;
}

/**
 * The maintenance commands need the adapters and nothing running: role "scheduler" builds no HTTP
 * server and no worker, and start() is never called, so its scheduler stays idle.
 */
async function openMaintenance(): Promise<MaintenanceHandle> {
  const config = loadConfig(process.env, { role: "scheduler" });
  // The report goes to stdout; only warnings of the machinery join it unless LOG_LEVEL says more.
  const imgup = await createImgup({ ...config, logLevel: process.env.LOG_LEVEL ? config.logLevel : "warn" });
  return { maintenance: imgup.maintenance, close: () => imgup.stop() };
}

async function migrate(): Promise<number> {
  const config = loadConfig(process.env);
  const handle = await openDatabase(config.database);
  try {
    const applied = await migrateToLatest(handle.db);
    console.log(applied.length ? `applied: ${applied.join(", ")}` : "database is up to date");
  } finally {
    await handle.close();
  }
  return 0;
}

async function keys(args: string[]): Promise<number> {
  return keysCommand(args, loadConfig(process.env, { role: "api" }));
}

async function signUrlCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { image: { type: "string" }, spec: { type: "string" } } });
  if (!values.image || !values.spec) {
    console.error("usage: imgup sign-url --image ID --spec w_400,h_300,fit_cover,f_auto");
    return 2;
  }
  const config = loadConfig(process.env);
  const key =
    config.delivery.urlSigningKeys?.[0] ?? config.signingSecret ?? readEmbeddedSecret(config.dataDir);
  console.log(transformUrl(config.publicUrl, key, values.spec, values.image));
  return 0;
}

/** Ceph RGW pushes notifications to an SNS-style topic; this creates it and subscribes the bucket. */
async function events(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: {
      "push-endpoint": { type: "string" },
      topic: { type: "string", default: "imgup-object-created" },
    },
  });
  const endpoint = values["push-endpoint"];
  if (sub !== "ceph-webhook" || !endpoint) {
    console.error(
      "usage: imgup events ceph-webhook --push-endpoint 'https://imgup.example/v1/events/storage?token=…'",
    );
    return 2;
  }
  const config = loadConfig(process.env);
  if (config.storage.driver !== "s3") {
    console.error("IMGUP_STORAGE=s3 (and the S3_* variables) must point at the Ceph bucket");
    return 2;
  }
  const { topicArn } = await configureBucketWebhook({
    ...config.storage.s3,
    topicName: values.topic,
    pushEndpoint: endpoint,
    keySuffix: UPLOAD_KEY_SUFFIX,
    keyPrefix: normalizeKeyPrefix(config.storage.s3.keyPrefix),
  });
  console.log(`bucket ${config.storage.s3.bucket} notifies ${topicArn} -> ${endpoint}`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof ConfigError) console.error(`configuration error: ${err.message}`);
    else if (err instanceof EmbeddedDatabaseLockedError) console.error(err.message);
    else console.error(err);
    process.exit(1);
  },
);
