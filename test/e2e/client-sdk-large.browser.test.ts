import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { CDPSession, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "../support/browser.ts";
import {
  buildSdkTestBundle,
  inPage,
  openSdkTestPage,
  pssBytes,
  rendererPids,
} from "../support/client-sdk-browser.ts";
import { writeHugePng } from "../support/client-sdk-fixtures.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";

const MiB = 1024 * 1024;
const mb = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

/**
 * A ~200 MB image chosen in a file input (Chromium gets a disk-backed File: nothing is copied
 * into the page) uploads with multipart while one part fails once on the wire, and the page's
 * memory stays far below the file's size: the hash and the parts are read slice by slice.
 */
describe("a 200 MB upload from Chromium", () => {
  const file = path.join(tmpdir(), `imgup-sdk-${randomUUID()}.png`);
  let size: number;
  let run: Running;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let page: Page;
  let cdp: CDPSession;

  beforeAll(async () => {
    const [db] = dbTargets();
    if (!db) throw new Error("no database target");
    const [bytes, bundle] = await Promise.all([writeHugePng(file), buildSdkTestBundle()]);
    size = bytes;
    run = await startImgup(db.make(), { IMGUP_MAX_UPLOAD_BYTES: String(256 * MiB) });
    browser = await launchChromium();
    page = await openSdkTestPage(browser.context, run.baseUrl, bundle);
    // The page is loaded: nothing else of it needs intercepting.
    await page.unrouteAll();
    cdp = await browser.context.newCDPSession(page);
    await cdp.send("Performance.enable");
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await run?.stop();
    await rm(file, { force: true });
  });

  it("becomes ready, retries the failed part, and keeps the JS heap far below the file size", async () => {
    expect(size).toBeGreaterThan(190_000_000);
    await page.locator("#file").setInputFiles(file);

    // Only part 3's URL is intercepted: its first attempt dies on the wire, the retry goes through.
    const attempts = new Map<number, number>();
    page.on("request", (request) => {
      const part = new URL(request.url()).searchParams.get("partNumber");
      if (part) attempts.set(Number(part), (attempts.get(Number(part)) ?? 0) + 1);
    });
    let failed = false;
    await browser.context.route(
      (url) => url.searchParams.get("partNumber") === "3",
      async (route) => {
        if (failed) return route.continue();
        failed = true;
        return route.abort("connectionreset");
      },
    );

    const heap = { baseline: 0, peak: 0 };
    const renderers = await rendererPids();
    const renderer = { baseline: await pssBytes(renderers), peak: 0 };
    const sample = async () => {
      const { metrics } = await cdp.send("Performance.getMetrics");
      const used = metrics.find((m) => m.name === "JSHeapUsedSize")?.value ?? 0;
      heap.baseline ||= used;
      heap.peak = Math.max(heap.peak, used);
      renderer.peak = Math.max(renderer.peak, await pssBytes(renderers));
    };
    await sample();
    const sampling = setInterval(() => void sample().catch(() => undefined), 250);
    const started = Date.now();
    let result: Awaited<ReturnType<typeof inPage<"uploadChosenFile">>>;
    try {
      result = await inPage(page, "uploadChosenFile", run.alice);
    } finally {
      clearInterval(sampling);
    }
    await sample();
    const seconds = (Date.now() - started) / 1000;

    console.log(
      `200 MB upload in Chromium: ${mb(size)} in ${seconds.toFixed(1)} s (hash, ${attempts.size} parts, ` +
        `processing); JS heap peak ${mb(heap.peak)} (baseline ${mb(heap.baseline)}); ${renderers.length} renderer(s) ` +
        `PSS peak ${mb(renderer.peak)} (baseline ${mb(renderer.baseline)}); part 3 attempts ${attempts.get(3)}`,
    );
    expect(result.image).toMatchObject({ status: "ready", size, width: 7000, height: 7000 });
    expect(result.log.filter((p) => p.phase === "uploading").at(-1)?.loaded).toBe(size);
    expect(attempts.get(3)).toBe(2);
    expect([...attempts.entries()].filter(([n, count]) => n !== 3 && count !== 1)).toEqual([]);
    expect(heap.peak).toBeLessThan(64 * MiB);
    // Everything the renderers hold, JS heap or not (ArrayBuffers, request bodies), stays small too.
    expect(renderer.peak - renderer.baseline).toBeLessThan(64 * MiB);
  }, 300_000);
});
