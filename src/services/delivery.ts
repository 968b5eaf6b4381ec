import type { Readable } from "node:stream";
import type { Logger } from "pino";
import type { ImagesRepository } from "../db/images-repository.ts";
import { ERRORS } from "../domain/errors.ts";
import type { ImageRecord } from "../domain/image.ts";
import { isImageId, publicOriginalKey } from "../domain/keys.ts";
import { verifyPathSignature } from "../domain/url-signature.ts";
import {
  type ByteRange,
  type ObjectHead,
  type ObjectStore,
  RangeNotSatisfiableError,
} from "../storage/object-store.ts";
import type { HotVariants } from "./hot-variants.ts";
import type { ImageRecordCache } from "./image-record-cache.ts";

export interface Authorized {
  image: ImageRecord;
  /** For private images: seconds the signature is still valid (bounds Cache-Control). */
  privateTtlSeconds: number | null;
  /** The request carried a valid signature (the owner's URL): the untouched original may be served. */
  signed: boolean;
}

/** What makes a cached hit cheap; each is optional (absent: the database and the storage every time). */
export interface DeliveryCaches {
  /** Image records checked against versions in the shared KV per lookup. */
  records?: ImageRecordCache;
  /** Bytes of small hot variants. */
  hot?: HotVariants;
  /** S3: hits on public images' variants answered with a 302 to a presigned GET of the bucket. */
  redirect?: { store: PresignedReads; ttlSeconds: number };
}

export interface PresignedReads {
  presignGet(key: string, expiresInSeconds: number): Promise<string>;
}

/** A stored variant: its bytes, or where the client fetches them itself. */
export type OpenedVariant =
  | { body: Buffer | Readable; size: number; redirect?: undefined }
  | { redirect: { location: string; maxAgeSeconds: number } };

/** Variant keys seen in the bucket and their current redirect target, bounded. */
const MAX_REDIRECTS = 100_000;

/** Serving bytes to anyone holding the URL: public images directly, private ones only when signed. */
export class DeliveryService {
  constructor(
    private readonly images: ImagesRepository,
    private readonly store: ObjectStore,
    private readonly secret: string,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly caches: DeliveryCaches = {},
  ) {}

  private readonly redirects = new Map<string, { location: string; until: number }>();

  /** Resolves a deliverable image or throws 404; a bad or missing signature is 404 too, never 403. */
  async authorize(imageId: string, path: string, query: { exp?: string; sig?: string }): Promise<Authorized> {
    const image = isImageId(imageId) ? await this.lookup(imageId) : null;
    // A held image (awaiting moderation) is served like a private one: only with its owner's signature.
    const held = image?.status === "held";
    if (image?.status !== "ready" && !held) throw ERRORS.imageNotFound();
    const nowS = Math.floor(this.now() / 1000);
    const signed =
      query.sig !== undefined && verifyPathSignature(this.secret, path, query.exp, query.sig, nowS);
    if (image.visibility === "public" && !held) return { image, privateTtlSeconds: null, signed };
    if (!signed) throw ERRORS.imageNotFound();
    return { image, privateTtlSeconds: Number(query.exp) - nowS, signed };
  }

  /**
   * A stored variant's bytes (an authorized image's), from memory when it is small and hot; null
   * when the storage has none.
   */
  async openVariant(key: string, auth?: Authorized): Promise<OpenedVariant | null> {
    const hot = this.caches.hot;
    const held = hot?.get(key);
    if (held) return { body: held, size: held.length };
    // Only a public image's, and only once this instance saw the object: a URL to a missing object
    // would be the bucket's 404 (or 403), not a variant made on demand.
    const redirect = auth?.image.visibility === "public" ? await this.redirectTo(key) : null;
    if (redirect) return { redirect };
    const obj = await this.store.getStream(key);
    if (!obj) return null;
    if (this.caches.redirect && !this.redirects.has(key)) this.rememberRedirect(key, "", 0);
    if (!hot?.enabled || obj.head.size > hot.maxEntryBytes) return { body: obj.body, size: obj.head.size };
    const data = await readAll(obj.body);
    hot.set(key, data);
    return { body: data, size: data.length };
  }

  /** The redirect for a key seen in the bucket; the presigned URL is reused for half its lifetime. */
  private async redirectTo(key: string): Promise<{ location: string; maxAgeSeconds: number } | null> {
    const opts = this.caches.redirect;
    const seen = opts && this.redirects.get(key);
    if (!opts || !seen) return null;
    const nowMs = this.now();
    const half = Math.floor(opts.ttlSeconds / 2);
    if (seen.until > nowMs)
      return { location: seen.location, maxAgeSeconds: Math.floor((seen.until - nowMs) / 1000) };
    const location = await opts.store.presignGet(key, opts.ttlSeconds);
    this.rememberRedirect(key, location, nowMs + half * 1000);
    return { location, maxAgeSeconds: half };
  }

  private rememberRedirect(key: string, location: string, until: number): void {
    this.redirects.delete(key);
    this.redirects.set(key, { location, until });
    if (this.redirects.size > MAX_REDIRECTS) {
      const oldest = this.redirects.keys().next().value;
      if (oldest !== undefined) this.redirects.delete(oldest);
    }
  }

  private lookup(imageId: string): Promise<ImageRecord | null> {
    return this.caches.records ? this.caches.records.get(imageId) : this.images.findById(imageId);
  }

  /**
   * Whether the image may still be served at all (a transform checks it again before storing):
   * always the database, never a cached record.
   */
  async isDeliverable(imageId: string): Promise<boolean> {
    const image = await this.images.findById(imageId);
    return image?.status === "ready" || image?.status === "held";
  }

  /**
   * Opens the original's bytes of an authorized image: for an unsigned request the copy without
   * location and authorship metadata when processing made one (the upload carried some).
   */
  async openOriginal(
    auth: Authorized,
    range?: ByteRange,
  ): Promise<{ head: ObjectHead; body: Readable; stripped: boolean; span?: { start: number; end: number } }> {
    const { image } = auth;
    // A range is cut by the storage (S3 GetObject's Range), never by reading past what is wanted.
    const open = async (key: string) => {
      if (!range) return this.store.getStream(key);
      const read = await this.store.getRange(key, range).catch((err: unknown) => {
        if (!(err instanceof RangeNotSatisfiableError)) throw err;
        throw ERRORS.rangeNotSatisfiable(err.message, {
          headers: { "Content-Range": `bytes */${err.size}` },
        });
      });
      return read && { head: read.head, body: read.body, span: { start: read.start, end: read.end } };
    };
    if (!auth.signed) {
      const copy = await open(publicOriginalKey(image.id));
      if (copy) return { ...copy, stripped: true };
    }
    const obj = await open(image.objectKey);
    if (!obj) {
      this.log.error({ imageId: image.id, key: image.objectKey }, "ready image has no original object");
      throw ERRORS.imageNotFound();
    }
    return { ...obj, stripped: false };
  }
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}
