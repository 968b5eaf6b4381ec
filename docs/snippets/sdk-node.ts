import { openAsBlob } from "node:fs";
import { createClient, type ImageView, ImgupError, UploadRejectedError } from "@imgup/client";

const client = createClient({
  baseUrl: process.env.IMGUP_URL ?? "http://localhost:8080",
  // A function is asked before every request: hand out a fresh JWT here if you mint them.
  token: () => process.env.IMGUP_API_KEY ?? "",
});

/** Stores a user's photo; each record of yours gets its own image (and its own delete). */
export async function storePhoto(path: string, type: string): Promise<ImageView> {
  const file = await openAsBlob(path, { type });
  try {
    const { image } = await client.upload(file, {
      dedup: false,
      visibility: "private",
      signal: AbortSignal.timeout(120_000),
    });
    return image;
  } catch (err) {
    if (err instanceof UploadRejectedError) throw new Error(`not accepted: ${err.reason}`);
    if (err instanceof ImgupError && err.code === "network_error") throw new Error(err.detail);
    throw err;
  }
}

/** A signed, expiring link to a private image (fresh on every call). */
export async function linkTo(image: ImageView): Promise<string> {
  return client.url(image, "w_800,h_600,fit_cover");
}
