import { thumbHashToDataURL } from "thumbhash";

/** A ThumbHash (base64, from the image's metadata) as a tiny data: URL shown until the thumbnail loads. */
export function placeholderUrl(thumbhash: string | null): string | null {
  if (!thumbhash) return null;
  try {
    const bytes = Uint8Array.from(atob(thumbhash), (c) => c.charCodeAt(0));
    return thumbHashToDataURL(bytes);
  } catch {
    return null;
  }
}
