import { sql } from "kysely";
import type { ImageStatus } from "../domain/image.ts";
import { outboxFrom } from "./outbox.ts";
import type { Db } from "./schema.ts";

/** The image's processing job as the repair jobs see it (null when there is none). */
export interface ProcessJobState {
  status: "queued" | "running" | "done" | "dead";
  /** How many times the reconciler already put it back (payload.repairs). */
  repairs: number;
}

export interface LapsedPendingRow {
  id: string;
  ownerId: string;
  objectKey: string;
  multipartUploadId: string | null;
  uploadExpiresAt: Date;
  job: ProcessJobState | null;
}

export interface PendingWithoutJobRow {
  id: string;
  createdAt: Date;
}

export interface StuckProcessingRow {
  id: string;
  ownerId: string;
  /** null: no job; "running": its lease lapsed long ago and no worker took it over. */
  job: ProcessJobState | null;
}

export interface OwnerRow {
  id: string;
  status: ImageStatus;
  objectKey: string;
  multipartUploadId: string | null;
}

export interface Cursor {
  expiresAt: Date;
  id: string;
}

interface JobColumns {
  job_status: string | null;
  job_payload: unknown;
}

/**
 * Queries of the consistency jobs (reconciler, sweep, doctor, purge). Kept apart from
 * ImagesRepository: none of it is on a request path, and several read the jobs table too.
 * `processKeyPrefix` is the job key of an image without its id ("process:").
 */
export class MaintenanceRepository {
  constructor(
    private readonly db: Db,
    private readonly processKeyPrefix: string,
  ) {}

  /** Pending past `before` whose processing job is not already on its way, oldest first. */
  async lapsedPending(before: Date, limit: number, after?: Cursor): Promise<LapsedPendingRow[]> {
    const from = after ?? { expiresAt: new Date(0), id: "00000000-0000-0000-0000-000000000000" };
    const r = await sql<
      JobColumns & {
        id: string;
        owner_id: string;
        object_key: string;
        multipart_upload_id: string | null;
        upload_expires_at: Date;
      }
    >`
      select i.id, i.owner_id, i.object_key, i.multipart_upload_id, i.upload_expires_at,
             j.status as job_status, j.payload as job_payload
      from images i left join jobs j on j.key = ${this.processKeyPrefix} || i.id::text
      where i.status = 'pending' and i.upload_expires_at < ${before}
        and (i.upload_expires_at, i.id) > (${from.expiresAt}::timestamptz, ${from.id}::uuid)
        and (j.status is null or j.status in ('done', 'dead'))
      order by i.upload_expires_at, i.id
      limit ${limit}
    `.execute(this.db);
    return r.rows.map((row) => ({
      id: row.id,
      ownerId: row.owner_id,
      objectKey: row.object_key,
      multipartUploadId: row.multipart_upload_id,
      uploadExpiresAt: new Date(row.upload_expires_at),
      job: jobState(row),
    }));
  }

  /**
   * Processing since before `before` with nobody working on it: no job, a finished or dead one, or a
   * running one whose lease lapsed before `before` (no live worker reclaimed it).
   */
  async stuckProcessing(before: Date, limit: number): Promise<StuckProcessingRow[]> {
    const r = await sql<JobColumns & { id: string; owner_id: string }>`
      select i.id, i.owner_id, j.status as job_status, j.payload as job_payload
      from images i left join jobs j on j.key = ${this.processKeyPrefix} || i.id::text
      where i.status = 'processing' and i.updated_at < ${before}
        and (j.status is null or j.status in ('done', 'dead')
             or (j.status = 'running' and j.locked_until < ${before}))
      order by i.updated_at
      limit ${limit}
    `.execute(this.db);
    return r.rows.map((row) => ({ id: row.id, ownerId: row.owner_id, job: jobState(row) }));
  }

  /**
   * Pending images created before `before` with no processing job at all (no event ever reached the
   * queue for them), oldest first. Index images_status_expires_idx: expiry order is creation order.
   */
  async pendingWithoutJob(before: Date, limit: number): Promise<PendingWithoutJobRow[]> {
    const r = await sql<{ id: string; created_at: Date }>`
      select i.id, i.created_at
      from images i left join jobs j on j.key = ${this.processKeyPrefix} || i.id::text
      where i.status = 'pending' and i.created_at < ${before} and j.key is null
      order by i.upload_expires_at, i.id
      limit ${limit}
    `.execute(this.db);
    return r.rows.map((row) => ({ id: row.id, createdAt: new Date(row.created_at) }));
  }

