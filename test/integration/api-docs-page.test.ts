import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiReferencePolicy } from "../../src/http/routes/docs-page.ts";
import { launchChromium } from "../support/browser.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";
import { fetchDocument, operations } from "../support/openapi.ts";

const db = dbTargets()[0];
if (!db) throw new Error("no database target");

/** The API reference at /docs: Swagger UI, every asset from this server, within its CSP. */
describe("GET /docs", () => {
  let run: Running;

  beforeAll(async () => {
    run = await startImgup(db.make());
  });
  afterAll(async () => run?.stop());

  it("serves the page and its assets from this server, with a CSP that names no other host", async () => {
    const res = await fetch(`${run.baseUrl}/docs?_=1`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toBe(apiReferencePolicy(run.config));
    // Every source a directive allows is this server (its own origin or the public URL) or data:.
    const sources = csp.split(";").flatMap((d) => d.trim().split(/\s+/).slice(1));
    const origin = new URL(run.config.publicUrl).origin;
    expect(
      sources.filter((s) => !["'self'", "'none'", "'unsafe-inline'", "data:", origin].includes(s)),
    ).toEqual([]);
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    const html = await res.text();
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
    expect(assets.length).toBeGreaterThanOrEqual(5);
    for (const asset of assets) {
      expect(asset, "a path on this server").toMatch(/^\/docs\/static\//);
      const loaded = await fetch(new URL(asset, run.baseUrl));
      expect(loaded.status, asset).toBe(200);
      expect(loaded.headers.get("content-type"), asset).toMatch(
        /^(text\/css|application\/javascript|image\/png)/,
      );
      await loaded.arrayBuffer();
    }
    // The page reads the same document /openapi.json serves.
    const json = await fetch(`${run.baseUrl}/docs/json`);
    expect(await json.json()).toEqual(await fetchDocument(run.baseUrl));
  });

  it("renders every operation in Chromium with no request leaving the server and no CSP violation", async () => {
    const doc = await fetchDocument(run.baseUrl);
    const { context, close } = await launchChromium();
    try {
      const page = await context.newPage();
      const requested: string[] = [];
      const problems: string[] = [];
      page.on("request", (r) => requested.push(r.url()));
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(`console: ${m.text()}`);
      });
      await page.addInitScript(() => {
        document.addEventListener("securitypolicyviolation", (e) =>
          console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`),
        );
      });
      await page.goto(`${run.baseUrl}/docs`);
      await page.waitForSelector(".opblock");
      expect(await page.locator(".opblock").count()).toBe(operations(doc).length);
      expect(await page.locator(".info .title").innerText()).toContain("imgup");

      // Open some operations (parameters, examples, schemas, the syntax highlighter) and run one.
      for (const id of [
        "Uploads-createUpload",
        "Images-getImage",
        "Images-listImages",
        "Delivery-getOriginal",
      ]) {
        await page.locator(`#operations-${id} .opblock-summary-control`).click();
        await page.locator(`#operations-${id} .opblock-body`).waitFor();
      }
      const liveness = page.locator("#operations-Operations-getLiveness");
      await liveness.locator(".opblock-summary-control").click();
      await liveness.locator(".try-out__btn").click();
      await liveness.locator(".execute").click();
      const status = liveness.locator(".live-responses-table tbody .response-col_status");
      await status.first().waitFor();
      expect((await status.first().innerText()).trim()).toBe("200");

      const foreign = requested.filter(
        (url) => !url.startsWith(`${run.baseUrl}/`) && !url.startsWith("data:"),
      );
      expect(foreign).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await close();
    }
  });
});
