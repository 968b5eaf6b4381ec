import { loadConfig } from "../config.ts";
import { migrateToLatest, openDatabase, SchemaVersionError, schemaStatus } from "../db/connect.ts";
import { UPLOAD_KEY_SUFFIX } from "../domain/keys.ts";
import { readEmbeddedSecret } from "../secrets.ts";
import { transformUrl } from "../services/transform-urls.ts";
import { normalizeKeyPrefix } from "../storage/s3.ts";
import { configureBucketWebhook } from "../storage/s3-notifications.ts";
import { CliError, UsageError } from "./errors.ts";

/** `imgup migrate`: the explicit step before a new version starts (see docs/operations.md). */
export async function migrate(opts: { status?: boolean }): Promise<number> {
  const config = loadConfig(process.env);
  const handle = await openDatabase(config.database);
  try {
    const before = await schemaStatus(handle.db);
    if (before.unknown.length > 0) {
      // Kysely would refuse too, with less to go on.
      throw new SchemaVersionError(
        `the database schema is newer than this imgup (${before.unknown.join(", ")} applied by a newer ` +
          "version): nothing to migrate with this one",
        before,
      );
    }
    if (opts.status) {
      console.log(`applied: ${before.applied.join(", ") || "none"}`);
      console.log(`pending: ${before.pending.join(", ") || "none"}`);
      return 0;
    }
    const applied = await migrateToLatest(handle.db);
    console.log(applied.length ? `applied: ${applied.join(", ")}` : "database is up to date");
  } finally {
    await handle.close();
  }
  return 0;
}

export async function signUrl(opts: { image: string; spec: string }): Promise<number> {
  const config = loadConfig(process.env);
  let key = config.delivery.urlSigningKeys?.[0] ?? config.signingSecret;
  if (!key) {
    try {
      key = readEmbeddedSecret(config.dataDir);
    } catch (err) {
      throw new CliError((err as Error).message);
    }
  }
  let url: string;
  try {
    url = transformUrl(config.publicUrl, key, opts.spec, opts.image);
  } catch (err) {
    // The spec is the operator's typing: say what is wrong with it, no stack.
    throw new UsageError(`--spec: ${(err as Error).message}`);
  }
  console.log(url);
  return 0;
}

/** Ceph RGW pushes notifications to an SNS-style topic; this creates it and subscribes the bucket. */
export async function cephWebhook(opts: { pushEndpoint: string; topic: string }): Promise<number> {
  const config = loadConfig(process.env);
  if (config.storage.driver !== "s3") {
    throw new UsageError("IMGUP_STORAGE=s3 (and the S3_* variables) must point at the Ceph bucket");
  }
  const { topicArn } = await configureBucketWebhook({
    ...config.storage.s3,
    topicName: opts.topic,
    pushEndpoint: opts.pushEndpoint,
    keySuffix: UPLOAD_KEY_SUFFIX,
    keyPrefix: normalizeKeyPrefix(config.storage.s3.keyPrefix),
  });
  console.log(`bucket ${config.storage.s3.bucket} notifies ${topicArn} -> ${opts.pushEndpoint}`);
  return 0;
}