  /** Counts for the doctor, with the same conditions as lapsedPending and stuckProcessing. */
  async stuckCounts(
    pendingBefore: Date,
    processingBefore: Date,
  ): Promise<{ pending: number; multipart: number; processing: number }> {
    const r = await sql<{ pending: number; multipart: number; processing: number }>`
      select
        (count(*) filter (where i.status = 'pending' and i.multipart_upload_id is null
          and i.upload_expires_at < ${pendingBefore} and (j.status is null or j.status in ('done', 'dead'))))::int
          as pending,
        (count(*) filter (where i.status = 'pending' and i.multipart_upload_id is not null
          and i.upload_expires_at < ${pendingBefore} and (j.status is null or j.status in ('done', 'dead'))))::int
          as multipart,
        (count(*) filter (where i.status = 'processing' and i.updated_at < ${processingBefore}
          and (j.status is null or j.status in ('done', 'dead')
               or (j.status = 'running' and j.locked_until < ${processingBefore}))))::int as processing
      from images i left join jobs j on j.key = ${this.processKeyPrefix} || i.id::text
      where i.status in ('pending', 'processing')
    `.execute(this.db);
    const row = r.rows[0];
    return { pending: row?.pending ?? 0, multipart: row?.multipart ?? 0, processing: row?.processing ?? 0 };
  }

  /** pending -> expired, only while still pending; image.expired in the same statement. */
  async expire(id: string): Promise<boolean> {
    const r = await sql<{ id: string }>`
      with moved as (
        update images set status = 'expired', updated_at = now()
        where id = ${id} and status = 'pending'
        returning *
      ), ${outboxFrom("moved", "image.expired")}
      select id from moved
    `.execute(this.db);
    return r.rows.length > 0;
  }

  async statuses(ids: readonly string[]): Promise<Map<string, ImageStatus>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db
      .selectFrom("images")
      .select(["id", "status"])
      .where("id", "in", [...new Set(ids)])
      .execute();
    return new Map(rows.map((r) => [r.id, r.status as ImageStatus]));
  }

  /** Object keys of ready rows in (after, upTo], in the storage's bytewise order; null bounds are open. */
  async readyKeysBetween(after: string | null, upTo: string | null, limit: number): Promise<string[]> {
    const r = await sql<{ object_key: string }>`
      select object_key from images
      where status in ('ready', 'held')
        and (${after}::text is null or object_key collate "C" > ${after})
        and (${upTo}::text is null or object_key collate "C" <= ${upTo})
      order by object_key collate "C"
      limit ${limit}
    `.execute(this.db);
    return r.rows.map((row) => row.object_key);
  }

  async findForDeletion(id: string): Promise<OwnerRow | null> {
    const row = await this.db
      .selectFrom("images")
      .select(["id", "status", "object_key", "multipart_upload_id"])
      .where("id", "=", id)
      .executeTakeFirst();
    return row ? toOwnerRow(row) : null;
  }

  async countOwner(ownerId: string): Promise<number> {
    const row = await this.db
      .selectFrom("images")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("owner_id", "=", ownerId)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /** Marks up to `limit` of the owner's rows deleted; returns how many it marked (0: none left). */
  async markOwnerDeleted(ownerId: string, limit: number): Promise<number> {
    const r = await sql<{ id: string }>`
      with moved as (
        update images set status = 'deleted', deleted_at = now(), updated_at = now()
        where id in (
          select id from images where owner_id = ${ownerId} and status <> 'deleted' order by id limit ${limit}
        ) and status <> 'deleted'
        returning *
      ), ${outboxFrom("moved", "image.deleted")}
      select id from moved
    `.execute(this.db);
    return r.rows.length;
  }

  /** The owner's rows after `afterId` in id order, whatever their status. */
  async ownerRows(ownerId: string, afterId: string | null, limit: number): Promise<OwnerRow[]> {
    let q = this.db
      .selectFrom("images")
      .select(["id", "status", "object_key", "multipart_upload_id"])
      .where("owner_id", "=", ownerId)
      .orderBy("id")
      .limit(limit);
    if (afterId) q = q.where("id", ">", afterId);
    return (await q.execute()).map(toOwnerRow);
  }

  async markDeleted(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const r = await sql<{ id: string }>`
      with moved as (
        update images set status = 'deleted', deleted_at = now(), updated_at = now()
        where id in (${sql.join([...ids])}) and status <> 'deleted'
        returning *
      ), ${outboxFrom("moved", "image.deleted")}
      select id from moved
    `.execute(this.db);
    return r.rows.length;
  }

  /** Removes rows for good, only those already marked deleted (their objects are gone). */
  async removeDeleted(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const r = await this.db
      .deleteFrom("images")
      .where("id", "in", [...ids])
      .where("status", "=", "deleted")
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}

function jobState(row: JobColumns): ProcessJobState | null {
  if (!row.job_status) return null;
  const payload = typeof row.job_payload === "string" ? JSON.parse(row.job_payload) : row.job_payload;
  const repairs = Number((payload as { repairs?: unknown } | null)?.repairs ?? 0);
  return {
    status: row.job_status as ProcessJobState["status"],
    repairs: Number.isFinite(repairs) ? repairs : 0,
  };
}

function toOwnerRow(r: {
  id: string;
  status: string;
  object_key: string;
  multipart_upload_id: string | null;
}): OwnerRow {
  return {
    id: r.id,
    status: r.status as ImageStatus,
    objectKey: r.object_key,
    multipartUploadId: r.multipart_upload_id,
  };
}
