import type { ObjectCreatedEvent } from "../storage/object-store.ts";
import { parseEventMessageText } from "./parse-storage-event.ts";

const LOGGED_BODY_CHARS = 512;

/** The created objects an AMQP message announces; throws (with a reason to log) when unreadable. */
export function parseAmqpEventMessage(content: Buffer): ObjectCreatedEvent[] {
  return parseEventMessageText(content.toString("utf8"));
}

/** Enough of a body to recognise it in a log, never the whole of a hostile one. */
export function bodyForLog(content: Buffer): string {
  const text = content.subarray(0, LOGGED_BODY_CHARS * 4).toString("utf8");
  if (text.length <= LOGGED_BODY_CHARS && content.length <= LOGGED_BODY_CHARS * 4) return text;
  return `${text.slice(0, LOGGED_BODY_CHARS)}… (${content.length} bytes)`;
}
