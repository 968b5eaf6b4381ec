import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { InputFiles, readWhole } from "./inputs.ts";

describe("sandbox input files", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "imgup-inputs-test-"));
  afterEach(() => {
    for (const f of readdirSync(dir)) rmSync(path.join(dir, f));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("writes a Buffer once for all the tasks that use it", async () => {
    const inputs = new InputFiles(() => dir);
    const bytes = Buffer.from("the same image");
    const a = inputs.acquire(bytes);
    await a.written;
    inputs.release(a);
    const b = inputs.acquire(bytes);
    expect(b.path).toBe(a.path);
    expect(inputs.peek(bytes)).toBe(a.path);
    expect(readFileSync(b.path, "utf8")).toBe("the same image");
    // Another Buffer with the same bytes is another input.
    const c = inputs.acquire(Buffer.from("the same image"));
    expect(c.path).not.toBe(a.path);
    await c.written;
    inputs.release(b);
    inputs.release(c);
  });

  it("removes an unused file once the idle files pass their byte cap, never one in use", async () => {
    const inputs = new InputFiles(() => dir, { maxIdleBytes: 0 });
    const bytes = Buffer.alloc(1000, 1);
    const a = inputs.acquire(bytes);
    const b = inputs.acquire(bytes);
    await a.written;
    inputs.release(a);
    expect(existsSync(a.path)).toBe(true);
    inputs.release(b);
    await expect.poll(() => existsSync(a.path)).toBe(false);
    expect(inputs.peek(bytes)).toBeUndefined();
    const again = inputs.acquire(bytes);
    expect(again.path).not.toBe(a.path);
    await again.written;
    expect(await readWhole(again.path)).toEqual(bytes);
    inputs.release(again);
  });

  it("forgets every idle file on clear()", async () => {
    const inputs = new InputFiles(() => dir);
    const bytes = Buffer.from("x");
    const a = inputs.acquire(bytes);
    await a.written;
    inputs.release(a);
    inputs.clear();
    expect(inputs.peek(bytes)).toBeUndefined();
    await expect.poll(() => existsSync(a.path)).toBe(false);
  });
});
