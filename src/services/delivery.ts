import type { Readable } from "node:stream";
import type { Logger } from "pino";
import type { ImagesRepository } from "../db/images-repository.ts";
import { ERRORS } from "../domain/errors.ts";
import type { ImageRecord } from "../domain/image.ts";
import { isImageId } from "../domain/keys.ts";
import { verifyPathSignature } from "../domain/url-signature.ts";
import type { ObjectHead, ObjectStore } from "../storage/object-store.ts";

export interface Authorized {
  image: ImageRecord;
  /** For private images: seconds the signature is still valid (bounds Cache-Control). */
  privateTtlSeconds: number | null;
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
    if (image.visibility === "public") return { image, privateTtlSeconds: null };
    const nowS = Math.floor(this.now() / 1000);
    if (!verifyPathSignature(this.secret, path, query.exp, query.sig, nowS)) throw ERRORS.imageNotFound();
    return { image, privateTtlSeconds: Number(query.exp) - nowS };
  }

  /** Whether the image may still be served at all (a transform checks it again before storing). */
  async isDeliverable(imageId: string): Promise<boolean> {
    const image = await this.images.findById(imageId);
    return image?.status === "ready";
  }

  /** Opens the original's bytes of an authorized image. */
  async openOriginal(image: ImageRecord): Promise<{ head: ObjectHead; body: Readable }> {
    const obj = await this.store.getStream(image.objectKey);
    if (!obj) {
      this.log.error({ imageId: image.id, key: image.objectKey }, "ready image has no original object");
      throw ERRORS.imageNotFound();
    }
    return obj;
  }
}
