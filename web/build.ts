/**
 * Builds the demo page into dist/web (or the directory given): esbuild bundles web/src/main.ts
 * and web/styles.css into content-hashed files under assets/ (served immutable), and index.html
 * is written pointing at them (served no-cache). `npm run build`; `npm start` runs it first.
 */
import { readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const WEB_DIR = path.dirname(fileURLToPath(import.meta.url));
export const DEFAULT_OUT_DIR = path.resolve(WEB_DIR, "../dist/web");

/** The unhashed names index.html refers to, each replaced with its bundle's hashed name. */
const ENTRIES = {
  "/assets/main.js": path.join(WEB_DIR, "src/main.ts"),
  "/assets/styles.css": path.join(WEB_DIR, "styles.css"),
} as const;

export interface BuiltWeb {
  outDir: string;
  /** Path of every written file relative to outDir, with its size in bytes. */
  files: Array<{ file: string; bytes: number }>;
}

export async function buildWeb(outDir: string = DEFAULT_OUT_DIR): Promise<BuiltWeb> {
  const assetsDir = path.join(outDir, "assets");
  // Old hashed files would otherwise pile up build after build.
  await rm(assetsDir, { recursive: true, force: true });
  const result = await build({
    entryPoints: Object.values(ENTRIES),
    outdir: assetsDir,
    entryNames: "[name]-[hash]",
    assetNames: "[name]-[hash]",
    bundle: true,
    minify: true,
    sourcemap: "linked",
    format: "esm",
    platform: "browser",
    target: ["chrome111", "firefox113", "safari16.4", "edge111"],
    metafile: true,
    logLevel: "silent",
  });
  let html = await readFile(path.join(WEB_DIR, "index.html"), "utf8");
  for (const [reference, source] of Object.entries(ENTRIES)) {
    const output = Object.entries(result.metafile.outputs).find(
      ([, meta]) => meta.entryPoint && path.resolve(meta.entryPoint) === source,
    );
    if (!output) throw new Error(`esbuild wrote no bundle for ${source}`);
    if (!html.includes(`"${reference}"`)) throw new Error(`web/index.html does not refer to ${reference}`);
    html = html.replace(`"${reference}"`, `"/assets/${path.basename(output[0])}"`);
  }
  await writeFile(path.join(outDir, "index.html"), html);
  const written = [path.join(outDir, "index.html"), ...Object.keys(result.metafile.outputs)];
  const files = await Promise.all(
    written.map(async (file) => ({
      file: path.relative(outDir, path.resolve(file)),
      bytes: (await stat(file)).size,
    })),
  );
  return { outDir, files };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const outDir = process.argv[2] ? path.resolve(process.argv[2]) : DEFAULT_OUT_DIR;
  const built = await buildWeb(outDir);
  for (const { file, bytes } of built.files) {
    console.log(
      `${path.join(path.relative(process.cwd(), outDir), file).padEnd(48)} ${(bytes / 1024).toFixed(1)} KiB`,
    );
  }
}
