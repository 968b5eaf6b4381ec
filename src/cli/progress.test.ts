import { afterEach, describe, expect, it, vi } from "vitest";
import { purgeProgressLine, reconcileProgressLine, startProgress, sweepProgressLine } from "./progress.ts";

function recorder(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, stream: { isTTY, write: (s: string) => chunks.push(s) > 0 } };
}

describe("the progress line", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("draws nothing when the stream is not a terminal, or when disabled (--json)", () => {
    for (const [isTTY, enabled] of [
      [false, true],
      [true, false],
    ] as const) {
      const { chunks, stream } = recorder(isTTY);
      const p = startProgress({ stream, enabled });
      p.update("sweep: 1 objects listed, 0 deleted");
      p.stop();
      expect(chunks).toEqual([]);
    }
  });

  it("on a terminal redraws one line with the newest counts, at most once per interval, and clears it at the end", () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    let t = 0;
    const { chunks, stream } = recorder(true);
    const p = startProgress({ stream, intervalMs: 100, now: () => t });
    p.update("a 1");
    expect(chunks).toEqual(["\ra 1\x1b[K"]);
    // Inside the interval: held back, and only the newest is drawn when it ends.
    t = 10;
    p.update("a 2");
    p.update("a 3");
    expect(chunks).toHaveLength(1);
    t = 100;
    vi.advanceTimersByTime(90);
    expect(chunks).toEqual(["\ra 1\x1b[K", "\ra 3\x1b[K"]);
    // Past the interval: drawn at once.
    t = 250;
    p.update("a 4");
    expect(chunks.at(-1)).toBe("\ra 4\x1b[K");
    p.stop();
    p.stop();
    p.update("a 5");
    vi.advanceTimersByTime(1000);
    expect(chunks.slice(3)).toEqual(["\r\x1b[K"]);
  });

  it("a stop before anything was drawn writes nothing", () => {
    const { chunks, stream } = recorder(true);
    startProgress({ stream }).stop();
    expect(chunks).toEqual([]);
  });

  it("says the counts of each command", () => {
    expect(sweepProgressLine({ listed: 1200, orphans: 5, deleted: 3, errors: 0 }, false)).toBe(
      "sweep: 1,200 objects listed, 3 deleted",
    );
    expect(sweepProgressLine({ listed: 1200, orphans: 5, deleted: 0, errors: 0 }, true)).toBe(
      "sweep: 1,200 objects listed, 5 would be deleted",
    );
    expect(sweepProgressLine({ listed: 10, orphans: 5, deleted: 3, errors: 2 }, false)).toBe(
      "sweep: 10 objects listed, 3 deleted, 2 failed",
    );
    expect(reconcileProgressLine({ checked: 12_345, queued: 2, expired: 7, errors: 0 }, false)).toBe(
      "reconcile: 12,345 images checked, 2 queued, 7 expired",
    );
    expect(reconcileProgressLine({ checked: 3, queued: 1, expired: 1, errors: 1 }, true)).toBe(
      "reconcile: 3 images checked, 1 would be queued, 1 would be expired, 1 errors",
    );
    expect(purgeProgressLine({ objectsRemoved: 40, removed: 0, failed: 0 }, 1000)).toBe(
      "purge: 40 of 1,000 images removed",
    );
    expect(purgeProgressLine({ objectsRemoved: 40, removed: 0, failed: 2 }, 1000)).toBe(
      "purge: 40 of 1,000 images removed, 2 failed",
    );
  });
});
