import type { ImageRecord, ImageStatus, RejectReason, Visibility } from "../domain/image.ts";
import { signPath } from "../domain/url-signature.ts";

/** The public JSON shape of an image. Owner-only fields are fine: only the owner ever sees it. */
export interface ImageView {
  id: string;
  status: ImageStatus;
  visibility: Visibility;
  filename: string;
  contentType: string | null;
  size: number | null;
  width: number | null;
  height: number | null;
  format: string | null;
  sha256: string | null;
  placeholder: string | null;
  rejectReason: RejectReason | null;
  rejectDetail: string | null;
  createdAt: string;
  readyAt: string | null;
  /** Claim or expire: whether a claim is required, made, and until when an unclaimed image lives. */
  claimRequired: boolean;
  claimed: boolean;
  claimExpiresAt: string | null;
  ref: string | null;
  profile: string | null;
  urls: { original: string; source: string; presets: Record<string, string> } | null;
}

export interface UrlBuilder {
  publicUrl: string;
  secret: string;
  privateUrlTtlSeconds: number;
  now: () => number;
  presetNames: readonly string[];
}

export function originalPath(imageId: string): string {
  return `/i/${imageId}/original`;
}

/** Public images get a plain URL; private ones an expiring signed URL for the owner. */
export function deliveryUrl(image: ImageRecord, path: string, urls: UrlBuilder): string {
  if (image.visibility === "public") return `${urls.publicUrl}${path}`;
  const exp = Math.floor(urls.now() / 1000) + urls.privateUrlTtlSeconds;
  return `${urls.publicUrl}${path}?exp=${exp}&sig=${signPath(urls.secret, path, exp)}`;
}

/** Always signed: the untouched upload, metadata included, for its owner (and whom they share it with). */
export function sourceUrl(image: ImageRecord, urls: UrlBuilder): string {
  return deliveryUrl({ ...image, visibility: "private" }, originalPath(image.id), urls);
}

/** Until processing has looked at the bytes, the best the owner can be told is what was declared. */
const UNVERIFIED: readonly ImageStatus[] = ["pending", "processing", "expired"];
/** What a proxy upload declares when the client named no type: no type at all. */
const UNTYPED = "application/octet-stream";

export function toImageView(image: ImageRecord, urls: UrlBuilder): ImageView {
  const declared = UNVERIFIED.includes(image.status);
  return {
    id: image.id,
    status: image.status,
    visibility: image.visibility,
    filename: image.filename,
    contentType:
      image.contentType ??
      (declared && image.declaredContentType !== UNTYPED ? image.declaredContentType : null),
    // A chunked proxy upload declares no length (recorded as 0): unknown, not empty.
    size: image.size ?? (declared && image.declaredSize > 0 ? image.declaredSize : null),
    width: image.width,
    height: image.height,
    format: image.format,
    sha256: image.sha256,
    placeholder: image.placeholder,
    rejectReason: image.rejectReason,
    rejectDetail: image.rejectDetail,
    createdAt: image.createdAt.toISOString(),
    readyAt: image.readyAt?.toISOString() ?? null,
    claimRequired: image.claimRequired,
    claimed: image.claimedAt !== null,
    claimExpiresAt: image.claimedAt === null ? (image.claimExpiresAt?.toISOString() ?? null) : null,
    ref: image.ref,
    profile: image.profile,
    urls:
      image.status === "ready"
        ? ownerUrls(image, urls)
        : image.status === "held"
          ? // Awaiting moderation: only signed URLs, which only its owner is given, serve it.
            ownerUrls({ ...image, visibility: "private" }, urls)
          : null,
  };
}

/** The urls of a view (ready or held): originals and presets. */
function ownerUrls(image: ImageRecord, urls: UrlBuilder): NonNullable<ImageView["urls"]> {
  return {
    original: deliveryUrl(image, originalPath(image.id), urls),
    source: sourceUrl(image, urls),
    presets: Object.fromEntries(
      urls.presetNames.map((name) => [name, deliveryUrl(image, `/i/${image.id}/${name}`, urls)]),
    ),
  };
}
