import { createClient, type ImageView, uppyAwsS3Options } from "@imgup/client";
import AwsS3 from "@uppy/aws-s3";
import Uppy from "@uppy/core";
import Dashboard from "@uppy/dashboard";
// Without Uppy's CSS the Dashboard renders as unstyled, unusable markup.
import "@uppy/core/css/style.min.css";
import "@uppy/dashboard/css/style.min.css";

export function mountUploader(
  target: HTMLElement,
  baseUrl: string,
  token: string,
  onReady: (image: ImageView) => void,
): Uppy {
  const client = createClient({ baseUrl, token });
  const imgup = uppyAwsS3Options(client, { visibility: "public" });
  const uppy = new Uppy({ restrictions: { allowedFileTypes: ["image/*"] } })
    .use(Dashboard, { inline: true, target, proudlyDisplayPoweredByUppy: false })
    .use(AwsS3, imgup);
  // Uppy is done once the bytes are stored; imgup then validates them: wait for ready (or rejected).
  uppy.on("upload-success", (file) => {
    if (!file) return;
    imgup.waitForReady(file).then(onReady, (err: unknown) => uppy.info(String(err), "error"));
  });
  return uppy;
}
