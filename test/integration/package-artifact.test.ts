import { type ChildProcess, execFile, spawn } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { eventually, freePort } from "../support/harness.ts";

/**
 * The package as an operator gets it: `npm run build`, `npm pack`, the tarball installed into an
 * empty folder, `imgup` run from there with plain node. The build happens in a staging copy of the
 * sources (node_modules linked) so the checkout's dist/ is never rebuilt under another test.
 */
const REPO = path.resolve(import.meta.dirname, "../..");
/** What `npm run build` reads: the server, the demo page and the SDK sources the page bundles. */
const SOURCES = [
  "package.json",
  "tsconfig.json",
  "tsconfig.build.json",
  "README.md",
  "bin",
  "src",
  "web",
  "client",
];

let work: string;
let installed: string;
let server: ChildProcess | undefined;
const execFileAsync = promisify(execFile);

async function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) {
  try {
    return (await execFileAsync(cmd, args, { cwd, env, encoding: "utf8", maxBuffer: 64 * 2 ** 20 })).stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")} failed: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
}

/** Only what a shell would pass on: no NODE_OPTIONS or loader Vitest or tsx may have set here. */
function plainEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const keep = ["PATH", "HOME", "TMPDIR", "LANG"];
  return {
    ...Object.fromEntries(keep.flatMap((k) => (process.env[k] ? [[k, process.env[k]]] : []))),
    ...extra,
  };
}

// Build, pack and an install from the cache: minutes on a loaded 2-core machine, twice the hook default.
beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), "imgup-artifact-"));
  const staging = path.join(work, "staging");
  const skip = new Set(["node_modules", "dist"].map((d) => path.join(REPO, "client", d)));
  for (const entry of SOURCES)
    cpSync(path.join(REPO, entry), path.join(staging, entry), {
      recursive: true,
      filter: (f) => !skip.has(f),
    });
  symlinkSync(path.join(REPO, "node_modules"), path.join(staging, "node_modules"));
  await run("npm", ["run", "build"], staging);
  const packed = JSON.parse(
    await run("npm", ["pack", "--json", "--pack-destination", work], staging),
  ) as Array<{
    filename: string;
  }>;
  const tarball = path.join(work, packed[0]?.filename ?? "missing.tgz");
  installed = path.join(work, "app");
  mkdirSync(installed);
  await installFrom(tarball);
}, 600_000);

/**
 * A real install of the tarball, from the npm cache alone: `npm ci` fills the cache with tarballs
 * but not with the registry metadata a plain `npm install` asks for, so the operator's folder gets
 * a lockfile made of the checkout's (its runtime packages, the versions CI tested; no dev ones, so
 * no tsx) and `npm ci --offline` installs from it. If that fails (a cache without some tarball), the
 * package is unpacked and the same runtime packages are linked from the checkout's node_modules.
 */
async function installFrom(tarball: string): Promise<void> {
  const spec = `file:${path.relative(installed, tarball)}`;
  const lock = JSON.parse(readFileSync(path.join(REPO, "package-lock.json"), "utf8")) as {
    packages: Record<string, { dev?: boolean; link?: boolean; [k: string]: unknown }>;
  };
  const root = lock.packages[""] ?? {};
  const runtime = Object.entries(lock.packages).filter(
    ([key, entry]) => key.startsWith("node_modules/") && !entry.dev && !entry.link,
  );
  const packages = {
    "": { name: "operator", dependencies: { imgup: spec } },
    ...Object.fromEntries(runtime),
    "node_modules/imgup": {
      version: root.version,
      resolved: spec,
      license: root.license,
      dependencies: root.dependencies,
      bin: root.bin,
      engines: root.engines,
    },
  };
  writeFileSync(
    path.join(installed, "package.json"),
    JSON.stringify({ name: "operator", private: true, dependencies: { imgup: spec } }),
  );
  writeFileSync(
    path.join(installed, "package-lock.json"),
    JSON.stringify({ name: "operator", lockfileVersion: 3, requires: true, packages }),
  );
  try {
    await run("npm", ["ci", "--offline", "--no-audit", "--no-fund"], installed);
    return;
  } catch (err) {
    console.warn(`npm ci --offline of the tarball failed, linking runtime dependencies instead: ${err}`);
  }
  const pkg = path.join(installed, "node_modules/imgup");
  mkdirSync(pkg, { recursive: true });
  await run("tar", ["-xzf", tarball, "-C", pkg, "--strip-components=1"], installed);
  for (const [key] of runtime) {
    const name = key.slice("node_modules/".length);
    if (name.includes("/node_modules/")) continue;
    mkdirSync(path.dirname(path.join(installed, "node_modules", name)), { recursive: true });
    symlinkSync(path.join(REPO, "node_modules", name), path.join(installed, "node_modules", name));
  }
  mkdirSync(path.join(installed, "node_modules/.bin"), { recursive: true });
  symlinkSync("../imgup/bin/imgup.js", path.join(installed, "node_modules/.bin/imgup"));
}

