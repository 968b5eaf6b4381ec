import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { build } from "esbuild";
import type { BrowserContext, Page } from "playwright-core";
import { FIXTURES, type FixtureKind } from "../../client/test-scenarios/index.ts";
import type { SdkTestApi } from "../e2e/client-sdk-page.ts";
import { fixtureBytes } from "./client-sdk-fixtures.ts";

export type { SdkTestApi } from "../e2e/client-sdk-page.ts";

/** test/e2e/client-sdk-page.ts as the browser gets it: one ESM file, no Node built-ins. */
export async function buildSdkTestBundle(): Promise<string> {
  const result = await build({
    entryPoints: [path.resolve("test/e2e/client-sdk-page.ts")],
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "chrome120",
    write: false,
    logLevel: "silent",
  });
  const [bundle] = result.outputFiles;
  if (!bundle) throw new Error("esbuild produced nothing");
  return bundle.text;
}

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>imgup SDK test</title></head>
<body><input type="file" id="file"><script type="module" src="/__sdk-test/bundle.js"></script></body></html>`;

/**
 * Opens the test page on imgup's own origin (imgup's API has no CORS, as a same-origin page needs
 * none): the page and its bundle are answered by Playwright, everything else reaches imgup.
 */
export async function openSdkTestPage(
  context: BrowserContext,
  baseUrl: string,
  bundle: string,
): Promise<Page> {
  const page = await context.newPage();
  await page.route(`${baseUrl}/__sdk-test/**`, async (route) => {
    const { pathname } = new URL(route.request().url());
    if (pathname === "/__sdk-test/") return route.fulfill({ contentType: "text/html", body: PAGE });
    if (pathname === "/__sdk-test/bundle.js")
      return route.fulfill({ contentType: "text/javascript", body: bundle });
    const kind = /^\/__sdk-test\/fixtures\/(\w+)$/.exec(pathname)?.[1];
    if (kind && Object.hasOwn(FIXTURES, kind)) {
      const body = await fixtureBytes(kind as FixtureKind);
      return route.fulfill({ contentType: "application/octet-stream", body });
    }
    return route.fulfill({ status: 404, body: "no such test resource" });
  });
  await page.goto(`${baseUrl}/__sdk-test/`);
  await page.waitForFunction(() => "sdkTest" in window);
  return page;
}

/** Calls a function of the page's test API (client-sdk-page.ts) with JSON-able arguments. */
export function inPage<K extends keyof SdkTestApi>(
  page: Page,
  name: K,
  ...args: Parameters<SdkTestApi[K]>
): Promise<Awaited<ReturnType<SdkTestApi[K]>>> {
  return page.evaluate(
    ([fn, fnArgs]) => {
      const api = (window as unknown as { sdkTest: Record<string, (...a: unknown[]) => unknown> }).sdkTest;
      const call = api[fn];
      if (!call) throw new Error(`no ${fn} in the page's test API`);
      return call(...fnArgs);
    },
    [name as string, args as unknown[]] as const,
  ) as Promise<Awaited<ReturnType<SdkTestApi[K]>>>;
}

/** The Chromium renderer processes this process started (Linux /proc; empty elsewhere). */
export async function rendererPids(): Promise<number[]> {
  const pids = await readdir("/proc").catch(() => [] as string[]);
  const children = new Map<number, number[]>();
  const renderers = new Set<number>();
  for (const name of pids) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, "utf8");
      // The command may hold spaces and parentheses: the fields after the last ")" are fixed.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
      if ((await readFile(`/proc/${name}/cmdline`, "utf8")).includes("--type=renderer"))
        renderers.add(Number(name));
    } catch {
      // the process ended while we looked
    }
  }
  const found: number[] = [];
  const queue = [...(children.get(process.pid) ?? [])];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    if (renderers.has(pid)) found.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return found;
}

/**
 * Proportional set size (shared pages split between their users) of the given processes: what a
 * page costs beyond its JS heap, such as ArrayBuffers and request bodies. 0 for ended processes.
 */
export async function pssBytes(pids: readonly number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) {
    const rollup = await readFile(`/proc/${pid}/smaps_rollup`, "utf8").catch(() => "");
    total += Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0) * 1024;
  }
  return total;
}
