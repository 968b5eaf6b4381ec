import { describe, expect, it } from "vitest";
import { DEFAULT_RETRY_SCHEDULE_MS, parseSchedule, retryDelayMs, shouldDisable } from "./webhook-retry.ts";

describe("webhook retry schedule", () => {
  it("follows the schedule, then gives up", () => {
    const schedule = [1000, 4000, 16_000];
    const mid = () => 0.5;
    expect(retryDelayMs(1, schedule, 0.2, mid)).toBe(1000);
    expect(retryDelayMs(2, schedule, 0.2, mid)).toBe(4000);
    expect(retryDelayMs(3, schedule, 0.2, mid)).toBe(16_000);
    expect(retryDelayMs(4, schedule, 0.2, mid)).toBeNull();
  });

  it("spreads each delay by the jitter, both ways", () => {
    expect(retryDelayMs(1, [10_000], 0.2, () => 0)).toBe(8000);
    expect(retryDelayMs(1, [10_000], 0.2, () => 1)).toBe(12_000);
    expect(retryDelayMs(1, [10_000], 0, () => 1)).toBe(10_000);
  });

  it("the default keeps trying for more than 24 hours, each wait longer than the one before", () => {
    const total = DEFAULT_RETRY_SCHEDULE_MS.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(24 * 3600_000);
    for (let i = 1; i < DEFAULT_RETRY_SCHEDULE_MS.length; i++) {
      expect(DEFAULT_RETRY_SCHEDULE_MS[i]).toBeGreaterThan(DEFAULT_RETRY_SCHEDULE_MS[i - 1] ?? 0);
    }
  });

  it("parses a schedule of durations", () => {
    expect(parseSchedule("5s, 5m,2h,1d,250ms")).toEqual([5000, 300_000, 7_200_000, 86_400_000, 250]);
    expect(parseSchedule("5x")).toBeNull();
    expect(parseSchedule("")).toBeNull();
  });
});

describe("disabling a failing endpoint", () => {
  const policy = { afterMs: 3600_000, afterFailures: 5 };
  const since = new Date(1_000_000);

  it("needs both the time and the count", () => {
    const at = since.getTime() + 3600_000;
    expect(shouldDisable({ failingSince: since, consecutiveFailures: 5 }, at, policy)).toBe(true);
    expect(shouldDisable({ failingSince: since, consecutiveFailures: 4 }, at, policy)).toBe(false);
    expect(shouldDisable({ failingSince: since, consecutiveFailures: 50 }, at - 1, policy)).toBe(false);
    expect(shouldDisable({ failingSince: null, consecutiveFailures: 50 }, at, policy)).toBe(false);
  });
});
