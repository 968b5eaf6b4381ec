import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO } from "./markdown.ts";

const READER_METHODS = "str|int|bool|oneOf|match|url|optional|optionalUrl|list|presets|pem|parsed|secret";

/** The environment variables src/config.ts reads: through its EnvReader, or straight from env. */
function variablesReadByConfig(source: string): { names: Set<string>; computed: string[] } {
  const names = new Set<string>();
  for (const m of source.matchAll(new RegExp(`\\.(?:${READER_METHODS})\\(\\s*"([A-Z][A-Z0-9_]*)"`, "g"))) {
    names.add(m[1] ?? "");
  }
  for (const m of source.matchAll(/\benv\.([A-Z][A-Z0-9_]*)/g)) names.add(m[1] ?? "");
  // A name this test cannot see (a variable, a template) would escape the check: refuse it.
  const computed = [
    ...source.matchAll(new RegExp(`\\br\\.(?:${READER_METHODS})\\(\\s*([^"\\s)][^,)]*)`, "g")),
  ]
    .map((m) => m[0])
    .filter((call) => !/^r\.\w+\(\s*name\b/.test(call));
  return { names, computed };
}

describe("docs/configuration.md", () => {
  const source = readFileSync(path.join(REPO, "src/config.ts"), "utf8");
  const doc = readFileSync(path.join(REPO, "docs/configuration.md"), "utf8");
  const { names, computed } = variablesReadByConfig(source);

  it("sees the variables src/config.ts reads (the extraction itself works)", () => {
    expect(names.size).toBeGreaterThanOrEqual(60);
    expect(names).toContain("IMGUP_PUBLIC_URL");
    expect(names).toContain("DATABASE_URL");
    expect(names).toContain("IMGUP_SINGLE_INSTANCE");
    expect(computed, "read every variable by a literal name").toEqual([]);
  });

  it("documents every variable src/config.ts reads", () => {
    const missing = [...names].filter((name) => !doc.includes(`\`${name}\``)).sort();
    expect(missing).toEqual([]);
  });

  it("documents no variable src/config.ts does not read (outside 'Read elsewhere')", () => {
    const own = doc.split("\n## Read elsewhere")[0] ?? "";
    const documented = new Set(
      own
        .split("\n")
        .filter((l) => l.startsWith("| `"))
        .flatMap((l) =>
          [...(l.split(" | ")[0] ?? "").matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1] ?? ""),
        ),
    );
    expect([...documented].filter((name) => !names.has(name)).sort()).toEqual([]);
  });
});
