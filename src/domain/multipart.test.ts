import { describe, expect, it } from "vitest";
import { MAX_PARTS, MIN_PART_SIZE, missingParts, planParts } from "./multipart.ts";

describe("planParts", () => {
  it("uses the preferred part size when it fits", () => {
    expect(planParts(60 * 1024 * 1024, 8 * 1024 * 1024)).toEqual({ partSize: 8 * 1024 * 1024, partCount: 8 });
  });

  it("never goes under 5 MiB and never over 10,000 parts", () => {
    expect(planParts(1000, 1024).partSize).toBe(MIN_PART_SIZE);
    expect(planParts(1000, 1024).partCount).toBe(1);
    const huge = planParts(200 * 1024 ** 3, 8 * 1024 * 1024);
    expect(huge.partCount).toBeLessThanOrEqual(MAX_PARTS);
    expect(huge.partSize * huge.partCount).toBeGreaterThanOrEqual(200 * 1024 ** 3);
  });
});

describe("missingParts", () => {
  it("lists the gaps in order, bounded", () => {
    expect(missingParts(6, [1, 3, 4], 10)).toEqual([2, 5, 6]);
    expect(missingParts(6, [], 2)).toEqual([1, 2]);
    expect(missingParts(2, [1, 2], 10)).toEqual([]);
  });
});
