import { ERRORS } from "../domain/errors.ts";

export interface BoundedQueueOptions {
  /** Tasks running at once, all owners together. */
  concurrency: number;
  /** Tasks waiting, all owners together; past that the caller is told to come back. */
  maxQueued: number;
  /** Tasks of one owner running at once; the rest of that owner's wait while others' go first. */
  perOwnerConcurrency: number;
  /** Tasks of one owner waiting; default a quarter of maxQueued (at least 1). */
  maxQueuedPerOwner?: number;
  /** Told the number of waiting tasks whenever it changes (a metrics gauge). */
  onDepth?: (waiting: number) => void;
}

interface Owner {
  running: number;
  waiting: Array<() => void>;
  /** When this owner was last handed a slot (a counter, not a clock); 0 never. */
  lastServed: number;
}

/**
 * At most `concurrency` tasks run at once and at most `maxQueued` wait; past that the caller is
 * told to come back (503 + Retry-After) instead of piling up memory and latency. Fair between
 * owners: each runs at most `perOwnerConcurrency` at once and may hold only its share of the
 * waiting room, and a free slot goes to the waiting owner served least recently (round-robin), so
 * one owner's fifty queued transforms delay another owner's one by at most one slot.
 */
export class BoundedQueue {
  private running = 0;
  private waitingCount = 0;
  private served = 0;
  private readonly owners = new Map<string, Owner>();
  private readonly concurrency: number;
  private readonly maxQueued: number;
  private readonly perOwnerConcurrency: number;
  private readonly maxQueuedPerOwner: number;
  private readonly onDepth: (waiting: number) => void;

  constructor(opts: BoundedQueueOptions) {
    this.concurrency = Math.max(1, opts.concurrency);
    this.maxQueued = Math.max(0, opts.maxQueued);
    this.perOwnerConcurrency = Math.max(1, opts.perOwnerConcurrency);
    this.maxQueuedPerOwner = Math.max(1, opts.maxQueuedPerOwner ?? Math.floor(this.maxQueued / 4));
    this.onDepth = opts.onDepth ?? (() => {});
  }

  get length(): number {
    return this.waitingCount;
  }

  get active(): number {
    return this.running;
  }

  async run<T>(ownerKey: string, task: () => Promise<T>): Promise<T> {
    const owner = this.owner(ownerKey);
    // Slots are handed out eagerly, so a free one means nobody eligible is waiting for it.
    if (this.running < this.concurrency && owner.running < this.perOwnerConcurrency) {
      this.start(owner);
    } else {
      if (this.waitingCount >= this.maxQueued) {
        this.forget(ownerKey, owner);
        throw ERRORS.unavailable("the transform queue is full; retry shortly", {
          headers: { "Retry-After": "1" },
        });
      }
      if (owner.waiting.length >= this.maxQueuedPerOwner) {
        throw ERRORS.unavailable("too many of this owner's transforms are waiting; retry shortly", {
          headers: { "Retry-After": "1" },
        });
      }
      await new Promise<void>((resolve) => {
        owner.waiting.push(resolve);
        this.waitingCount++;
        this.onDepth(this.waitingCount);
      });
    }
    try {
      return await task();
    } finally {
      this.running--;
      owner.running--;
      this.dispatch();
      this.forget(ownerKey, owner);
    }
  }

  private owner(key: string): Owner {
    let owner = this.owners.get(key);
    if (!owner) {
      owner = { running: 0, waiting: [], lastServed: 0 };
      this.owners.set(key, owner);
    }
    return owner;
  }

  /** An owner with nothing running or waiting is dropped: the map holds only active owners. */
  private forget(key: string, owner: Owner): void {
    if (owner.running === 0 && owner.waiting.length === 0) this.owners.delete(key);
  }

  private start(owner: Owner): void {
    this.running++;
    owner.running++;
    owner.lastServed = ++this.served;
  }

  /** Fills free slots from the eligible owner served least recently. */
  private dispatch(): void {
    while (this.running < this.concurrency && this.waitingCount > 0) {
      let next: Owner | undefined;
      for (const owner of this.owners.values()) {
        if (owner.waiting.length === 0 || owner.running >= this.perOwnerConcurrency) continue;
        if (!next || owner.lastServed < next.lastServed) next = owner;
      }
      if (!next) return;
      const resolve = next.waiting.shift() as () => void;
      this.waitingCount--;
      this.start(next);
      this.onDepth(this.waitingCount);
      resolve();
    }
  }
}
