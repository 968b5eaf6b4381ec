/**
 * When a failed webhook delivery is tried again, and when an endpoint that keeps failing is turned
 * off. Pure: the caller passes the clock and the random source.
 */

/** Delay before attempt n+1 after n failed attempts: `schedule[n-1]`; past its end the delivery fails for good. */
export function retryDelayMs(
  failedAttempts: number,
  schedule: readonly number[],
  jitter: number,
  random: () => number = Math.random,
): number | null {
  const base = schedule[failedAttempts - 1];
  if (base === undefined) return null;
  // Spread by ±jitter so the retries of a burst of failures do not all land on the same instant.
  const factor = 1 + jitter * (2 * random() - 1);
  return Math.max(0, Math.round(base * factor));
}

/** The default schedule: roughly exponential, over a day and a half (Standard Webhooks' own advice). */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [
  5_000,
  30_000,
  2 * 60_000,
  10 * 60_000,
  30 * 60_000,
  2 * 3600_000,
  5 * 3600_000,
  10 * 3600_000,
  16 * 3600_000,
];

export interface DisablePolicy {
  /** Failing for at least this long... */
  afterMs: number;
  /** ...and at least this many consecutive failed attempts. */
  afterFailures: number;
}

/** An endpoint is disabled once it has failed long enough AND often enough with no success between. */
export function shouldDisable(
  state: { failingSince: Date | null; consecutiveFailures: number },
  now: number,
  policy: DisablePolicy,
): boolean {
  if (!state.failingSince) return false;
  return (
    state.consecutiveFailures >= policy.afterFailures && now - state.failingSince.getTime() >= policy.afterMs
  );
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };

/** "5s,5m,30m,2h" -> milliseconds; null when an item is not a duration. */
export function parseSchedule(text: string): number[] | null {
  const out: number[] = [];
  for (const item of text.split(",").map((s) => s.trim())) {
    const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(item);
    if (!m) return null;
    out.push(Number(m[1]) * (UNIT_MS[m[2] ?? "ms"] ?? 1));
  }
  return out.length > 0 ? out : null;
}
