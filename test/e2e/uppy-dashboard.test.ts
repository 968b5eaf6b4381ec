import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { build } from "esbuild";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api, type ImageJson } from "../support/api.ts";
import { ARTIFACTS_DIR, launchChromium } from "../support/browser.ts";
import { dbTargets, eventually, type Running, startImgup } from "../support/harness.ts";
import { photoLike } from "../support/image-builders.ts";
import { startImgupOnBrowserBucket } from "../support/rgw-browser-target.ts";
import { s3TestConnection } from "../support/s3-target.ts";

const MiB = 1024 * 1024;
const required = <T>(value: T | undefined): T => {
  if (value === undefined) throw new Error("missing test target");
  return value;
};
const pglite = () => required(dbTargets()[0]).make();
const ROOT = path.resolve(import.meta.dirname, "../..");
const connection = s3TestConnection();
const LIMITS = { IMGUP_MAX_UPLOAD_BYTES: String(64 * MiB), IMGUP_MULTIPART_PART_SIZE: String(8 * MiB) };

/** The smallest real Uppy setup: Dashboard inline, AwsS3 configured by the imgup SDK. */
const PAGE_SOURCE = `
import Uppy from "@uppy/core";
import Dashboard from "@uppy/dashboard";
import AwsS3 from "@uppy/aws-s3";
import { createClient, uppyAwsS3Options } from "./client/index.ts";

const key = new URLSearchParams(location.hash.slice(1)).get("key") ?? "";
const client = createClient({ baseUrl: "", token: key });
const uppy = new Uppy({ autoProceed: false })
  .use(Dashboard, { inline: true, target: "#uppy", proudlyDisplayPoweredByUppy: false, height: 520 })
  .use(AwsS3, uppyAwsS3Options(client));
uppy.on("complete", (result) => {
  window.uppyDone = { successful: result.successful.length, failed: result.failed.map((f) => f.error) };
});
`;

let workDir: string;
let bundle: { js: string; css: string };
let files: { photo: string; big: string };

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), "imgup-uppy-"));
  const js = await build({
    stdin: { contents: PAGE_SOURCE, resolveDir: ROOT, loader: "ts", sourcefile: "uppy-page.ts" },
    bundle: true,
    format: "esm",
    platform: "browser",
    write: false,
    logLevel: "silent",
  });
  const css = await Promise.all(
    ["node_modules/@uppy/core/dist/style.min.css", "node_modules/@uppy/dashboard/dist/style.min.css"].map(
      (f) => readFile(path.join(ROOT, f), "utf8"),
    ),
  );
  bundle = { js: js.outputFiles[0]?.text ?? "", css: css.join("\n") };
  files = { photo: path.join(workDir, "lighthouse.jpg"), big: path.join(workDir, "panorama.png") };
  await (await photoLike(1200, 800, 11)).jpeg().toFile(files.photo);
  // Above the SDK's 32 MiB multipart threshold: Uppy goes through the multipart functions.
  const [w, h] = [3500, 3400];
  await sharp(randomBytes(w * h * 3), { raw: { width: w, height: h, channels: 3 } })
    .png({ compressionLevel: 0 })
    .toFile(files.big);
  await mkdir(ARTIFACTS_DIR, { recursive: true });
}, 120_000);

afterAll(() => rm(workDir, { recursive: true, force: true }));

/** A plain PUT through Uppy ends with nothing but the bucket's own notification. */
const startOnRgw = () => startImgupOnBrowserBucket(LIMITS, "imgup-uppy");

const backends = [
  {
    name: "embedded",
    start: async () => {
      const run = await startImgup(pglite(), LIMITS);
      return { run, cleanup: run.stop };
    },
  },
  ...(connection ? [{ name: "rgw", start: startOnRgw }] : []),
];

describe.each(backends)("Uppy Dashboard with the imgup SDK ($name)", (backend) => {
  let run: Running;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    ({ run, cleanup } = await backend.start());
  }, 120_000);
  afterAll(() => cleanup?.(), 120_000);

  it("uploads a photo (PUT) and a large image (multipart) picked in the Dashboard; both become ready", async () => {
    const browser = await launchChromium();
    try {
      // A fulfilled document has no IP address, so Chromium counts it as public and blocks its
      // requests to the loopback bucket (Local Network Access) unless the origin is granted that.
      await browser.context.grantPermissions(["local-network-access"], { origin: run.baseUrl });
      const page = await browser.context.newPage();
      await page.setViewportSize({ width: 900, height: 700 });
      const errors: string[] = [];
      page.on("pageerror", (err) => errors.push(String(err)));
      const parts = new Set<string>();
      page.on("request", (r) => void parts.add(new URL(r.url()).searchParams.get("partNumber") ?? ""));
      // The test page is served on imgup's origin, so the SDK's API calls are same-origin.
      const pageUrl = `${run.baseUrl}/uppy-test/`;
      await page.route(`${pageUrl}**`, (route) => {
        const file = new URL(route.request().url()).pathname.split("/").pop();
        if (file === "app.js") return route.fulfill({ contentType: "text/javascript", body: bundle.js });
        if (file === "app.css") return route.fulfill({ contentType: "text/css", body: bundle.css });
        return route.fulfill({ contentType: "text/html", body: PAGE_HTML });
      });
      await page.goto(`${pageUrl}#key=${encodeURIComponent(run.alice)}`);
      await page.setInputFiles('.uppy-Dashboard-input[name="files[]"]:not([webkitdirectory])', [
        files.photo,
        files.big,
      ]);
      await page.locator(".uppy-StatusBar-actionBtn--upload").click();
      const done = await page.waitForFunction(() => (window as { uppyDone?: unknown }).uppyDone, null, {
        timeout: 120_000,
      });
      expect(await done.jsonValue()).toEqual({ successful: 2, failed: [] });
      // 35.7 MB in 8 MiB chunks (and "" for every request that is not a part).
      expect(parts.size).toBe(5 + 1);
      await page.screenshot({ path: path.join(ARTIFACTS_DIR, `uppy-dashboard-${backend.name}.png`) });
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }

    // Uppy is done when the bytes are in the storage; imgup processes them on its own from there.
    const alice = new Api(run.baseUrl, run.alice);
    const ready = await eventually(async () => {
      const list = await alice.request<{ items: ImageJson[] }>("GET", "/v1/images");
      const items = list.body.items;
      return items.length === 2 && items.every((i) => i.status === "ready") ? items : undefined;
    }, 90_000);
    const byName = Object.fromEntries(ready.map((i) => [i.filename, i]));
    expect(byName["lighthouse.jpg"]).toMatchObject({ width: 1200, height: 800, format: "jpeg" });
    expect(byName["panorama.png"]).toMatchObject({ width: 3500, height: 3400, format: "png" });
    const original = await fetch(byName["lighthouse.jpg"]?.urls?.original ?? "");
    expect(Buffer.from(await original.arrayBuffer()).equals(await readFile(files.photo))).toBe(true);
  }, 300_000);
});

const PAGE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>Uppy → imgup</title><link rel="stylesheet" href="app.css"></head>
<body><div id="uppy"></div><script type="module" src="app.js"></script></body></html>`;
