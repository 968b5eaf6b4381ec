import { CompiledQuery, type Selectable } from "kysely";
import type { ImageRecord, Visibility } from "../domain/image.ts";
import type { NewImage } from "./images-repository.ts";
import type { Db, ImagesTable } from "./schema.ts";

/** What an intent with a sha256 found: the owner's ready image with those bytes, or its new row. */
export type InsertUnlessDuplicateResult =
  | { outcome: "inserted"; image: ImageRecord }
  | { outcome: "duplicate"; image: ImageRecord };

export interface DuplicateOf {
  sha256: string;
  visibility: Visibility;
}

// The dedup lookup and the insert in one statement: an intent costs one round trip instead of two
// (each a write syscall, the largest item of an intent's CPU profile). The insert runs only when
// no duplicate is found, so a dedup still consumes no Idempotency-Key. Written out rather than
// built with Kysely: the builder's AST and compilation cost more than the statement's own parsing,
// and this text never changes. The casts are needed because INSERT … SELECT infers no types for
// parameters from the target columns.
const SQL = `with dup as (
  select * from images
  where owner_id = $1 and sha256 = $2 and status = 'ready' and visibility = $3
  order by id desc limit 1
), ins as (
  insert into images (id, owner_id, status, visibility, filename, object_key, upload_method,
    declared_content_type, declared_size, declared_sha256, idempotency_key, multipart_upload_id,
    multipart_part_size, upload_expires_at, claim_required, claim_expires_at, profile,
    profile_limits, reserved_bytes)
  select $4::uuid, $1::text, 'pending', $5::text, $6::text, $7::text, $8::text,
    $9::text, $10::int8, $11::text, $12::text, $13::text,
    $14::integer, $15::timestamptz, $16::boolean, $17::timestamptz, $18::text,
    $19::text, $20::int8
  where not exists (select 1 from dup)
  returning *
)
select false as is_duplicate, ins.* from ins
union all
select true as is_duplicate, dup.* from dup`;

type Row = Selectable<ImagesTable> & { is_duplicate: boolean };

export async function insertUnlessDuplicate(
  db: Db,
  image: NewImage,
  dup: DuplicateOf,
  toRecord: (r: Selectable<ImagesTable>) => ImageRecord,
): Promise<InsertUnlessDuplicateResult> {
  const { rows } = await db.executeQuery<Row>(
    CompiledQuery.raw(SQL, [
      image.ownerId,
      dup.sha256,
      dup.visibility,
      image.id,
      image.visibility,
      image.filename,
      image.objectKey,
      image.uploadMethod,
      image.declaredContentType,
      image.declaredSize,
      image.declaredSha256,
      image.idempotencyKey,
      image.multipartUploadId,
      image.multipartPartSize,
      image.uploadExpiresAt,
      image.claimRequired ?? false,
      image.claimExpiresAt ?? null,
      image.profile ?? null,
      image.profileLimits ? JSON.stringify(image.profileLimits) : null,
      image.reservedBytes ?? image.declaredSize,
    ]),
  );
  const row = rows[0];
  if (!row) throw new Error("insert-unless-duplicate returned no row");
  const { is_duplicate, ...columns } = row;
  return { outcome: is_duplicate ? "duplicate" : "inserted", image: toRecord(columns) };
}
