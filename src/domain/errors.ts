/**
 * Typed errors with an HTTP status and a stable machine-readable code.
 * The HTTP layer renders them as application/problem+json; nothing else maps errors to statuses.
 */
export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly headers: Record<string, string>;
  readonly extra: Record<string, unknown>;

  constructor(opts: {
    status: number;
    code: string;
    title: string;
    detail?: string;
    headers?: Record<string, string>;
    extra?: Record<string, unknown>;
    cause?: unknown;
  }) {
    super(opts.detail ?? opts.title, { cause: opts.cause });
    this.name = "AppError";
    this.status = opts.status;
    this.code = opts.code;
    this.title = opts.title;
    this.headers = opts.headers ?? {};
    this.extra = opts.extra ?? {};
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}

const make =
  (status: number, code: string, title: string) =>
  (detail?: string, extra?: { headers?: Record<string, string>; extra?: Record<string, unknown> }) =>
    new AppError({ status, code, title, detail, headers: extra?.headers, extra: extra?.extra });

/** The catalogue of errors the API can return. Codes are part of the public contract: never rename one. */
export const ERRORS = {
  validation: make(400, "validation_failed", "The request is not valid"),
  invalidCursor: make(400, "invalid_cursor", "The pagination cursor is not valid"),
  unauthenticated: make(401, "unauthenticated", "Authentication is required"),
  invalidToken: make(401, "invalid_token", "The bearer token is not valid"),
  forbidden: make(403, "forbidden", "The credentials do not allow this"),
  notFound: make(404, "not_found", "Not found"),
  methodNotAllowed: make(405, "method_not_allowed", "The method is not allowed on this resource"),
  imageNotFound: make(404, "image_not_found", "No such image"),
  presetNotFound: make(404, "preset_not_found", "No such preset"),
  invalidSignature: make(403, "invalid_signature", "The URL signature is not valid"),
  conflict: make(409, "conflict", "The resource is in a state that does not allow this"),
  imageNotReady: make(409, "image_not_ready", "The image is not ready yet"),
  uploadIncomplete: make(409, "upload_incomplete", "The upload has not reached the storage"),
  payloadTooLarge: make(413, "payload_too_large", "The payload is larger than allowed"),
  rangeNotSatisfiable: make(416, "range_not_satisfiable", "The range starts past the end of the content"),
  unsupportedMediaType: make(415, "unsupported_media_type", "This media type is not accepted"),
  unprocessable: make(422, "unprocessable", "The request cannot be processed"),
  invalidSpec: make(400, "invalid_spec", "The transform spec is not valid"),
  unprocessableImage: make(422, "unprocessable_image", "The image cannot be decoded or processed"),
  hashMismatch: make(422, "hash_mismatch", "The body does not match the declared SHA-256"),
  invalidIdempotencyKey: make(400, "invalid_idempotency_key", "The Idempotency-Key header is not valid"),
  idempotencyInProgress: make(
    409,
    "idempotency_request_in_progress",
    "A request with this Idempotency-Key is running",
  ),
  idempotencyKeyReused: make(
    422,
    "idempotency_key_reused",
    "The Idempotency-Key was used with another request",
  ),
  rateLimited: make(429, "rate_limited", "Too many requests"),
  unavailable: make(503, "service_unavailable", "The service is temporarily unavailable"),
  invalidEvent: make(400, "invalid_event", "The storage event is not valid"),
  // One code, two statuses: 413 when the bytes would exceed the owner's quota, 403 for the image count.
  quotaExceededBytes: make(413, "quota_exceeded", "The owner's storage quota would be exceeded"),
  quotaExceededImages: make(403, "quota_exceeded", "The owner's image quota would be exceeded"),

  // Errors of the embedded storage's signed upload URLs; they mirror what S3 refuses.
  signatureMismatch: make(403, "signature_mismatch", "The upload URL signature does not match"),
  urlExpired: make(403, "url_expired", "The upload URL has expired"),
  contentTypeMismatch: make(403, "content_type_mismatch", "Content-Type differs from the signed one"),
  contentLengthMismatch: make(403, "content_length_mismatch", "Content-Length differs from the signed one"),
  lengthRequired: make(411, "length_required", "Content-Length is required"),
  objectExists: make(409, "object_exists", "An object already exists at this key"),
  checksumMismatch: make(400, "checksum_mismatch", "The body does not match the signed checksum"),
  incompleteBody: make(400, "incomplete_body", "The body ended before Content-Length bytes"),
  bodyTimeout: make(408, "body_timeout", "The request body did not arrive in time"),
  bodyTooSlow: make(408, "body_too_slow", "The request body arrived too slowly"),
  entityTooLarge: make(400, "entity_too_large", "The upload is larger than the maximum allowed size"),
  entityTooSmall: make(400, "entity_too_small", "The upload is smaller than the minimum allowed size"),
  policyConditionFailed: make(403, "policy_condition_failed", "The form does not satisfy the signed policy"),
  invalidPart: make(400, "invalid_part", "A listed part was not uploaded or its ETag does not match"),
  invalidPartOrder: make(400, "invalid_part_order", "The parts are not in ascending part number order"),
  noSuchUpload: make(404, "no_such_upload", "No such multipart upload"),

  // Claim or expire, upload profiles.
  unknownProfile: make(400, "unknown_profile", "No upload profile has this name"),
  imageNotClaimable: make(409, "image_not_claimable", "The image can no longer be claimed"),
  alreadyClaimed: make(409, "already_claimed", "The image is claimed under another reference"),
  profileNotFound: make(404, "profile_not_found", "No such upload profile"),
  profileReadOnly: make(409, "profile_read_only", "The upload profile is defined by configuration"),
  // Outbound webhooks and the event feed.
  webhookNotFound: make(404, "webhook_not_found", "No such webhook endpoint"),
  eventNotFound: make(404, "event_not_found", "No such event"),
  invalidWebhookUrl: make(400, "invalid_webhook_url", "The webhook URL is not valid"),
  webhookUrlNotAllowed: make(
    400,
    "webhook_url_not_allowed",
    "The webhook URL resolves to a private or reserved address",
  ),
  webhookManagedByConfig: make(409, "webhook_managed_by_config", "This endpoint is set by the configuration"),
} as const;
