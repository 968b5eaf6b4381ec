/**
 * docs/sdk.md shows the snippet files the consumer tests compile and run, verbatim: every code
 * block there is either the same as its file, or says why it is not run.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { codeBlocks } from "../docs/markdown.ts";
import { ROOT } from "./support.ts";

const PAGE = "docs/sdk.md";
/** The snippets node-package.test.ts and vite-browser.test.ts use. */
const SNIPPETS = [
  "docs/snippets/sdk-browser.ts",
  "docs/snippets/sdk-node-upload.mjs",
  "docs/snippets/sdk-node-upload.cjs",
  "docs/snippets/sdk-node.ts",
  "docs/snippets/uppy-dashboard.ts",
];

describe(PAGE, () => {
  const blocks = codeBlocks(PAGE);

  it("has code blocks, each marked same-as a file or not-run with a reason", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(SNIPPETS.length);
    const unaccounted = blocks.filter(
      (b) => b.marker.kind !== "same-as" && !(b.marker.kind === "not-run" && b.marker.reason.length >= 10),
    );
    expect(unaccounted.map((b) => `${PAGE}:${b.line}`)).toEqual([]);
  });

  it("shows each snippet the consumer tests run, exactly as the file has it", () => {
    const shown = new Map<string, string>();
    for (const b of blocks) if (b.marker.kind === "same-as") shown.set(b.marker.file, b.text);
    expect([...shown.keys()].sort()).toEqual([...SNIPPETS].sort());
    for (const [file, text] of shown) {
      const full = path.join(ROOT, file);
      expect(existsSync(full), file).toBe(true);
      expect(text.trimEnd(), `${PAGE} differs from ${file}`).toBe(readFileSync(full, "utf8").trimEnd());
    }
  });

  it("shows the Uppy snippet with Uppy's CSS", () => {
    const uppy = readFileSync(path.join(ROOT, "docs/snippets/uppy-dashboard.ts"), "utf8");
    expect(uppy).toContain('import "@uppy/core/css/style.min.css";');
    expect(uppy).toContain('import "@uppy/dashboard/css/style.min.css";');
  });
});
