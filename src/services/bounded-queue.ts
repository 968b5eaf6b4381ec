import { ERRORS } from "../domain/errors.ts";

/**
 * At most `concurrency` tasks run at once and at most `maxQueued` wait; past that the caller is
 * told to come back (503 + Retry-After) instead of piling up memory and latency.
 */
export class BoundedQueue {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly concurrency: number,
    private readonly maxQueued: number,
    /** Told the number of waiting tasks whenever it changes (a metrics gauge). */
    private readonly onDepth: (waiting: number) => void = () => {},
  ) {}

  get length(): number {
    return this.waiting.length;
  }

  get active(): number {
    return this.running;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxQueued) {
        throw ERRORS.unavailable("the transform queue is full; retry shortly", {
          headers: { "Retry-After": "1" },
        });
      }
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        this.onDepth(this.waiting.length);
      });
    } else {
      this.running++;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so `running` only drops when nobody waits.
      if (next) {
        this.onDepth(this.waiting.length);
        next();
      } else this.running--;
    }
  }
}
