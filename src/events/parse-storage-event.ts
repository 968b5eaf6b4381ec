import { ERRORS, isAppError } from "../domain/errors.ts";
import type { ObjectCreatedEvent } from "../storage/object-store.ts";

export interface ParsedStorageEvents {
  events: ObjectCreatedEvent[];
  /** Records or messages understood but not about a created object (deletes, test events…). */
  skipped: number;
}

// S3 caps a key at 1024 bytes of UTF-8; fully percent-encoded that is at most 3 chars a byte.
const MAX_KEY_BYTES = 1024;
const MAX_ENCODED_KEY_CHARS = 3 * MAX_KEY_BYTES;
// An SQS message is at most 1 MiB; a body with more records than this is not a notification.
const MAX_RECORDS = 1000;
const MAX_SNS_MESSAGE_CHARS = 1024 * 1024;
const MAX_ETAG_CHARS = 128;
const SOURCE_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

/** EventBridge's `detail.reason` for Object Created, mapped to the S3 notification event name. */
const EVENTBRIDGE_REASONS = new Map([
  ["PutObject", "ObjectCreated:Put"],
  ["PostObject", "ObjectCreated:Post"],
  ["POST Object", "ObjectCreated:Post"],
  ["CopyObject", "ObjectCreated:Copy"],
  ["CompleteMultipartUpload", "ObjectCreated:CompleteMultipartUpload"],
]);

/**
 * Turns the body of a storage notification, from any of the delivery paths imgup supports, into
 * "object created" events. Pure: no I/O, no logging. Anything it cannot read is an
 * `invalid_event` AppError and nothing else, so a caller can drop a poison message safely.
 *
 * Shapes (fixtures and their sources: test/fixtures/events/README.md):
 * - S3 notification `{ Records: [...] }` as AWS S3 (eventSource "aws:s3"), MinIO ("minio:s3",
 *   top-level EventName/Key, event names prefixed "s3:") and Ceph RGW ("ceph:s3") send it;
 * - the same inside an SNS envelope `{ Type: "Notification", Message: "<json>" }`;
 * - an EventBridge "Object Created" event `{ "detail-type", source: "aws.s3", detail }`;
 * - the S3 test event `{ Event: "s3:TestEvent" }`, SNS subscription handshakes: nothing to do.
 */
export function parseStorageEvents(body: unknown): ParsedStorageEvents {
  try {
    return parseBody(body, 0);
  } catch (err) {
    if (isAppError(err) && err.code === "invalid_event") throw err;
    // Belt and braces: whatever a hostile body provokes, callers only ever see invalid_event.
    throw invalid("the event body could not be read");
  }
}

function parseBody(body: unknown, snsDepth: number): ParsedStorageEvents {
  if (!isRecord(body)) throw invalid("the event body is not a JSON object");

  if (own(body, "Event") === "s3:TestEvent") return { events: [], skipped: 1 };

  const type = own(body, "Type");
  if (type === "Notification") return parseSns(body, snsDepth);
  // Handshakes of SNS HTTP delivery: whoever receives them confirms; they never carry an event.
  if (type === "SubscriptionConfirmation" || type === "UnsubscribeConfirmation") {
    return { events: [], skipped: 1 };
  }

  if (own(body, "Records") !== undefined) return parseRecords(own(body, "Records"));
  if (own(body, "detail-type") !== undefined) return parseEventBridge(body);
  throw invalid("not a storage notification this service understands");
}

function parseSns(envelope: Record<string, unknown>, snsDepth: number): ParsedStorageEvents {
  // S3 → SNS → SQS (or SNS HTTP delivery) wraps exactly once; a second envelope is not S3's doing.
  if (snsDepth > 0) throw invalid("nested SNS envelopes are not supported");
  const message = own(envelope, "Message");
  if (typeof message !== "string") throw invalid("the SNS envelope has no Message string");
  if (message.length > MAX_SNS_MESSAGE_CHARS) throw invalid("the SNS Message is too large");
  let inner: unknown;
  try {
    inner = JSON.parse(message);
  } catch {
    throw invalid("the SNS Message is not JSON");
  }
  return parseBody(inner, snsDepth + 1);
}

function parseRecords(records: unknown): ParsedStorageEvents {
  if (!Array.isArray(records)) throw invalid("Records is not an array");
  if (records.length > MAX_RECORDS) throw invalid(`more than ${MAX_RECORDS} records`);
  const events: ObjectCreatedEvent[] = [];
  let skipped = 0;
  // An indexed loop, not forEach: a hole in a sparse array is a malformed record, not nothing.
  for (let index = 0; index < records.length; index++) {
    const event = parseRecord(records[index], index);
    if (event) events.push(event);
    else skipped++;
  }
  return { events, skipped };
}

