import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWeb } from "../../web/build.ts";
import { Api, type ImageJson } from "../support/api.ts";
import { ARTIFACTS_DIR, launchChromium } from "../support/browser.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";
import { photoLike } from "../support/image-builders.ts";
import { startImgupOnBrowserBucket } from "../support/rgw-browser-target.ts";
import { s3TestConnection } from "../support/s3-target.ts";

const MiB = 1024 * 1024;
const required = <T>(value: T | undefined): T => {
  if (value === undefined) throw new Error("missing test target");
  return value;
};
const pglite = () => required(dbTargets()[0]).make();
const connection = s3TestConnection();
// Uploads larger than the SDK's multipart threshold (32 MiB) go up in 8 MiB parts.
const LIMITS = { IMGUP_MAX_UPLOAD_BYTES: String(64 * MiB), IMGUP_MULTIPART_PART_SIZE: String(8 * MiB) };

let workDir: string;
let webDir: string;
let files: { photo: string; poster: string; noise: string; notImage: string };

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), "imgup-demo-"));
  webDir = path.join(workDir, "web");
  await buildWeb(webDir);
  files = {
    photo: path.join(workDir, "harbour.jpg"),
    poster: path.join(workDir, "poster.png"),
    noise: path.join(workDir, "noise.png"),
    notImage: path.join(workDir, "notes.jpg"),
  };
  await (await photoLike(1600, 1067, 3)).jpeg({ quality: 85 }).toFile(files.photo);
  await (await photoLike(800, 600, 7)).png().toFile(files.poster);
  // Uncompressed noise: a real, decodable PNG above the multipart threshold.
  const [w, h] = [3500, 3400];
  await sharp(randomBytes(w * h * 3), { raw: { width: w, height: h, channels: 3 } })
    .png({ compressionLevel: 0 })
    .toFile(files.noise);
  await writeFile(files.notImage, "meeting notes, definitely not a JPEG\n".repeat(40));
  await mkdir(ARTIFACTS_DIR, { recursive: true });
}, 120_000);

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

interface Backend {
  name: "embedded" | "rgw";
  start: () => Promise<{ run: Running; cleanup: () => Promise<void> }>;
}

const embedded: Backend = {
  name: "embedded",
  start: async () => {
    const run = await startImgup(pglite(), { IMGUP_DEMO_DIR: webDir, ...LIMITS });
    return { run, cleanup: run.stop };
  },
};

/** RGW with PostgreSQL and Redis when those are configured: the page uploads straight to the bucket. */
const rgw: Backend = {
  name: "rgw",
  start: () => startImgupOnBrowserBucket({ ...LIMITS, IMGUP_DEMO_DIR: webDir }, "imgup-demo"),
};

