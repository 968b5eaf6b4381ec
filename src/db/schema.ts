import type { ColumnType, Generated, Kysely } from "kysely";

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** int8: connect.ts parses it to a number on pg; PGlite returns numbers too. */
type Int8 = ColumnType<string | number, number, number>;

export interface ImagesTable {
  id: string;
  owner_id: string;
  status: string;
  visibility: string;
  filename: string;
  object_key: string;
  upload_method: string;
  declared_content_type: string;
  declared_size: Int8;
  declared_sha256: string | null;
  content_type: string | null;
  size: Int8 | null;
  width: number | null;
  height: number | null;
  format: string | null;
  sha256: string | null;
  reject_reason: string | null;
  reject_detail: string | null;
  multipart_upload_id: string | null;
  multipart_part_size: number | null;
  placeholder: string | null;
  idempotency_key: string | null;
  upload_expires_at: Timestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
  ready_at: Timestamp | null;
  deleted_at: Timestamp | null;
  claim_required: Generated<boolean>;
  claim_expires_at: Timestamp | null;
  claimed_at: Timestamp | null;
  ref: string | null;
  profile: string | null;
  /** JSON of domain/profiles.ts ProfileLimits. */
  profile_limits: string | null;
  /** What the upload in flight may add to its owner's usage (migration 008). */
  reserved_bytes: ColumnType<string | number, number | undefined, number>;
  /** Bytes of the metadata-stripped public copy, 0 when none (migration 008). */
  public_bytes: ColumnType<string | number, number | undefined, number>;
}

export interface UploadProfilesTable {
  name: string;
  /** JSON of the profile (domain/profiles.ts UploadProfile without its name). */
  settings: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ApiKeysTable {
  id: string;
  owner_id: string;
  key_hash: string;
  name: string;
  scopes: string;
  created_at: Timestamp;
  revoked_at: Timestamp | null;
}

export interface JobsTable {
  id: Generated<number>;
  kind: string;
  /** De-duplication key: one job per key, however many times it is enqueued. */
  key: string;
  payload: ColumnType<unknown, string, string>;
  status: string;
  attempts: Generated<number>;
  max_attempts: number;
  run_at: Timestamp;
  locked_until: Timestamp | null;
  lease_token: string | null;
  last_error: string | null;
  /** Jobs of one group (an image owner) run at most `perGroupConcurrency` at once; null: no cap. */
  group_key: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface OutboxEventsTable {
  seq: Generated<number>;
  txid: Generated<number>;
  id: Generated<string>;
  type: string;
  owner_id: string;
  image_id: string;
  /** The images row as the transition wrote it. */
  snapshot: ColumnType<unknown, string, string>;
  created_at: Timestamp;
}

export interface WebhookEndpointsTable {
  id: string;
  owner_id: string | null;
  url: string;
  events: string;
  description: string;
  source: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Timestamp | null;
  consecutive_failures: Generated<number>;
  failing_since: Timestamp | null;
  disabled_at: Timestamp | null;
  disabled_reason: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface WebhookDeliveriesTable {
  id: Generated<number>;
  endpoint_id: string;
  event_seq: number;
  image_id: string;
  status: string;
  replay: Generated<boolean>;
  attempts: Generated<number>;
  next_attempt_at: Timestamp;
  locked_until: Timestamp | null;
  lease_token: string | null;
  last_attempt_at: Timestamp | null;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: Timestamp | null;
  created_at: Timestamp;
}

export interface WebhookDispatchTable {
  id: number;
  txid: Int8;
  seq: Int8;
}

/** Usage counters per owner, kept by triggers on images and image_variants (migration 008). */
export interface OwnerUsageTable {
  owner_id: string;
  /** Migration 011: one owner's counters are the sum of their stripes. */
  stripe: ColumnType<number, number | undefined, number>;
  original_bytes: Counter;
  variant_bytes: Counter;
  reserved_bytes: Counter;
  images: Counter;
  pending_images: Counter;
}

/** An int8 with a default of 0. */
type Counter = ColumnType<string | number, number | undefined, number>;

/** Per-owner limit overrides; null: unlimited. */
export interface OwnerQuotasTable {
  owner_id: string;
  max_bytes: Int8 | null;
  max_images: Int8 | null;
  updated_at: Timestamp;
}

/** One row per stored variant object: what the per-image variant cap counts and evicts. */
export interface ImageVariantsTable {
  image_id: string;
  key: string;
  owner_id: string;
  bytes: Int8;
  created_at: Timestamp;
  last_accessed_at: Timestamp;
}

export interface Database {
  images: ImagesTable;
  api_keys: ApiKeysTable;
  jobs: JobsTable;
  upload_profiles: UploadProfilesTable;
  outbox_events: OutboxEventsTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_dispatch: WebhookDispatchTable;
  owner_usage: OwnerUsageTable;
  owner_quotas: OwnerQuotasTable;
  image_variants: ImageVariantsTable;
}

export type Db = Kysely<Database>;