/** One S3-style record; null when it is well-formed but not about a created object. */
function parseRecord(record: unknown, index: number): ObjectCreatedEvent | null {
  const where = `Records[${index}]`;
  if (!isRecord(record)) throw invalid(`${where} is not an object`);
  const rawName = own(record, "eventName");
  if (typeof rawName !== "string") throw invalid(`${where}.eventName is missing`);
  // MinIO (and some Ceph versions) prefix the name with "s3:", AWS does not.
  const eventName = rawName.startsWith("s3:") ? rawName.slice(3) : rawName;
  if (!eventName.startsWith("ObjectCreated:")) return null;

  const s3 = own(record, "s3");
  const object = isRecord(s3) ? own(s3, "object") : undefined;
  if (!isRecord(object)) throw invalid(`${where}.s3.object is missing`);
  const encodedKey = own(object, "key");
  if (typeof encodedKey !== "string") throw invalid(`${where}.s3.object.key is missing`);

  const bucket = isRecord(s3) ? bucketName(own(s3, "bucket")) : undefined;
  const source = own(record, "eventSource");
  return {
    key: checkKey(decodeFormKey(encodedKey, where), where),
    size: sizeOf(own(object, "size")),
    etag: etagOf(own(object, "eTag") ?? own(object, "etag")),
    source: typeof source === "string" && SOURCE_PATTERN.test(source) ? source : "s3",
    ...(bucket === undefined ? {} : { bucket }),
    eventName: eventName.slice(0, 64),
  };
}

function parseEventBridge(event: Record<string, unknown>): ParsedStorageEvents {
  if (own(event, "source") !== "aws.s3") throw invalid("the EventBridge event is not from aws.s3");
  const detailType = own(event, "detail-type");
  if (typeof detailType !== "string") throw invalid("detail-type is not a string");
  if (detailType !== "Object Created") return { events: [], skipped: 1 };

  const detail = own(event, "detail");
  const object = isRecord(detail) ? own(detail, "object") : undefined;
  if (!isRecord(object)) throw invalid("detail.object is missing");
  const key = own(object, "key");
  if (typeof key !== "string") throw invalid("detail.object.key is missing");
  if (key.length > MAX_ENCODED_KEY_CHARS) throw invalid("detail.object.key is too long");

  // EventBridge keys are used as delivered, NOT form-decoded. AWS documents URL-encoding only for
  // notifications to SQS/SNS/Lambda ("red flower.jpg" becomes "red+flower.jpg", docs
  // notification-content-structure); the EventBridge structure page (docs ev-events, "Event
  // message detail field") says nothing of the kind, and AWS's own MediaLake guidance, tested on
  // real buckets, treats EventBridge keys as raw: "%2B++ %20.mp3" arrives as is
  // (github.com/aws-solutions-library-samples/guidance-for-medialake-on-aws pull 21, tests
  // "TestEventBridgeKeyNotDecoded"). Decoding would turn a literal "+" into a space.
  const reason = isRecord(detail) ? own(detail, "reason") : undefined;
  const bucket = isRecord(detail) ? bucketName(own(detail, "bucket")) : undefined;
  return {
    events: [
      {
        key: checkKey(key, "detail.object.key"),
        size: sizeOf(own(object, "size")),
        etag: etagOf(own(object, "etag") ?? own(object, "eTag")),
        source: "aws.s3-eventbridge",
        ...(bucket === undefined ? {} : { bucket }),
        eventName: (typeof reason === "string" && EVENTBRIDGE_REASONS.get(reason)) || "ObjectCreated",
      },
    ],
    skipped: 0,
  };
}

/**
 * S3-style keys are application/x-www-form-urlencoded: "+" is a space, then percent-escapes
 * (UTF-8). A malformed escape means the record is not what it claims to be.
 */
/**
 * The created objects a queue message's body announces (SQS, AMQP); throws an Error whose message
 * says why when the body is unreadable, for a log line or a dead-letter reason.
 */
export function parseEventMessageText(text: string): ObjectCreatedEvent[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error("the message body is not JSON");
  }
  try {
    return parseStorageEvents(json).events;
  } catch (err) {
    throw new Error(isAppError(err) ? err.message : "the event could not be parsed");
  }
}

export function decodeFormKey(encoded: string, where = "key"): string {
  if (encoded.length > MAX_ENCODED_KEY_CHARS) throw invalid(`${where} is too long`);
  try {
    return decodeURIComponent(encoded.replaceAll("+", " "));
  } catch {
    throw invalid(`${where} has a malformed percent-escape`);
  }
}

function checkKey(key: string, where: string): string {
  if (key.length === 0) throw invalid(`${where} is empty`);
  if (Buffer.byteLength(key, "utf8") > MAX_KEY_BYTES) throw invalid(`${where} is longer than S3 allows`);
  return key;
}

/** The size is advisory (the worker measures the object itself), so an odd one is unknown, not fatal. */
function sizeOf(value: unknown): number | null {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : null;
  // Ceph RGW sends the size as a string ("size":"1024" in its notification docs).
  if (typeof value === "string" && /^\d{1,15}$/.test(value)) return Number(value);
  return null;
}

function etagOf(value: unknown): string | null {
  if (typeof value !== "string") return null;
  const etag = value.replace(/^"|"$/g, "");
  return etag.length > 0 && etag.length <= MAX_ETAG_CHARS ? etag : null;
}

function bucketName(bucket: unknown): string | undefined {
  const name = isRecord(bucket) ? own(bucket, "name") : undefined;
  return typeof name === "string" && name.length > 0 && name.length <= 255 ? name : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Own properties only: "__proto__", "constructor" and friends never resolve to the prototype. */
function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function invalid(detail: string) {
  return ERRORS.invalidEvent(detail);
}
