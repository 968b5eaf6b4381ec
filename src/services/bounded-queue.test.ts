import { describe, expect, it } from "vitest";
import { AppError } from "../domain/errors.ts";
import { BoundedQueue } from "./bounded-queue.ts";

describe("BoundedQueue", () => {
  it("runs at most `concurrency` at once, queues up to maxQueued, refuses beyond with 503", async () => {
    const depths: number[] = [];
    const q = new BoundedQueue(2, 3, (d) => depths.push(d));
    let inFlight = 0;
    let peak = 0;
    const release: Array<() => void> = [];
    const task = () =>
      q.run(async () => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise<void>((r) => release.push(r));
        inFlight--;
        return "done";
      });
    const accepted = Array.from({ length: 5 }, task);
    await new Promise((r) => setTimeout(r, 10));
    expect(q.active).toBe(2);
    expect(q.length).toBe(3);
    const refused = await task().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AppError);
    expect((refused as AppError).status).toBe(503);
    expect((refused as AppError).headers["Retry-After"]).toBe("1");
    while (release.length || q.active) {
      release.shift()?.();
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(await Promise.all(accepted)).toEqual(Array(5).fill("done"));
    expect(peak).toBe(2);
    expect(depths).toEqual([1, 2, 3, 2, 1, 0]);
    expect(q.active).toBe(0);
  });
});
