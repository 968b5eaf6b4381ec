import { sql } from "kysely";
import type { ImageRecord, ImageStatus } from "../domain/image.ts";
import { toRecord } from "./images-repository.ts";
import { outboxFrom, writeOutboxEvent } from "./outbox.ts";
import type { Db } from "./schema.ts";

/** Images that may still be claimed: a claim on a pending or processing image holds once it is ready. */
export const CLAIMABLE: readonly ImageStatus[] = ["pending", "processing", "ready", "held"];
/** What the expiry deletes: finished, unclaimed, past the deadline. */
const EXPIRABLE: readonly ImageStatus[] = ["ready", "rejected", "held"];

export type ClaimResult =
  /** Claimed now, or already claimed with the same reference (or none asked). */
  | { outcome: "claimed"; image: ImageRecord; changed: boolean }
  | { outcome: "not_found" }
  /** rejected or expired: nothing to keep. */
  | { outcome: "not_claimable"; image: ImageRecord }
  /** Already claimed under another reference. */
  | { outcome: "ref_conflict"; image: ImageRecord };

export interface ExpiredImage {
  id: string;
  ownerId: string;
  multipartUploadId: string | null;
}

export interface ClaimsRepository {
  /** Claims the owner's image, setting `ref` when given; conditional, so it races the expiry cleanly. */
  claim(id: string, ownerId: string, ref: string | null): Promise<ClaimResult>;
  /** Other live images of the owner holding `ref` (what `replace` deletes). */
  holdersOfRef(ownerId: string, ref: string, exceptId: string): Promise<string[]>;
  /** Unclaimed finished images past their deadline, marked deleted (up to limit); their objects remain. */
  expireUnclaimed(now: Date, limit: number): Promise<ExpiredImage[]>;
  /** What expireUnclaimed would take (dry runs). */
  unclaimedDue(now: Date, limit: number): Promise<ExpiredImage[]>;
}

/**
 * Claim or expire, apart from ImagesRepository: both are conditional updates on the images table.
 * A claim requires a live status; the expiry requires no claim. Under READ COMMITTED PostgreSQL
 * re-checks each WHERE against the row the other committed, so exactly one of them wins and a
 * claimed image is never deleted by the expiry.
 */
export class KyselyClaimsRepository implements ClaimsRepository {
  constructor(private readonly db: Db) {}

  async claim(id: string, ownerId: string, ref: string | null): Promise<ClaimResult> {
    // The claim and its image.claimed event commit together (the outbox).
    const row = await this.db.transaction().execute(async (trx) => {
      const claimed = await trx
        .updateTable("images")
        .set({
          claimed_at: sql`coalesce(claimed_at, now())`,
          claim_expires_at: null,
          ref: sql`coalesce(${ref}::text, ref)`,
          updated_at: new Date(),
        })
        .where("id", "=", id)
        .where("owner_id", "=", ownerId)
        .where("status", "in", [...CLAIMABLE])
        // Only what changes something: a first claim, or a reference added to a claim without one.
        .where((eb) =>
          ref === null
            ? eb("claimed_at", "is", null)
            : eb.or([eb("claimed_at", "is", null), eb("ref", "is", null)]),
        )
        .returningAll()
        .executeTakeFirst();
      if (claimed) await writeOutboxEvent(trx, "image.claimed", claimed);
      return claimed;
    });
    if (row) return { outcome: "claimed", image: toRecord(row), changed: true };
    const current = await this.db
      .selectFrom("images")
      .selectAll()
      .where("id", "=", id)
      .where("owner_id", "=", ownerId)
      .executeTakeFirst();
    if (!current || current.status === "deleted") return { outcome: "not_found" };
    const image = toRecord(current);
    if (!CLAIMABLE.includes(image.status)) return { outcome: "not_claimable", image };
    // Claimed already: the same reference again (or none asked) is the same claim.
    if (ref === null || image.ref === ref) return { outcome: "claimed", image, changed: false };
    return { outcome: "ref_conflict", image };
  }

  async holdersOfRef(ownerId: string, ref: string, exceptId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom("images")
      .select("id")
      .where("owner_id", "=", ownerId)
      .where("ref", "=", ref)
      .where("id", "!=", exceptId)
      .where("status", "!=", "deleted")
      .execute();
    return rows.map((r) => r.id);
  }

  async expireUnclaimed(now: Date, limit: number): Promise<ExpiredImage[]> {
    // The conditions are repeated outside the sub-select: they are what a concurrent claim's commit
    // is checked against.
    // Each deleted image's image.expired event is written by the same statement (the outbox).
    const r = await sql<{ id: string; owner_id: string; multipart_upload_id: string | null }>`
      with moved as (
      update images set status = 'deleted', deleted_at = ${now}, updated_at = ${now}
      where id in (
        select id from images
        where claim_required and claimed_at is null and status in ('ready', 'rejected', 'held')
          and claim_expires_at < ${now}
        order by claim_expires_at
        limit ${limit}
      )
        and claim_required and claimed_at is null and status in ('ready', 'rejected', 'held')
        and claim_expires_at < ${now}
      returning *
      ), ${outboxFrom("moved", "image.expired")}
      select id, owner_id, multipart_upload_id from moved
    `.execute(this.db);
    return r.rows.map(toExpired);
  }

  async unclaimedDue(now: Date, limit: number): Promise<ExpiredImage[]> {
    const rows = await this.db
      .selectFrom("images")
      .select(["id", "owner_id", "multipart_upload_id"])
      .where("claim_required", "=", true)
      .where("claimed_at", "is", null)
      .where("status", "in", [...EXPIRABLE])
      .where("claim_expires_at", "<", now)
      .orderBy("claim_expires_at")
      .limit(limit)
      .execute();
    return rows.map(toExpired);
  }
}

function toExpired(r: { id: string; owner_id: string; multipart_upload_id: string | null }): ExpiredImage {
  return { id: r.id, ownerId: r.owner_id, multipartUploadId: r.multipart_upload_id };
}
