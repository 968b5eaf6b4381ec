import type { JobQueue } from "./job-queue.ts";

/** Lets in-process producers wake the local worker at once instead of at its next poll. */
export function wakingQueue(queue: JobQueue, wake: () => void): JobQueue {
  return {
    enqueue: async (job) => {
      const r = await queue.enqueue(job);
      wake();
      return r;
    },
    requeue: async (job) => {
      const r = await queue.requeue(job);
      wake();
      return r;
    },
    claim: (o) => queue.claim(o),
    complete: (j) => queue.complete(j),
    fail: (j, e, r) => queue.fail(j, e, r),
    extendLease: (j, l) => queue.extendLease(j, l),
    release: (j, opts) => queue.release(j, opts),
    get: (k) => queue.get(k),
    stats: () => queue.stats(),
  };
}
