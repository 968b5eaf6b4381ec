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

export interface Authorized {
  image: ImageRecord;
  /** For private images: seconds the signature is still valid (bounds Cache-Control). */
  privateTtlSeconds: number | null;
  /** The request carried a valid signature (the owner's URL): the untouched original may be served. */
  signed: boolean;
}

/** Serving bytes to anyone holding the URL: public images directly, private ones only when signed. */
export class DeliveryService {
  constructor(
    private readonly images: ImagesRepository,
    private readonly store: ObjectStore,
    private readonly secret: string,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Resolves a deliverable image or throws 404; a bad or missing signature is 404 too, never 403. */
  async authorize(imageId: string, path: string, query: { exp?: string; sig?: string }): Promise<Authorized> {
    const image = isImageId(imageId) ? await this.images.findById(imageId) : null;
    if (image?.status !== "ready") throw ERRORS.imageNotFound();
    const nowS = Math.floor(this.now() / 1000);
    const signed =
      query.sig !== undefined && verifyPathSignature(this.secret, path, query.exp, query.sig, nowS);
    if (image.visibility === "public") return { image, privateTtlSeconds: null, signed };
    if (!signed) throw ERRORS.imageNotFound();
    return { image, privateTtlSeconds: Number(query.exp) - nowS, signed };
  }

  /** Whether the image may still be served at all (a transform checks it again before storing). */
  async isDeliverable(imageId: string): Promise<boolean> {
    const image = await this.images.findById(imageId);
    return image?.status === "ready";
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
