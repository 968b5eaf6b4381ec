import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { type AppError, ERRORS } from "../domain/errors.ts";
import type { KeyValueStore } from "../kv/kv.ts";

/**
 * How one caller's flight ended, as counted by imgup_transform_claims_total:
 * taken: it claimed the variant and did the work; took_over: it waited, the holder's claim lapsed
 * without a result and it did the work itself; waited: another instance's result reached it;
 * failed: a remembered failure ended its wait; timed_out: it gave up waiting; uncoordinated: the
 * KV did not answer, so it worked without a claim.
 */
export type ClaimOutcome = "taken" | "took_over" | "waited" | "failed" | "timed_out" | "uncoordinated";

export interface FlightOptions {
  /** A claim not renewed for this long is free for a waiter to take (the holder died). */
  claimTtlMs: number;
  /** How often the holder renews its claim; well under claimTtlMs so one late renewal is harmless. */
  heartbeatMs: number;
  /** A waiter gives up (503, Retry-After) after this long. */
  maxWaitMs: number;
  /** Waiters poll the store and the claim, backing off from pollMinMs to pollMaxMs. */
  pollMinMs: number;
  pollMaxMs: number;
  now: () => number;
}

export interface FlightPorts {
  kv: KeyValueStore;
  /** The stored result of a key; null while there is none. */
  stored(key: string): Promise<Buffer | null>;
  /** The failure remembered for a key, which ends waiters with the same error; null when none. */
  failure(key: string): Promise<AppError | null>;
  onOutcome(outcome: ClaimOutcome): void;
  log: Logger;
}

export const DEFAULT_FLIGHT: Omit<FlightOptions, "maxWaitMs"> = {
  claimTtlMs: 10_000,
  heartbeatMs: 3_000,
  pollMinMs: 20,
  pollMaxMs: 250,
  now: Date.now,
};

/**
 * One piece of work per key across every process sharing the KV and the store (a variant
 * transform). The first caller claims the key in the KV and renews the claim while it works; the
 * others poll the store with a bounded backoff until the result appears, a remembered failure
 * ends their wait, or the claim lapses without a result, when one of them takes the work over.
 *
 * Polling, not pub/sub: a waiter costs one store read and one KV read per poll, and the in-process
 * join in front (VariantsService) keeps that to one waiter per process and key; a subscription
 * would need a connection of its own per process and still a poll for a holder that died.
 */
export class VariantFlight {
  private readonly opts: FlightOptions;

  constructor(
    private readonly ports: FlightPorts,
    opts: Partial<FlightOptions> & Pick<FlightOptions, "maxWaitMs">,
  ) {
    this.opts = { ...DEFAULT_FLIGHT, ...opts };
  }

  async run(key: string, work: () => Promise<Buffer>): Promise<Buffer> {
    const { kv, log } = this.ports;
    const claim = claimKey(key);
    const token = randomUUID();
    const deadline = this.opts.now() + this.opts.maxWaitMs;
    let delay = this.opts.pollMinMs;
    let waited = false;
    for (;;) {
      let taken: boolean;
      try {
        taken = await kv.setIfAbsent(claim, token, this.opts.claimTtlMs);
      } catch (err) {
        // Like the rate limits: a KV outage costs duplicate work, never the delivery itself.
        log.warn({ err: String(err), key }, "transform claim unavailable; transforming uncoordinated");
        this.ports.onOutcome("uncoordinated");
        return work();
      }
      if (taken) return this.holding(claim, token, key, waited, work);
      waited = true;
      for (;;) {
        if (this.opts.now() >= deadline) {
          this.ports.onOutcome("timed_out");
          throw ERRORS.unavailable("another instance is still making this variant; retry shortly", {
            headers: { "Retry-After": "1" },
          });
        }
        await sleep(delay);
        delay = Math.min(delay * 2, this.opts.pollMaxMs);
        const done = await this.settled(key);
        if (done) {
          this.ports.onOutcome("waited");
          return done;
        }
        // Read after the store: a holder writes its result before it releases the claim, so a
        // claim gone here with no result before it means the holder failed or died.
        const holder = await kv.get(claim).catch(() => "unknown");
        if (holder === null) break;
      }
    }
  }

  private async holding(
    claim: string,
    token: string,
    key: string,
    waited: boolean,
    work: () => Promise<Buffer>,
  ): Promise<Buffer> {
    const { kv, log } = this.ports;
    const heartbeat = setInterval(() => {
      kv.extendIfEquals(claim, token, this.opts.claimTtlMs).then(
        (held) => {
          if (!held)
            log.warn({ key }, "transform claim lapsed while working; another instance may repeat it");
        },
        (err) => log.warn({ err: String(err), key }, "could not renew a transform claim"),
      );
    }, this.opts.heartbeatMs);
    heartbeat.unref();
    try {
      if (waited) {
        // The holder may have finished between our last poll and its release.
        const done = await this.settled(key);
        if (done) {
          this.ports.onOutcome("waited");
          return done;
        }
      }
      this.ports.onOutcome(waited ? "took_over" : "taken");
      return await work();
    } finally {
      clearInterval(heartbeat);
      await kv.deleteIfEquals(claim, token).catch(() => false);
    }
  }

  /** The stored result, or the remembered failure thrown; null while neither exists. */
  private async settled(key: string): Promise<Buffer | null> {
    const stored = await this.ports.stored(key).catch(() => null);
    if (stored) return stored;
    const failed = await this.ports.failure(key).catch(() => null);
    if (failed) {
      this.ports.onOutcome("failed");
      throw failed;
    }
    return null;
  }
}

export function claimKey(key: string): string {
  return `transform-claim:${key}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