describe.each(connection ? [embedded, rgw] : [embedded])("demo page in Chromium ($name)", (backend) => {
  let run: Running;
  let cleanup: () => Promise<void>;
  let browser: { context: BrowserContext; close: () => Promise<void> };
  let page: Page;
  let alice: Api;
  const pageErrors: string[] = [];
  const partRequests: string[] = [];

  beforeAll(async () => {
    ({ run, cleanup } = await backend.start());
    alice = new Api(run.baseUrl, run.alice);
    browser = await launchChromium();
    await browser.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: run.baseUrl });
    page = await browser.context.newPage();
    await page.setViewportSize({ width: 1280, height: 900 });
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    page.on("console", (m) => void (m.type() === "error" && pageErrors.push(m.text())));
    page.on("request", (r) => void (r.url().includes("partNumber=") && partRequests.push(r.url())));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await cleanup?.();
  }, 120_000);

  const images = async () => (await alice.request<{ items: ImageJson[] }>("GET", "/v1/images")).body.items;
  const byName = async (name: string) => (await images()).find((i) => i.filename === name) as ImageJson;
  const card = (id: string) => page.locator(`.card[data-id="${id}"]`);

  it("takes the key from #key=, keeps it out of the address bar and shows the empty gallery", async () => {
    await page.goto(`${run.baseUrl}/#key=${encodeURIComponent(run.alice)}`);
    await page.locator("#gallery-empty").waitFor();
    expect(new URL(page.url()).hash).toBe("");
    expect(await page.evaluate(() => localStorage.getItem("imgup.apiKey"))).toBe(run.alice);
    expect(await page.locator("#connect").isHidden()).toBe(true);
  });

  it("uploads three images, one in multipart parts, each bar reaching 100%, and shows their thumbnails", async () => {
    // Every state and value each row's bar goes through, recorded in the page as it happens.
    await page.evaluate(() => {
      const seen: Record<string, Array<[string, number]>> = {};
      (window as unknown as { seen: typeof seen }).seen = seen;
      new MutationObserver((records) => {
        for (const r of records) {
          const row = (r.target as Element).closest?.(".upload") as HTMLElement | null;
          const bar = row?.querySelector(".bar");
          if (!row || !bar) continue;
          const name = row.dataset.filename ?? "";
          const states = seen[name] ?? [];
          seen[name] = states;
          states.push([row.dataset.state ?? "", Number(bar.getAttribute("aria-valuenow"))]);
        }
      }).observe(document.getElementById("upload-list") as Node, { subtree: true, attributes: true });
    });
    await page.setInputFiles("#file-input", [files.photo, files.poster, files.noise]);
    await page.waitForFunction(
      () => {
        const rows = [...document.querySelectorAll<HTMLElement>(".upload")];
        return (
          rows.length === 3 &&
          rows.every((r) => ["ready", "rejected", "failed"].includes(r.dataset.state ?? ""))
        );
      },
      null,
      { timeout: 150_000, polling: 200 },
    );
    const rows = await page.$$eval(".upload", (els) =>
      els.map((e) => ({
        name: (e as HTMLElement).dataset.filename,
        state: (e as HTMLElement).dataset.state,
        text: e.textContent,
      })),
    );
    expect(rows.filter((r) => r.state !== "ready")).toEqual([]);
    const seen = await page.evaluate(
      () => (window as unknown as { seen: Record<string, Array<[string, number]>> }).seen,
    );
    for (const name of ["harbour.jpg", "poster.png", "noise.png"]) {
      const uploading = (seen[name] ?? []).filter(([state]) => state === "uploading").map(([, v]) => v);
      expect(uploading.at(-1), name).toBe(100);
    }
    const noise = (seen["noise.png"] ?? []).filter(([s]) => s === "uploading").map(([, v]) => v);
    expect(
      noise.some((v) => v > 0 && v < 100),
      "the big file reports progress along the way",
    ).toBe(true);
    // 35.7 MB in 8 MiB parts.
    expect(new Set(partRequests.map((u) => new URL(u).searchParams.get("partNumber"))).size).toBe(5);

    const ready = (await images()).filter((i) => i.status === "ready");
    expect(ready.map((i) => i.filename).sort()).toEqual(["harbour.jpg", "noise.png", "poster.png"]);
    await expectThumbnails(page, ready);
    expect(await byName("harbour.jpg")).toMatchObject({ width: 1600, height: 1067, format: "jpeg" });
  }, 240_000);

  it("shows why a file that is not an image was rejected", async () => {
    await page.setInputFiles("#file-input", [files.notImage]);
    const row = page.locator('.upload[data-filename="notes.jpg"][data-state="rejected"]');
    await row.waitFor({ timeout: 60_000 });
    expect(await row.locator(".upload-status").textContent()).toBe("This file is not an image.");
    expect(await byName("notes.jpg")).toMatchObject({ status: "rejected", rejectReason: "not_an_image" });
    expect(await page.locator(".card").count()).toBe(3);
    await page.screenshot({
      path: path.join(ARTIFACTS_DIR, `demo-page-${backend.name}.png`),
      fullPage: true,
    });
  });

  it("keeps the gallery across a reload", async () => {
    await page.reload();
    await page.locator(".card").nth(2).waitFor();
    expect(await page.locator(".upload").count()).toBe(0);
    await expectThumbnails(
      page,
      (await images()).filter((i) => i.status === "ready"),
    );
  });

  it("makes an image private: the plain URL stops working, the card shows a signed thumbnail", async () => {
    const photo = await byName("harbour.jpg");
    await card(photo.id).locator(".vis-toggle").click();
    await card(photo.id).locator('.vis-toggle[aria-checked="true"]').waitFor();
    const updated = await byName("harbour.jpg");
    expect(updated.visibility).toBe("private");
    expect((await fetch(`${run.baseUrl}/i/${photo.id}/thumb`)).status).toBe(404);
    await expectThumbnails(page, [updated]);
    expect(await card(photo.id).locator(".card-thumb").getAttribute("src")).toContain("sig=");
  });

  it("copies a working link to the original onto the clipboard", async () => {
    const photo = await byName("harbour.jpg");
    await card(photo.id).locator(".copy-link").click();
    await page.locator(".toast-detail").first().waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    expect(copied).toBe(await page.locator(".toast-detail").first().inputValue());
    expect(copied.startsWith(`${run.baseUrl}/i/${photo.id}/original?exp=`)).toBe(true);
    const res = await fetch(copied);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(await readFile(files.photo))).toBe(true);
  });

  it("deletes an image after a confirming second click", async () => {
    const poster = await byName("poster.png");
    const del = card(poster.id).locator(".delete");
    await del.click();
    expect(await del.textContent()).toBe("Delete?");
    expect((await alice.getImage(poster.id)).status).toBe(200);
    await del.click();
    await card(poster.id).waitFor({ state: "detached" });
    expect((await alice.getImage(poster.id)).status).toBe(404);
    await page.reload();
    await page.locator(".card").nth(1).waitFor();
    expect(await page.locator(".card").count()).toBe(2);
  });

  it("logged no errors and no CSP violations", () => {
    expect(pageErrors).toEqual([]);
  });
});

/** Every image has a card whose thumbnail is the image's thumb URL and has loaded, over its placeholder. */
async function expectThumbnails(page: Page, images: ImageJson[]): Promise<void> {
  for (const image of images) {
    const thumb = page.locator(`.card[data-id="${image.id}"] .card-thumb.loaded`);
    await thumb.waitFor({ timeout: 30_000 });
    const shown = await thumb.evaluate((img: HTMLImageElement) => ({
      src: img.src,
      width: img.naturalWidth,
    }));
    expect(new URL(shown.src).pathname).toBe(`/i/${image.id}/thumb`);
    expect(shown.width).toBeGreaterThan(0);
    const placeholder = page.locator(`.card[data-id="${image.id}"] .card-placeholder`);
    expect(await placeholder.getAttribute("src")).toMatch(/^data:image\/png;base64,/);
  }
}
