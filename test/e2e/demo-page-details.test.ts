import type { Page } from "playwright-core";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_PRESETS } from "../../src/domain/presets.ts";
import { presetGeometryMeta } from "../../src/http/routes/demo-page.ts";
import { type PresetGeometries, presetOutput, squareSrcset } from "../../web/src/srcset.ts";
import { cardOf, type DemoFixture, startDemoFixture } from "./demo-page-fixture.ts";

/** The demo page's details from issue 14: a pasted #key=, the Delete? chip, toasts, srcset. */
let fx: DemoFixture;

beforeAll(async () => {
  fx = await startDemoFixture();
}, 300_000);

afterAll(() => fx?.close(), 120_000);

function fail(): never {
  throw new Error("the fixture uploads images");
}
const newest = () => fx.images.at(-1) ?? fail();

describe("a #key= pasted into the address bar of an open tab", () => {
  it("connects the tab asking for a key, and switches the key of a connected one", async () => {
    const context = await fx.browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${fx.run.baseUrl}/`);
      await page.locator("#key-input").waitFor();
      // Same document, new fragment: what pasting the printed link into the tab does.
      await page.goto(`${fx.run.baseUrl}/#key=${encodeURIComponent(fx.run.alice)}`);
      await page
        .locator(".card")
        .nth(fx.images.length - 1)
        .waitFor();
      expect(new URL(page.url()).hash).toBe("");
      expect(await page.locator("#connect").isHidden()).toBe(true);

      await page.goto(`${fx.run.baseUrl}/#key=${encodeURIComponent(fx.run.bob)}`);
      await page.locator("#gallery-empty:not([hidden])").waitFor();
      expect(await page.locator(".card").count()).toBe(0);
      expect(await page.evaluate(() => localStorage.getItem("imgup.apiKey"))).toBe(fx.run.bob);
      expect(new URL(page.url()).hash).toBe("");
    } finally {
      await context.close();
    }
  });
});

describe("the Delete? chip", () => {
  // From a wide desktop down to a small phone, through the narrowest four- and two-column cards.
  it.each([1280, 1010, 700, 561, 390, 320])("lies wholly inside its card at %i px", async (width) => {
    const page = await fx.open({ viewport: { width, height: 900 } });
    try {
      await page.clock.install();
      const del = cardOf(page, newest()).locator(".delete");
      await del.click();
      expect(await del.textContent()).toBe("Delete?");
      const fits = await del.evaluate((chip) => {
        const card = (chip.closest(".card") as HTMLElement).getBoundingClientRect();
        const r = chip.getBoundingClientRect();
        return {
          inside: r.left >= card.left && r.right <= card.right && r.bottom <= card.bottom,
          textFits: chip.scrollWidth <= chip.clientWidth,
          width: r.width,
        };
      });
      expect(fits).toMatchObject({ inside: true, textFits: true });
      expect(fits.width).toBeGreaterThan(60);
    } finally {
      await page.context().close();
    }
  });
});

