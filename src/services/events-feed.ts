import { setTimeout as sleep } from "node:timers/promises";
import type { EventsRepository } from "../db/events-repository.ts";
import { ERRORS } from "../domain/errors.ts";
import { decodeCursor, encodeCursor, START_POSITION } from "../domain/webhook-events.ts";
import type { UrlBuilder } from "./image-view.ts";
import { type AppEvent, renderEvent } from "./webhook-payload.ts";

/**
 * GET /v1/events: the owner's app events after a cursor, the same JSON webhooks carry. A long poll
 * looks again every `pollMs` until something arrives or the wait ends: each look is one short query,
 * so a waiting request holds no database connection, and any API instance sees every commit.
 */
export class EventsFeed {
  constructor(
    private readonly deps: {
      events: Pick<EventsRepository, "readAfter">;
      urls: UrlBuilder;
      maxWaitSeconds: number;
      pollMs: number;
    },
  ) {}

  async read(
    ownerId: string,
    opts: { after?: string | undefined; limit: number; waitSeconds: number; signal?: AbortSignal },
  ): Promise<{ events: AppEvent[]; cursor: string }> {
    const from = opts.after === undefined ? START_POSITION : decodeCursor(opts.after);
    if (!from) throw ERRORS.invalidCursor("use the cursor of a previous answer");
    const deadline = Date.now() + Math.min(opts.waitSeconds, this.deps.maxWaitSeconds) * 1000;
    for (;;) {
      const rows = await this.deps.events.readAfter(from, opts.limit, ownerId);
      const last = rows.at(-1);
      if (last || Date.now() >= deadline || opts.signal?.aborted) {
        return {
          events: rows.map((r) => renderEvent(r, this.deps.urls)),
          cursor: encodeCursor(last ? { txid: last.txid, seq: last.seq } : from),
        };
      }
      const wait = Math.min(this.deps.pollMs, Math.max(0, deadline - Date.now()));
      await sleep(wait, undefined, { signal: opts.signal }).catch(() => undefined);
    }
  }
}
