import { describe, expect, it } from "vitest";
import { ImgupError, NetworkError } from "./errors.ts";
import { backoffDelayMs, RetryLaterError, withRetries } from "./retry.ts";

describe("backoffDelayMs", () => {
  it("grows exponentially with full jitter, capped, and never undercuts Retry-After", () => {
    for (let i = 0; i < 200; i++) {
      expect(backoffDelayMs(0)).toBeLessThanOrEqual(200);
      expect(backoffDelayMs(3)).toBeLessThanOrEqual(1600);
      expect(backoffDelayMs(30)).toBeLessThanOrEqual(10_000);
      expect(backoffDelayMs(0, 1500)).toBeGreaterThanOrEqual(1500);
    }
  });
});

describe("withRetries", () => {
  const flaky = (failures: unknown[]) => {
    let calls = 0;
    const fn = async (attempt: number) => {
      calls++;
      const failure = failures[attempt];
      if (failure) throw failure;
      return `ok after ${attempt}`;
    };
    return { fn, calls: () => calls };
  };

  it("retries network errors, 429 and 5xx, up to `retries` times", async () => {
    const run = flaky([new NetworkError("reset"), new ImgupError(503, "service_unavailable", "")]);
    await expect(withRetries(run.fn, { retries: 2 })).resolves.toBe("ok after 2");
    const exhausted = flaky([new NetworkError("a"), new NetworkError("b"), new NetworkError("c")]);
    await expect(withRetries(exhausted.fn, { retries: 2 })).rejects.toMatchObject({ code: "network_error" });
    expect(exhausted.calls()).toBe(3);
  });

  it("gives up at once on a client error", async () => {
    const run = flaky([new ImgupError(400, "validation_failed", "")]);
    await expect(withRetries(run.fn, { retries: 4 })).rejects.toMatchObject({ status: 400 });
    expect(run.calls()).toBe(1);
  });

  it("waits at least what the server asked for", async () => {
    const run = flaky([new RetryLaterError(new ImgupError(409, "idempotency_request_in_progress", ""), 120)]);
    const started = Date.now();
    await withRetries(run.fn, { retries: 1, retryable: (e) => e instanceof RetryLaterError });
    expect(Date.now() - started).toBeGreaterThanOrEqual(115);
  });

  it("stops waiting when the signal fires", async () => {
    const controller = new AbortController();
    const run = flaky([new RetryLaterError(new ImgupError(503, "service_unavailable", ""), 10_000)]);
    const retrying = withRetries(run.fn, { retries: 1, signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(retrying).rejects.toMatchObject({ name: "AbortError" });
  });
});
