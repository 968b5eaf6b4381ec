import { ERRORS } from "../domain/errors.ts";

interface SdkErrorShape {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

const shape = (err: unknown): SdkErrorShape => (typeof err === "object" && err !== null ? err : {});

/** The S3 error code ("NoSuchKey", "InvalidPart"…); HEAD responses have no body, so only "NotFound" etc. */
export const s3ErrorCode = (err: unknown): string | undefined => shape(err).Code ?? shape(err).name;

export const s3Status = (err: unknown): number | undefined => shape(err).$metadata?.httpStatusCode;

export const isNotFound = (err: unknown): boolean => {
  const code = s3ErrorCode(err);
  return s3Status(err) === 404 || code === "NotFound" || code === "NoSuchKey";
};

/** A conditional write lost: 412 when the object exists, 409 when a concurrent write raced it (AWS). */
export const isWriteConflict = (err: unknown): boolean => {
  const code = s3ErrorCode(err);
  return code === "PreconditionFailed" || code === "ConditionalRequestConflict" || s3Status(err) === 412;
};

/** The multipart refusals the ObjectStore contract names; anything else is rethrown unchanged. */
export function mapMultipartError(err: unknown): unknown {
  const code = s3ErrorCode(err);
  // RGW answers ListParts of an aborted or unknown upload with 404 NoSuchKey, not NoSuchUpload.
  if (s3Status(err) === 404 && code !== "NoSuchBucket") return ERRORS.noSuchUpload();
  switch (code) {
    case "InvalidPart":
      return ERRORS.invalidPart();
    case "InvalidPartOrder":
      return ERRORS.invalidPartOrder();
    case "EntityTooSmall":
      return ERRORS.entityTooSmall();
    case "EntityTooLarge":
      return ERRORS.entityTooLarge();
    default:
      return err;
  }
}
