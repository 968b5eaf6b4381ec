/**
 * @imgup/client as a user installs it: the packed tarball passes publint and attw, plain Node ESM
 * and CJS scripts (the docs' snippets, verbatim) upload a real image to a running imgup, and its
 * types compile under the strictest settings a consumer may use, with and without the DOM lib.
 */
import { copyFile, writeFile } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";
import { bin, consumerProject, exec, packClient, ROOT, workDir } from "./support.ts";

const SNIPPETS = path.join(ROOT, "docs/snippets");
const STRICT = {
  target: "ES2022",
  strict: true,
  exactOptionalPropertyTypes: true,
  erasableSyntaxOnly: true,
  verbatimModuleSyntax: true,
  noUncheckedIndexedAccess: true,
  noEmit: true,
  // The package's .d.ts files are checked too: that is what this test is about.
  skipLibCheck: false,
};

let work: Awaited<ReturnType<typeof workDir>>;
let tarball: string;
let project: string;

beforeAll(async () => {
  work = await workDir("node");
  tarball = await packClient(work.dir);
  project = await consumerProject(path.join(work.dir, "app"), tarball, {
    packageJson: { type: "module" },
    links: ["@types/node"],
  });
  for (const f of ["sdk-node-upload.mjs", "sdk-node-upload.cjs", "sdk-node.ts", "sdk-browser.ts"]) {
    await copyFile(path.join(SNIPPETS, f), path.join(project, f));
  }
  await writeFile(
    path.join(project, "check-require.cts"),
    // erasableSyntaxOnly rules out `import x = require()`: a typed require is what remains.
    'import type { ImgupClient } from "@imgup/client";\n' +
      'const imgup = require("@imgup/client") as typeof import("@imgup/client");\n' +
      'const client: ImgupClient = imgup.createClient({ baseUrl: "", token: "k" });\n' +
      "module.exports = client;\n",
  );
  await writeFile(
    path.join(project, "check-bare.ts"),
    'import { type BlobLike, createClient, type UploadResult } from "@imgup/client";\n' +
      "declare const file: BlobLike;\n" +
      'const client = createClient({ baseUrl: "https://imgup.example", token: () => "k" });\n' +
      "export const uploaded: Promise<UploadResult> = client.upload(file, { dedup: false });\n",
  );
}, 120_000);

afterAll(async () => {
  await work?.cleanup();
});

describe("the packed tarball", () => {
  it("ships only dist and package.json, with no dependencies", async () => {
    const { stdout } = await exec("tar", ["-tzf", tarball], { cwd: work.dir });
    const files = stdout.trim().split("\n").sort();
    expect(files).toEqual([
      "package/dist/index.cjs",
      "package/dist/index.d.cts",
      "package/dist/index.d.ts",
      "package/dist/index.js",
      "package/package.json",
    ]);
    const pkg = (await import(path.join(project, "node_modules/@imgup/client/package.json"), {
      with: { type: "json" },
    })) as { default: Record<string, unknown> };
    expect(pkg.default.dependencies).toBeUndefined();
    expect(pkg.default.sideEffects).toBe(false);
  });

  it("passes publint and attw (ESM and CJS, node10/node16/bundler)", async () => {
    const installed = path.join(project, "node_modules/@imgup/client");
    const lint = await exec(bin("publint"), [installed, "--strict", "--pack", "false"], { cwd: project });
    expect(lint.stdout).toContain("All good");
    // attw exits non-zero on any problem; --format ascii keeps the table readable in CI logs.
    await exec(bin("attw"), [tarball, "--format", "ascii"], { cwd: project });
  });
});

describe("types for consumers", () => {
  const tsc = async (name: string, compilerOptions: Record<string, unknown>, files: string[]) => {
    const config = path.join(project, `tsconfig.${name}.json`);
    await writeFile(config, JSON.stringify({ compilerOptions: { ...STRICT, ...compilerOptions }, files }));
    await exec(bin("tsc"), ["-p", config], { cwd: project });
  };
  const node = { module: "NodeNext", moduleResolution: "NodeNext", types: ["node"] };

  it("compile under NodeNext without the DOM lib (a Node backend), ESM and CJS", async () => {
    await tsc("nodenext", { ...node, lib: ["ES2022"] }, ["sdk-node.ts", "check-require.cts"]);
  });

  it("compile with neither the DOM lib nor @types/node (structural platform types)", async () => {
    await tsc("bare", { module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2022"], types: [] }, [
      "check-bare.ts",
    ]);
  });

  it("compile under NodeNext with the DOM lib", async () => {
    await tsc("nodenext-dom", { ...node, lib: ["ES2022", "DOM", "DOM.Iterable"] }, [
      "sdk-node.ts",
      "sdk-browser.ts",
      "check-require.cts",
    ]);
  });

  it("compile under Bundler resolution", async () => {
    await tsc(
      "bundler",
      { module: "ESNext", moduleResolution: "Bundler", lib: ["ES2022", "DOM"], types: ["node"] },
      ["sdk-node.ts", "sdk-browser.ts"],
    );
  });
});

describe("plain Node scripts upload to a running imgup", () => {
  let run: Running;
  let png: string;

  beforeAll(async () => {
    const target = dbTargets()[0];
    if (!target) throw new Error("no database target");
    run = await startImgup(target.make());
    png = path.join(project, "photo.png");
    const noise = Buffer.from(Array.from({ length: 40 * 30 * 3 }, () => Math.floor(Math.random() * 256)));
    await sharp(noise, { raw: { width: 40, height: 30, channels: 3 } })
      .png()
      .toFile(png);
  }, 120_000);

  afterAll(async () => {
    await run?.stop();
  });

  const script = async (file: string) => {
    const { stdout } = await exec(process.execPath, [file, png], {
      cwd: project,
      env: { IMGUP_URL: run.baseUrl, IMGUP_API_KEY: run.alice },
    });
    return JSON.parse(stdout.trim()) as { id: string; status: string; width: number; deduplicated: boolean };
  };

  it("ESM (.mjs) and CJS (.cjs): ready images; dedup unless dedup: false", async () => {
    const first = await script("sdk-node-upload.mjs");
    expect(first).toMatchObject({ status: "ready", width: 40, deduplicated: false });
    const again = await script("sdk-node-upload.mjs");
    expect(again).toEqual({ ...first, deduplicated: true });
    const separate = await script("sdk-node-upload.cjs");
    expect(separate).toMatchObject({ status: "ready", width: 40, deduplicated: false });
    expect(separate.id).not.toBe(first.id);
  });
});
