/** @imgup/client is a package of its own: nothing in client/ may reach into the server's code. */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./support.ts";

const CLIENT = path.join(ROOT, "client");
/** Bare imports the package may use: hash-wasm is bundled into dist (no runtime dependency). */
const ALLOWED_PACKAGES = new Set(["hash-wasm"]);
/** Build and test tooling, never part of the package. */
const TOOLING = (file: string) => file.endsWith(".test.ts") || file === "tsdown.config.ts";

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name === "node_modules" || e.name === "dist") return [];
    const full = path.join(dir, e.name);
    return e.isDirectory() ? sources(full) : e.name.endsWith(".ts") ? [full] : [];
  });
}

/** Specifiers of import/export ... from, import("..."), and side-effect imports. */
function specifiers(source: string): string[] {
  const found = source.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+)["']/g);
  return [...found].map((m) => m[1] ?? "");
}

describe("client/ imports", () => {
  const files = sources(CLIENT).filter((f) => !TOOLING(path.relative(CLIENT, f)));

  it("finds the sources and their imports (the scan itself works)", () => {
    expect(files.length).toBeGreaterThan(10);
    expect(specifiers('import { a } from "./a.ts";\nexport * from "../b.ts";\nimport "c";')).toEqual([
      "./a.ts",
      "../b.ts",
      "c",
    ]);
  });

  it("stay inside client/ or name an allowed, bundled package", () => {
    const outside: string[] = [];
    for (const file of files) {
      for (const spec of specifiers(readFileSync(file, "utf8"))) {
        const rel = path.relative(CLIENT, file);
        if (spec.startsWith(".")) {
          const target = path.resolve(path.dirname(file), spec);
          if (!target.startsWith(`${CLIENT}${path.sep}`)) outside.push(`${rel}: ${spec}`);
        } else if (!ALLOWED_PACKAGES.has(spec)) {
          outside.push(`${rel}: ${spec}`);
        }
      }
    }
    expect(outside).toEqual([]);
  });
});
