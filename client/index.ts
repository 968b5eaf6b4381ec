/** imgup's client SDK (`imgup/client`): browsers and Node >= 20. */
export { createClient } from "./client.ts";
export { ImgupError, UploadRejectedError } from "./errors.ts";
export type { AbortSignalLike, BlobLike, FetchInit, FetchLike, ResponseLike } from "./platform.ts";
export type {
  ClaimOptions,
  ImagePage,
  ImageStatus,
  ImageView,
  ImgupClient,
  ImgupClientOptions,
  RejectReason,
  UploadOptions,
  UploadProgress,
  UploadResult,
  Visibility,
} from "./types.ts";
export {
  type AwsS3Part,
  type ImgupUppyOptions,
  type UppyAdapterOptions,
  type UppyFileLike,
  uppyAwsS3Options,
} from "./uppy.ts";
export type { PresignableRequest, PresignedResponse } from "./uppy-sign-request.ts";
export {
  type VerifyWebhookOptions,
  verifyWebhook,
  type WebhookEvent,
  type WebhookHeaders,
  type WebhookVerificationCode,
  WebhookVerificationError,
} from "./webhooks.ts";