afterAll(async () => {
  if (server && server.exitCode === null && server.signalCode === null) {
    const gone = new Promise((resolve) => server?.once("exit", resolve));
    server.kill("SIGTERM");
    await gone;
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the npm package", () => {
  it("ships the compiled server and the built demo page, not the sources or the tests", () => {
    const pkg = path.join(installed, "node_modules/imgup");
    expect(existsSync(path.join(pkg, "dist/cli.js"))).toBe(true);
    expect(existsSync(path.join(pkg, "dist/imaging/sandbox/child.js"))).toBe(true);
    expect(existsSync(path.join(pkg, "dist/imaging/heic-worker.mjs"))).toBe(true);
    expect(existsSync(path.join(pkg, "dist/web/index.html"))).toBe(true);
    expect(existsSync(path.join(pkg, "src"))).toBe(false);
    expect(existsSync(path.join(pkg, "test"))).toBe(false);
    const compiled = readdirSync(path.join(pkg, "dist"), { recursive: true }).map(String);
    expect(compiled.filter((f) => f.endsWith(".ts") || f.includes(".test."))).toEqual([]);
  });

  it("installs without tsx anywhere in the tree", async () => {
    const names = readdirSync(path.join(installed, "node_modules"), { recursive: true }).map(String);
    expect(names.filter((n) => n === "tsx" || n.endsWith(`${path.sep}tsx`))).toEqual([]);
    await expect(
      run(process.execPath, ["-e", "require.resolve('tsx')"], installed, plainEnv()),
    ).rejects.toThrow(/Cannot find module 'tsx'/);
  });

  it("answers `npx imgup --help` with plain node", async () => {
    const out = await run("npx", ["--no-install", "imgup", "--help"], installed, plainEnv());
    expect(out).toMatch(/usage: imgup/i);
    expect(out).toContain("serve");
  });

  it("serves the built demo page and processes an upload with embedded defaults", async () => {
    const port = await freePort();
    const dataDir = path.join(work, "data");
    let output = "";
    server = spawn(path.join(installed, "node_modules/.bin/imgup"), ["serve"], {
      cwd: installed,
      env: plainEnv({
        PORT: String(port),
        HOST: "127.0.0.1",
        IMGUP_DATA_DIR: dataDir,
        LOG_LEVEL: "info",
        IMGUP_PUBLIC_URL: `http://127.0.0.1:${port}`,
      }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    server.stdout?.on("data", (d: Buffer) => {
      output = (output + d).slice(-50_000);
    });
    server.stderr?.on("data", (d: Buffer) => {
      output = (output + d).slice(-50_000);
    });
    const baseUrl = `http://127.0.0.1:${port}`;
    await eventually(async () => {
      if (server?.exitCode !== null) throw new Error(`imgup serve exited ${server?.exitCode}\n${output}`);
      return (await fetch(`${baseUrl}/healthz`).catch(() => null))?.ok;
    }, 120_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${output}`);
    });

    const page = await fetch(`${baseUrl}/`);
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(html).not.toContain("not built");
    const assets = [...html.matchAll(/"\/assets\/([^"]+\.(?:js|css))"/g)].map((m) => m[1]);
    expect(assets.some((a) => a?.endsWith(".js"))).toBe(true);
    expect(assets.some((a) => a?.endsWith(".css"))).toBe(true);
    for (const asset of assets) {
      const res = await fetch(`${baseUrl}/assets/${asset}`);
      expect(res.status, asset).toBe(200);
      expect((await res.arrayBuffer()).byteLength, asset).toBeGreaterThan(100);
    }

    const key = readFileSync(path.join(dataDir, "dev-api-key"), "utf8").trim();
    const api = new Api(baseUrl, key);
    const bytes = await makeImage("jpeg", 320, 200);
    const { intent, put } = await api.uploadBytes(bytes, {
      filename: "packaged.jpg",
      contentType: "image/jpeg",
    });
    expect(put.status).toBeLessThan(300);
    const image = await api.settled(intent.image.id);
    expect(image.status, JSON.stringify(image)).toBe("ready");
  });
});
