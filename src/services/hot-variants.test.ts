import { describe, expect, it } from "vitest";
import { HotVariants } from "./hot-variants.ts";

describe("HotVariants", () => {
  it("holds at most its byte bound, dropping the least recently served first", () => {
    const hot = new HotVariants(10, 6);
    hot.set("a", Buffer.alloc(4));
    hot.set("b", Buffer.alloc(4));
    expect(hot.get("a")).toHaveLength(4); // a is now the most recent
    hot.set("c", Buffer.alloc(4));
    expect(hot.get("b")).toBeUndefined();
    expect(hot.get("a")).toHaveLength(4);
    expect(hot.size).toEqual({ entries: 2, bytes: 8 });
  });

  it("keeps nothing larger than its entry bound, and nothing when off", () => {
    const hot = new HotVariants(100, 6);
    hot.set("big", Buffer.alloc(7));
    expect(hot.get("big")).toBeUndefined();
    const off = new HotVariants(0, 6);
    off.set("a", Buffer.alloc(1));
    expect(off.get("a")).toBeUndefined();
  });
});
