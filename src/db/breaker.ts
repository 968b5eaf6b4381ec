import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  TaskCancelledError,
} from "cockatiel";
import type { Logger } from "pino";

export type BreakerState = "closed" | "half-open" | "open";

/** SQLSTATE classes that mean "the database is not there", not "your query is wrong". */
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0[1-3])/;
const UNAVAILABLE_ERRNO = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENOTFOUND",
]);

/** True for errors that say the database cannot be reached (as opposed to a bad query or a constraint). */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (err instanceof BrokenCircuitError || err instanceof TaskCancelledError) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && (UNAVAILABLE_ERRNO.has(code) || UNAVAILABLE_SQLSTATE.test(code)))
    return true;
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    err.message,
  );
}

/**
 * Consecutive connection failures or timeouts open the breaker; while open, calls fail at once
 * with BrokenCircuitError instead of piling up on a dead database. After halfOpenAfterMs one call
 * is let through to test it.
 */
export class DatabaseBreaker {
  private readonly breaker;
  private readonly timeoutMs: number;

  constructor(
    opts: { failures: number; halfOpenAfterMs: number; timeoutMs: number },
    log: Logger,
    onState?: (state: BreakerState) => void,
  ) {
    this.breaker = circuitBreaker(handleWhen(isDatabaseUnavailable), {
      halfOpenAfter: opts.halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(opts.failures),
    });
    this.breaker.onStateChange((s) => {
      const state = toState(s);
      log.warn({ state }, "database circuit breaker changed state");
      onState?.(state);
    });
    this.timeoutMs = opts.timeoutMs;
  }

  get state(): BreakerState {
    return toState(this.breaker.state);
  }

  /** Runs `fn` through the breaker; past the timeout it fails with TaskCancelledError, a failure. */
  execute<T>(fn: () => Promise<T>): Promise<T> {
    return this.breaker.execute(() => withDeadline(fn, this.timeoutMs));
  }
}

/**
 * Not cockatiel's timeout policy: it builds an AbortController, listeners and (on return) a
 * DOMException per call, a tenth of an intent's CPU; nothing here reads the signal. The query
 * itself is bounded by the server's statement_timeout.
 */
function withDeadline<T>(fn: () => Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new TaskCancelledError(`Operation timed out after ${ms}ms`)), ms);
    fn().then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

function toState(s: CircuitState): BreakerState {
  if (s === CircuitState.Open || s === CircuitState.Isolated) return "open";
  if (s === CircuitState.HalfOpen) return "half-open";
  return "closed";
}
