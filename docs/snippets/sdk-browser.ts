import { createClient, type ImgupClient, type UploadResult } from "@imgup/client";

/** baseUrl: imgup's origin (list this page's origin in IMGUP_CORS_ORIGINS); "" when same-origin. */
export function connect(baseUrl: string, token: string | (() => Promise<string>)): ImgupClient {
  return createClient({ baseUrl, token });
}

/** Uploads a picked File, showing progress; keepSeparate: a new image even for bytes seen before. */
export async function uploadPicked(
  client: ImgupClient,
  file: File,
  bar: HTMLProgressElement,
  keepSeparate = false,
): Promise<UploadResult> {
  const result = await client.upload(file, {
    dedup: !keepSeparate,
    onProgress: ({ phase, loaded, total }) => {
      bar.value = phase === "processing" ? 1 : loaded / Math.max(total, 1);
    },
  });
  if (result.deduplicated) {
    // The same image (same id) an earlier upload made: deleting it deletes it for both.
    console.info(`imgup already had these bytes as ${result.image.id}`);
  }
  return result;
}

/** A thumbnail you can draw into a canvas: public images are served with CORS to your origin. */
export async function showThumb(client: ImgupClient, result: UploadResult): Promise<HTMLImageElement> {
  const img = new Image();
  img.crossOrigin = "anonymous";
  img.src = await client.url(result.image, "thumb");
  await img.decode();
  return img;
}
