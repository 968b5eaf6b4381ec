/**
 * A running imgup with the demo page built and a few images already uploaded through the API, and
 * a Chromium whose contexts can be given a viewport, a device scale factor and a colour scheme
 * (the persistent context of test/support/browser.ts cannot).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Browser, type BrowserContextOptions, chromium, type Page } from "playwright-core";
import { buildWeb } from "../../web/build.ts";
import { Api, type ImageJson } from "../support/api.ts";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../support/browser.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";
import { photoLike } from "../support/image-builders.ts";

/** Names and shapes a person's gallery might hold: landscape, portrait, square, a PNG. */
const PICTURES = [
  { filename: "harbour-at-dusk.jpg", width: 1600, height: 1067, seed: 3 },
  { filename: "anna-portrait.jpg", width: 1067, height: 1600, seed: 11 },
  { filename: "tiles.png", width: 1200, height: 1200, seed: 5 },
  { filename: "ridge-panorama.jpg", width: 1920, height: 1080, seed: 8 },
  { filename: "market-street.jpg", width: 1400, height: 933, seed: 14 },
  { filename: "poster-draft.png", width: 900, height: 1200, seed: 2 },
] as const;

export interface DemoFixture {
  run: Running;
  api: Api;
  /** Oldest first, as uploaded; the page shows them newest first. */
  images: ImageJson[];
  browser: Browser;
  /** Requests of the pages opened by `open` that failed (4xx, 5xx): a page should make none. */
  failedRequests: string[];
  /** A page in a context of its own, showing the gallery with every thumbnail loaded. */
  open: (options?: BrowserContextOptions) => Promise<Page>;
  close: () => Promise<void>;
}

export async function startDemoFixture(env: Record<string, string> = {}): Promise<DemoFixture> {
  const workDir = await mkdtemp(path.join(tmpdir(), "imgup-demo-fixture-"));
  const webDir = path.join(workDir, "web");
  await buildWeb(webDir);
  const target = dbTargets()[0];
  if (!target) throw new Error("no embedded database target");
  const run = await startImgup(target.make(), { IMGUP_DEMO_DIR: webDir, ...env });
  const api = new Api(run.baseUrl, run.alice);
  const images: ImageJson[] = [];
  for (const [i, picture] of PICTURES.entries()) {
    const image = await photoLike(picture.width, picture.height, picture.seed);
    const png = picture.filename.endsWith(".png");
    const bytes = await (png ? image.png() : image.jpeg({ quality: 82 })).toBuffer();
    const { intent, put } = await api.uploadBytes(bytes, {
      filename: picture.filename,
      contentType: png ? "image/png" : "image/jpeg",
      // One private image, in the first row the page shows: its lock badge and Private chip.
      visibility: i === 3 ? "private" : "public",
    });
    if (put.status >= 300) throw new Error(`upload of ${picture.filename}: ${put.status} ${put.body}`);
    images.push(await api.settled(intent.image.id));
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: CHROMIUM_ARGS,
  });
  const failedRequests: string[] = [];
  const open = async (options: BrowserContextOptions = {}) => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: run.baseUrl });
    const page = await context.newPage();
    page.on("response", (r) => void (r.status() >= 400 && failedRequests.push(`${r.status()} ${r.url()}`)));
    await page.goto(`${run.baseUrl}/#key=${encodeURIComponent(run.alice)}`);
    await page
      .locator(".card-thumb.loaded")
      .nth(PICTURES.length - 1)
      .waitFor({ timeout: 60_000 });
    return page;
  };
  return {
    run,
    api,
    images,
    browser,
    failedRequests,
    open,
    close: async () => {
      await browser.close();
      await run.stop();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}

/** The card of one image; the page lists images newest first. */
export const cardOf = (page: Page, image: ImageJson) => page.locator(`.card[data-id="${image.id}"]`);
