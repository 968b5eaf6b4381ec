import { mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { contentSecurityPolicy } from "../../src/http/routes/demo-page.ts";
import { buildWeb } from "../../web/build.ts";
import { launchChromium } from "../support/browser.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";

const pglite = () => {
  const target = dbTargets()[0];
  if (!target) throw new Error("no embedded database target");
  return target.make();
};

let workDir: string;
let webDir: string;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), "imgup-demo-serving-"));
  webDir = path.join(workDir, "web");
  await buildWeb(webDir);
});

afterAll(() => rm(workDir, { recursive: true, force: true }));

/** How imgup serves the demo page: headers, caching, a missing build, the flag, the key form. */
describe("demo page serving", () => {
  let run: Running;
  beforeAll(async () => {
    run = await startImgup(pglite(), { IMGUP_DEMO_DIR: webDir });
  });
  afterAll(() => run?.stop());

  it("serves the page no-cache under a CSP of its own origin, and hashed assets as immutable", async () => {
    const res = await fetch(`${run.baseUrl}/`);
    expect(res.headers.get("cache-control")).toBe("no-cache");
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval';");
    expect(csp).toContain(`connect-src 'self' ${run.baseUrl};`);
    const html = await res.text();
    const script = html.match(/src="(\/assets\/main-[A-Z0-9]+\.js)"/)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${run.baseUrl}${script}`);
    expect(asset.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(asset.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect((await fetch(`${run.baseUrl}/assets/..%2Findex.html`)).status).toBe(404);
    expect((await fetch(`${run.baseUrl}/assets/nope-ABCDEFGH.js`)).status).toBe(404);
    const again = await fetch(`${run.baseUrl}/`, {
      headers: { "If-None-Match": res.headers.get("etag") ?? "" },
    });
    expect(again.status).toBe(304);
  });

  it("lets the page connect to the bucket's origin when storage is S3", () => {
    const env = { IMGUP_STORAGE: "s3", S3_BUCKET: "b", S3_ENDPOINT: "http://10.0.0.9:7480" };
    const pathStyle = contentSecurityPolicy(loadConfig({ ...env, S3_FORCE_PATH_STYLE: "true" }));
    expect(pathStyle).toContain("connect-src 'self' http://localhost:8080 http://10.0.0.9:7480;");
    expect(contentSecurityPolicy(loadConfig({ IMGUP_STORAGE: "s3", S3_BUCKET: "b" }))).toContain(
      "https://*.amazonaws.com",
    );
  });

  it("without a stored key asks for one and refuses a wrong one", async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      await page.goto(`${run.baseUrl}/`);
      await page.locator("#key-input").fill("imgup_wrong");
      await page.locator("#connect-form button[type=submit]").click();
      await page.locator("#connect-error:not([hidden])").waitFor();
      expect(await page.locator("#connect-error").textContent()).toBe("That key was not accepted.");
      await page.locator("#key-input").fill(run.alice);
      await page.locator("#connect-form button[type=submit]").click();
      await page.locator("#gallery-empty").waitFor();
      expect(await page.locator("#forget-key").isVisible()).toBe(true);
    } finally {
      await browser.close();
    }
  });

  it("says how to build the page while the bundle is missing", async () => {
    // The route reads the bundle on each request: a build (or its removal) needs no restart.
    await rename(webDir, `${webDir}.moved`);
    try {
      const res = await fetch(`${run.baseUrl}/`);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(await res.text()).toContain("npm run build");
    } finally {
      await rename(`${webDir}.moved`, webDir);
    }
    expect(await (await fetch(`${run.baseUrl}/`)).text()).toContain('id="dropzone"');
  });

  it("is absent when IMGUP_DEMO_PAGE=false", async () => {
    const off = await startImgup(pglite(), { IMGUP_DEMO_DIR: webDir, IMGUP_DEMO_PAGE: "false" });
    try {
      expect((await fetch(`${off.baseUrl}/`)).status).toBe(404);
    } finally {
      await off.stop();
    }
  });
});