describe("toasts", () => {
  let page: Page;
  beforeAll(async () => {
    page = await fx.open({ viewport: { width: 1280, height: 800 } });
    // Toasts stay until the clock moves: the test reads them at its own pace.
    await page.clock.install();
    await page.clock.pauseAt(await page.evaluate(() => Date.now() + 1000));
  }, 120_000);
  afterAll(() => page?.context().close());

  it("let a click through to the card action they lie over", async () => {
    await cardOf(page, newest()).locator(".copy-link").click();
    const toast = page.locator(".toast").last();
    await toast.waitFor();
    const toastBox = await toast.boundingBox();
    if (!toastBox) fail();
    // The visibility switch of a card in the column the toast lies over, scrolled level with it.
    const under = await page.$$eval(
      ".vis-toggle",
      (toggles, box) =>
        toggles.findIndex((t) => {
          const r = t.getBoundingClientRect();
          return r.left < box.x + box.width && r.right > box.x;
        }),
      toastBox,
    );
    expect(under).toBeGreaterThanOrEqual(0);
    const toggle = page.locator(".vis-toggle").nth(under);
    await toggle.evaluate(
      (el, y) => {
        const r = el.getBoundingClientRect();
        window.scrollBy(0, r.top + r.height / 2 - y);
      },
      toastBox.y + toastBox.height / 2,
    );
    const [t, b] = [await toggle.boundingBox(), await toast.boundingBox()];
    if (!t || !b) fail();
    const overlaps =
      t.x < b.x + b.width && t.x + t.width > b.x && t.y < b.y + b.height && t.y + t.height > b.y;
    expect(overlaps, "the switch lies under the toast").toBe(true);

    const id = await toggle.evaluate((el) => el.closest(".card")?.getAttribute("data-id"));
    const wasPrivate = (await toggle.getAttribute("aria-checked")) === "true";
    // A click at that very point (Playwright's own click would scroll the switch out from under it).
    await page.mouse.click(t.x + t.width / 2, t.y + t.height / 2);
    await page.locator(`.card[data-id="${id}"] .vis-toggle[aria-checked="${!wasPrivate}"]`).waitFor();
    expect((await fx.api.getImage(id ?? "")).body.visibility).toBe(wasPrivate ? "public" : "private");
  });

  it("show at most three at once", async () => {
    for (let i = 0; i < 5; i++) await cardOf(page, newest()).locator(".copy-link").click();
    await page.waitForFunction(() => document.querySelectorAll(".toast").length <= 3);
    expect(await page.locator(".toast").count()).toBe(3);
  });
});

describe("thumbnails on a HiDPI screen", () => {
  it("come from a variant with at least two device pixels per CSS pixel at deviceScaleFactor 2", async () => {
    const page = await fx.open({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 2 });
    try {
      const shown = await page.$$eval(".card-thumb.loaded", (imgs) =>
        (imgs as HTMLImageElement[]).map((img) => ({
          currentSrc: img.currentSrc,
          srcset: img.srcset,
          slot: img.getBoundingClientRect().width,
        })),
      );
      expect(shown).toHaveLength(fx.images.length);
      for (const { currentSrc, srcset, slot } of shown) {
        expect(srcset).toMatch(/\/thumb(\?\S*)? 200w/);
        expect(new URL(currentSrc).pathname).not.toMatch(/\/thumb$/);
        const res = await fetch(currentSrc, { headers: { accept: "image/webp,image/*" } });
        expect(res.status).toBe(200);
        const { width = 0, height = 0 } = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
        expect(Math.min(width, height), currentSrc).toBeGreaterThanOrEqual(slot * 2);
      }
    } finally {
      await page.context().close();
    }
  });

  it("are offered in every preset's size, measured by the short side a square card shows", () => {
    const geometry = JSON.parse(
      (presetGeometryMeta(DEFAULT_PRESETS).match(/content="([^"]*)"/)?.[1] ?? "").replaceAll("&quot;", '"'),
    ) as PresetGeometries;
    const urls = { thumb: "/t", small: "/s", medium: "/m", large: "/l" };
    expect(squareSrcset(urls, geometry, 1600, 1067)).toBe("/t 200w, /s 320w, /m 683w, /l 1067w");
    // Never enlarged: a small image's larger presets are the image itself, offered once.
    expect(squareSrcset(urls, geometry, 300, 300)).toBe("/t 200w, /s 300w");
    expect(squareSrcset(urls, geometry, 150, 100)).toBeNull();
    expect(squareSrcset({ thumb: "/t" }, geometry, 1600, 1067)).toBeNull();
    expect(presetOutput({ w: 200, h: 200, fit: "cover", dpr: 2 }, 1600, 1067)).toEqual({ w: 400, h: 400 });
    expect(presetOutput({ h: 300, fit: "inside", dpr: 1 }, 1600, 1067)).toEqual({ w: 450, h: 300 });
  });
});

it("made no request that failed", () => {
  expect(fx.failedRequests).toEqual([]);
});
