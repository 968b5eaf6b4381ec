import { ERRORS } from "../domain/errors.ts";
import type { ImageRecord } from "../domain/image.ts";
import { deliveryUrl, type UrlBuilder } from "./image-view.ts";
import { transformUrl } from "./transform-urls.ts";

/**
 * An on-the-fly variant URL of the owner's image: the transform signature (so only specs imgup
 * signed are rendered) and, for a private image, the owner's expiring `exp`/`sig` on that path.
 * Throws invalid_spec for a bad spec, image_not_ready unless the image is ready.
 */
export function ownerTransformUrl(
  image: ImageRecord,
  specText: string,
  urls: UrlBuilder,
  transformKey: string,
): string {
  // With an empty base the transform URL is its path, which is what a private signature covers.
  const path = transformUrl("", transformKey, specText, image.id);
  // Held (awaiting moderation): served to its owner only, so always signed.
  if (image.status === "held") return deliveryUrl({ ...image, visibility: "private" }, path, urls);
  if (image.status !== "ready") throw ERRORS.imageNotReady(`image ${image.id} is ${image.status}`);
  return deliveryUrl(image, path, urls);
}
