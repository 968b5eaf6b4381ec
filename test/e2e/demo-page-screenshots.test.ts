import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { BrowserContextOptions, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARTIFACTS_DIR } from "../support/browser.ts";
import { cardOf, type DemoFixture, startDemoFixture } from "./demo-page-fixture.ts";

/**
 * The demo page as a person sees it on a desktop, a phone and in dark mode, each with a gallery, a
 * toast and a "Delete?" waiting for its second click. Written to test-artifacts/demo-page/ (CI
 * keeps it). The reviewed copies in test-artifacts/screenshots/ are committed and left alone by the
 * test: to refresh them, run it, look at each picture, and copy them over. Each shot also checks
 * what a reviewer would: nothing clipped or overflowing, readable contrast, 44 px touch targets.
 */
const SHOTS: Array<{ name: string; options: BrowserContextOptions; touch: boolean }> = [
  { name: "desktop", options: { viewport: { width: 1280, height: 800 } }, touch: false },
  {
    name: "mobile",
    options: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true },
    touch: true,
  },
  { name: "dark", options: { viewport: { width: 1280, height: 800 }, colorScheme: "dark" }, touch: false },
];

const SHOTS_DIR = path.join(ARTIFACTS_DIR, "demo-page");

let fx: DemoFixture;

beforeAll(async () => {
  fx = await startDemoFixture();
  await mkdir(SHOTS_DIR, { recursive: true });
}, 300_000);

afterAll(() => fx?.close(), 120_000);

describe.each(SHOTS)("demo page screenshot: $name", ({ name, options, touch }) => {
  let page: Page;
  beforeAll(async () => {
    page = await fx.open(options);
    // Timers stand still from here: the toast and the "Delete?" wait for the camera.
    await page.clock.install();
    await page.clock.pauseAt(await page.evaluate(() => Date.now() + 1000));
  }, 120_000);
  afterAll(() => page?.context().close());

  it("shows a toast and a Delete? chip over the gallery, and is captured", async () => {
    const [newest, second] = [fx.images.at(-1), fx.images.at(-2)];
    if (!newest || !second) throw new Error("the fixture uploads images");
    if (touch) {
      // On a phone the gallery is below the drop zone: scroll it into view as a person would.
      await page.evaluate(() => {
        const panel = document.getElementById("gallery")?.closest(".panel");
        const bar = document.querySelector(".topbar")?.getBoundingClientRect().height ?? 0;
        if (panel) window.scrollTo(0, panel.getBoundingClientRect().top + window.scrollY - bar - 12);
      });
    }
    await cardOf(page, second).locator(".delete").click();
    await cardOf(page, newest).locator(".copy-link").click();
    await page.locator(".toast-detail").waitFor();
    expect(await cardOf(page, second).locator(".delete").textContent()).toBe("Delete?");
    // The pointer rests where nothing hovers, as in a picture of the page at rest.
    if (!touch) await page.mouse.move(2, 790);
    await page.screenshot({ path: path.join(SHOTS_DIR, `demo-page-${name}.png`), animations: "disabled" });
  });

  it("clips nothing: every card's actions fit inside the card", async () => {
    const overflowing = await page.$$eval(".card", (cards) =>
      cards.flatMap((card) => {
        const box = card.getBoundingClientRect();
        return [...card.querySelectorAll<HTMLElement>(".card-actions > *, .card-title, .card-meta")]
          .filter((el) => el.offsetParent !== null)
          .filter((el) => {
            const r = el.getBoundingClientRect();
            return r.left < box.left || r.right > box.right + 0.5 || el.scrollWidth > el.clientWidth + 1;
          })
          .filter(
            (el) =>
              !el.matches(".card-title, .card-meta") || getComputedStyle(el).textOverflow !== "ellipsis",
          )
          .map((el) => `${card.getAttribute("data-id")} ${el.className}`);
      }),
    );
    expect(overflowing).toEqual([]);
  });

  it("keeps text readable: contrast of at least 4.5:1 against its background", async () => {
    const low = await page.evaluate(() => {
      const rgb = (c: string) => (c.match(/[\d.]+/g) ?? []).map(Number);
      const lum = ([r = 0, g = 0, b = 0]: number[]) => {
        const f = (v: number) => {
          const s = v / 255;
          return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
        };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const background = (el: Element | null): number[] => {
        for (let e = el; e; e = e.parentElement) {
          const c = rgb(getComputedStyle(e).backgroundColor);
          if (c.length === 3 || (c[3] ?? 0) > 0.9) return c.slice(0, 3);
        }
        return rgb(getComputedStyle(document.documentElement).backgroundColor).slice(0, 3);
      };
      const selectors = [
        ".card-title",
        ".card-meta",
        ".chip",
        ".panel-head h2",
        ".muted",
        ".dropzone-title",
        ".dropzone-sub",
        ".dropzone-hint",
        ".segmented span",
        ".brand",
        ".toast-text span",
      ];
      const found: string[] = [];
      for (const el of document.querySelectorAll(selectors.join(","))) {
        if ((el as HTMLElement).offsetParent === null && !el.closest(".toasts")) continue;
        const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(background(el))];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        if (ratio < 4.5) found.push(`${el.className || el.tagName} ${ratio.toFixed(2)}`);
      }
      return found;
    });
    expect(low).toEqual([]);
  });

  it.runIf(touch)("gives every control a touch target of at least 44 × 44 px", async () => {
    const small = await page.$$eval("button, .segmented label, #key-input", (els) =>
      els
        .filter((el) => (el as HTMLElement).offsetParent !== null && !el.closest(".dropzone-sub"))
        .map((el) => ({ el, r: el.getBoundingClientRect() }))
        .filter(({ r }) => r.width < 44 || r.height < 44)
        .map(({ el, r }) => `${el.className || el.tagName} ${Math.round(r.width)}×${Math.round(r.height)}`),
    );
    expect(small).toEqual([]);
  });
});

it("made no request that failed", () => {
  expect(fx.failedRequests).toEqual([]);
});
