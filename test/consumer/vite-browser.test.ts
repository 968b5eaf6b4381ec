/**
 * A Vite vanilla-ts app (the template's own tsconfig) that installed the packed @imgup/client,
 * built with `tsc && vite build`, served on its own origin; in Chromium it uploads to imgup on
 * another origin with only IMGUP_CORS_ORIGINS set. The docs' browser and Uppy snippets are its
 * sources, verbatim.
 */
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import path from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "../support/browser.ts";
import { dbTargets, freePort, type Running, startImgup } from "../support/harness.ts";
import { bin, consumerProject, exec, packClient, ROOT, workDir } from "./support.ts";
import { INDEX_HTML, MAIN_TS, VITE_TSCONFIG } from "./vite-page.ts";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".svg": "image/svg+xml",
};

/** The built app, as any static host would serve it. */
function serveStatic(dir: string, port: number): Promise<Server> {
  const server = createServer(async (req, res) => {
    const pathname = new URL(req.url ?? "/", "http://x").pathname;
    const file = path.join(dir, pathname === "/" ? "index.html" : path.normalize(pathname));
    if (!file.startsWith(dir)) return res.writeHead(403).end();
    try {
      const body = await readFile(file);
      res
        .writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" })
        .end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

let work: Awaited<ReturnType<typeof workDir>>;
let run: Running;
let pages: Server[] = [];
let browser: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;
let otherOrigin: string;

type PageApi = Record<string, (...args: string[]) => Promise<Record<string, unknown>>>;
const call = <T>(name: string, ...args: string[]) =>
  page.evaluate(
    ([n, a]) => (window as unknown as { imgupTest: PageApi }).imgupTest[n as string]?.(...(a as string[])),
    [name, args] as const,
  ) as Promise<T>;

beforeAll(async () => {
  work = await workDir("vite");
  const tarball = await packClient(work.dir);
  const app = await consumerProject(path.join(work.dir, "app"), tarball, {
    packageJson: { type: "module" },
    links: ["vite", "@uppy/core", "@uppy/dashboard", "@uppy/aws-s3"],
  });
  await mkdir(path.join(app, "src"));
  await writeFile(path.join(app, "tsconfig.json"), JSON.stringify(VITE_TSCONFIG, null, 2));
  await writeFile(path.join(app, "index.html"), INDEX_HTML);
  await writeFile(path.join(app, "src/main.ts"), MAIN_TS);
  for (const f of ["sdk-browser.ts", "uppy-dashboard.ts"]) {
    await copyFile(path.join(ROOT, "docs/snippets", f), path.join(app, "src", f));
  }
  // The template's build script: tsc && vite build.
  await exec(bin("tsc"), [], { cwd: app });
  await exec(
    process.execPath,
    [path.join(app, "node_modules/vite/bin/vite.js"), "build", "--logLevel", "warn"],
    {
      cwd: app,
    },
  );

  const pagePort = await freePort();
  const otherPort = await freePort();
  const dist = path.join(app, "dist");
  pages = [await serveStatic(dist, pagePort), await serveStatic(dist, otherPort)];
  otherOrigin = `http://127.0.0.1:${otherPort}`;
  const target = dbTargets()[0];
  if (!target) throw new Error("no database target");
  // Only the page's origin is allowed: the second origin serves the same app and must be refused.
  run = await startImgup(target.make(), { IMGUP_CORS_ORIGINS: `http://127.0.0.1:${pagePort}` });
  browser = await launchChromium();
  page = await browser.context.newPage();
  const hash = new URLSearchParams({ imgup: run.baseUrl, key: run.alice });
  await page.goto(`http://127.0.0.1:${pagePort}/#${hash}`);
  await page.waitForFunction(() => "imgupTest" in window);
}, 240_000);

afterAll(async () => {
  await browser?.close();
  for (const s of pages) s.close();
  await run?.stop();
  await work?.cleanup();
});

describe("a Vite app on another origin", () => {
  it("uploads with progress; a repeat is deduplicated (same id), dedup: false makes a new image", async () => {
    const r = await call<{
      phases: string[];
      uploadingEvents: number;
      bar: number;
      ids: string[];
      deduplicated: boolean[];
    }>("dedup");
    expect(r.phases).toEqual(["hashing", "uploading", "processing"]);
    expect(r.uploadingEvents).toBeGreaterThan(0);
    expect(r.bar).toBe(1);
    expect(r.deduplicated).toEqual([false, true, false]);
    expect(r.ids[1]).toBe(r.ids[0]);
    expect(r.ids[2]).not.toBe(r.ids[0]);
  });

  it("fetches a private image through its signed link", async () => {
    const r = await call<{ url: string; status: number; type: string; bytes: number }>("privateLink");
    expect(r.url).toContain(run.baseUrl);
    expect(r.url).toMatch(/sig=/);
    expect(r).toMatchObject({ status: 200, type: "image/png" });
    expect(r.bytes).toBeGreaterThan(0);
  });

  it("draws a public <img crossorigin> into a canvas and reads it back (not tainted)", async () => {
    const r = await call<{ src: string; width: number; opaque?: number; error?: string }>("canvas");
    expect(r.error).toBeUndefined();
    expect(r.src).toContain(run.baseUrl);
    expect(r.width).toBeGreaterThan(0);
    expect(r.opaque).toBeGreaterThan(0);
  });

  it("uploads through the docs' Uppy Dashboard (styled by Uppy's CSS) until ready", async () => {
    const r = await call<{ successful: number; status: string; width: number; styled: string }>("uppyUpload");
    expect(r).toMatchObject({ successful: 1, status: "ready", width: 48 });
    // Uppy's stylesheet positions the Dashboard; unstyled markup stays "static".
    expect(r.styled).toBe("relative");
  });

  it("an origin imgup does not allow fails at once with network_error naming CORS", async () => {
    const other = await browser.context.newPage();
    try {
      const hash = new URLSearchParams({ imgup: run.baseUrl, key: run.alice });
      await other.goto(`${otherOrigin}/#${hash}`);
      await other.waitForFunction(() => "imgupTest" in window);
      const r = (await other.evaluate(
        (base) => (window as unknown as { imgupTest: PageApi }).imgupTest.refused?.(base),
        run.baseUrl,
      )) as { code: string; message: string };
      expect(r.code).toBe("network_error");
      expect(r.message).toContain("CORS");
    } finally {
      await other.close();
    }
  });
});
