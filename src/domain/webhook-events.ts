import type { ImageStatus } from "./image.ts";

/** Every app-facing event imgup emits (webhooks and the pull feed carry the same ones). */
export const OUTBOX_EVENT_TYPES = [
  "image.ready",
  "image.rejected",
  "image.deleted",
  "image.expired",
  "image.claimed",
  /** Valid but held for moderation; image.ready or image.rejected follows the decision. */
  "image.held",
] as const;
export type OutboxEventType = (typeof OUTBOX_EVENT_TYPES)[number];

export function isOutboxEventType(v: string): v is OutboxEventType {
  return (OUTBOX_EVENT_TYPES as readonly string[]).includes(v);
}

const BY_STATUS: Partial<Record<ImageStatus, OutboxEventType>> = {
  ready: "image.ready",
  rejected: "image.rejected",
  deleted: "image.deleted",
  expired: "image.expired",
  held: "image.held",
};

/** The event a transition into `status` emits; null for the internal states (pending, processing). */
export function eventForStatus(status: ImageStatus): OutboxEventType | null {
  return BY_STATUS[status] ?? null;
}

/**
 * A position in the event log: (transaction id, sequence). Ordering by the writing transaction's id
 * first is what makes the log gap-free for readers: rows are only read once every transaction with a
 * smaller id has finished, so nothing can later appear behind a cursor (see db/outbox.ts).
 */
export interface EventPosition {
  txid: number;
  seq: number;
}

export const START_POSITION: EventPosition = { txid: 0, seq: 0 };

/** Opaque to clients: `<txid>-<seq>`. */
export function encodeCursor(p: EventPosition): string {
  return `${p.txid}-${p.seq}`;
}

/** null when the text is not a cursor this code wrote. */
export function decodeCursor(text: string): EventPosition | null {
  const m = /^(\d{1,18})-(\d{1,18})$/.exec(text);
  if (!m) return null;
  const txid = Number(m[1]);
  const seq = Number(m[2]);
  return Number.isSafeInteger(txid) && Number.isSafeInteger(seq) ? { txid, seq } : null;
}
