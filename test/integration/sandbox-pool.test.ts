import { spawn } from "node:child_process";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isAppError } from "../../src/domain/errors.ts";
import { ImagePool } from "../../src/imaging/sandbox/pool.ts";
import { readRss } from "../../src/imaging/sandbox/rss.ts";
import { eventually } from "../support/harness.ts";
import { photo, scanBombJpeg } from "../support/image-builders.ts";

const DEADLINE_MS = 1500;
/** Only a real hang fails this: the deadline with generous slack for a loaded machine. */
const BOUND_MS = DEADLINE_MS * 3 + 10_000;
const LIMITS = { maxPixels: 50_000_000 };

async function reason(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
    return "resolved";
  } catch (err) {
    return isAppError(err) ? err.extra.reason : `other: ${(err as Error).message}`;
  }
}

describe("the image pool", () => {
  let pool: ImagePool;
  afterEach(() => pool?.stop());

  it("runs tasks in one reused child and answers like the in-process functions", async () => {
    pool = new ImagePool({ size: 2, taskMemoryBytes: 1024 ** 3 });
    const jpeg = await photo(96, 64).jpeg().toBuffer();
    const a = await pool.run("probe", { limits: LIMITS }, jpeg, { timeoutMs: 30_000 });
    const b = await pool.run("thumbhash", LIMITS, jpeg, { timeoutMs: 30_000 });
    const spec = { width: 32, fit: "inside", format: "webp", dpr: 1 } as const;
    const c = await pool.run("transform", { spec, ...LIMITS, animated: false, timeoutMs: 30_000 }, jpeg, {
      timeoutMs: 30_000,
    });
    expect(a.result).toMatchObject({ ok: true, width: 96, height: 64, format: "jpeg" });
    expect(typeof b.result).toBe("string");
    expect(c.result).toEqual({ width: 32, height: 21 });
    expect(c.output?.subarray(8, 12).toString("latin1")).toBe("WEBP");
    expect(pool.stats.started).toBe(1);
    expect(pool.childCount).toBe(1);
  });

  it("kills a decode at its deadline (reason timeout) and serves the next task from a new child", async () => {
    pool = new ImagePool({ size: 1, taskMemoryBytes: 1024 ** 3 });
    const jpeg = await photo(96, 64).jpeg().toBuffer();
    await pool.run("probe", { limits: LIMITS }, jpeg, { timeoutMs: 30_000 });
    const [victim] = pool.pids;
    const started = Date.now();
    const bomb = scanBombJpeg(882);
    expect(await reason(pool.run("probe", { limits: LIMITS }, bomb, { timeoutMs: DEADLINE_MS }))).toBe(
      "timeout",
    );
    expect(Date.now() - started).toBeLessThan(BOUND_MS);
    expect(pool.stats.killed.timeout).toBe(1);
    // Killed: the process goes away (SIGKILL is delivered asynchronously, so wait for it).
    await eventually(async () => victim !== undefined && readRss(victim) === null);
    const again = await pool.run("probe", { limits: LIMITS }, jpeg, { timeoutMs: 30_000 });
    expect(again.result).toMatchObject({ ok: true });
    expect(pool.stats.started).toBe(2);
  });

  it("refuses a scan bomb by its scan count before decoding", async () => {
    pool = new ImagePool({ size: 1, taskMemoryBytes: 1024 ** 3 });
    const out = await pool.run("probe", { limits: { ...LIMITS, maxJpegScans: 100 } }, scanBombJpeg(882), {
      timeoutMs: 30_000,
    });
    expect(out.result).toMatchObject({ ok: false, reason: "too_complex" });
  });

  it("kills a task whose process grows past the memory bound (reason too_complex)", async () => {
    pool = new ImagePool({ size: 1, taskMemoryBytes: 1024 ** 3, sampleIntervalMs: 20 });
    const jpeg = await photo(96, 64).jpeg().toBuffer();
    await pool.run("probe", { limits: LIMITS }, jpeg, { timeoutMs: 30_000 });
    const idle = readRss(pool.pids[0] ?? 0) ?? 0;
    expect(idle).toBeGreaterThan(0);
    await pool.stop();
    // A 7000x7000 progressive JPEG holds ~100 MB of coefficients while it decodes.
    pool = new ImagePool({ size: 1, taskMemoryBytes: idle + 40 * 2 ** 20, sampleIntervalMs: 20 });
    const bomb = scanBombJpeg(882);
    expect(await reason(pool.run("probe", { limits: LIMITS }, bomb, { timeoutMs: 120_000 }))).toBe(
      "too_complex",
    );
    expect(pool.stats.killed.memory).toBe(1);
  }, 180_000);

  it("stops a running task on abort and on stop(), never as a verdict on the image", async () => {
    pool = new ImagePool({ size: 2, taskMemoryBytes: 1024 ** 3 });
    const bomb = scanBombJpeg(882);
    const controller = new AbortController();
    const aborted = pool.run("probe", { limits: LIMITS }, bomb, {
      timeoutMs: 60_000,
      signal: controller.signal,
    });
    const stopped = pool.run("probe", { limits: LIMITS }, bomb, { timeoutMs: 60_000 });
    controller.abort(new Error("lease lost"));
    expect(await reason(aborted)).toBe("other: lease lost");
    await pool.stop();
    expect(await reason(stopped)).toMatch(/^other: /);
    expect(pool.childCount).toBe(0);
  });

  it("never keeps its process alive: a script that used the pool exits by itself", async () => {
    const script = path.join(import.meta.dirname, "../support/sandbox-exit-child.ts");
    const child = spawn(process.execPath, ["--import", "tsx", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect(out).toContain("probed jpeg");
    expect(code).toBe(0);
  });
});
