/**
 * A clock the test moves: it stands still unless advanced, so anything metered by it (rate-limit
 * buckets) decides the same however slowly a loaded machine runs the requests. Starts at the real
 * time so stored timestamps look ordinary.
 */
export class TestClock {
  private t: number;

  constructor(start = Date.now()) {
    this.t = start;
  }

  /** Bound, so it can be handed over as `() => number`. */
  readonly now = (): number => this.t;

  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`a test clock only moves forward, got ${ms}`);
    this.t += ms;
  }
}
