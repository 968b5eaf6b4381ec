import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { type CodeBlock, codeBlocks, pagesWithOwnBlocks, REPO } from "./markdown.ts";

/** Every docTest call with literal page and name in test/docs: the blocks some test runs. */
function claimedByTests(): Set<string> {
  const dir = path.join(REPO, "test/docs");
  const claimed = new Set<string>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".test.ts"))) {
    const source = readFileSync(path.join(dir, file), "utf8");
    for (const m of source.matchAll(/docTest\(\s*"([^"]+)",\s*"([^"]+)"\s*\)/g))
      claimed.add(`${m[1]}#${m[2]}`);
  }
  return claimed;
}

const where = (b: CodeBlock) => `${b.page}:${b.line}`;

describe("every code block in the README and docs/ is run by a test, or says why not", () => {
  const claimed = claimedByTests();
  const blocks = pagesWithOwnBlocks().flatMap(codeBlocks);

  it("finds the blocks (the extraction itself works)", () => {
    expect(blocks.filter((b) => b.page === "README.md").length).toBeGreaterThanOrEqual(3);
    expect(claimed.size).toBeGreaterThanOrEqual(5);
  });

  it("has a marker before every block", () => {
    const unmarked = blocks.filter((b) => b.marker.kind === "none").map(where);
    expect(
      unmarked,
      "add <!-- doc-test: NAME -->, <!-- same-as: PATH --> or <!-- not-run: REASON -->",
    ).toEqual([]);
  });

  it("runs every doc-test block in some test of test/docs", () => {
    const orphans = blocks
      .filter((b) => b.marker.kind === "doc-test" && !claimed.has(`${b.page}#${b.marker.name}`))
      .map((b) => `${where(b)} (${b.marker.kind === "doc-test" ? b.marker.name : ""})`);
    expect(orphans, "no test calls docTest(page, name) for these").toEqual([]);
  });

  it("gives a reason for every block it does not run", () => {
    const bare = blocks.filter((b) => b.marker.kind === "not-run" && b.marker.reason.length < 10).map(where);
    expect(bare).toEqual([]);
  });

  it("keeps every same-as block identical to its file", () => {
    for (const b of blocks) {
      if (b.marker.kind !== "same-as") continue;
      const file = path.join(REPO, b.marker.file);
      expect(existsSync(file), `${where(b)}: ${b.marker.file} does not exist`).toBe(true);
      expect(b.text.trimEnd(), `${where(b)} differs from ${b.marker.file}`).toBe(
        readFileSync(file, "utf8").trimEnd(),
      );
    }
  });

  it("claims no block that is gone", () => {
    const names = new Set(
      blocks.flatMap((b) => (b.marker.kind === "doc-test" ? [`${b.page}#${b.marker.name}`] : [])),
    );
    expect([...claimed].filter((c) => !names.has(c))).toEqual([]);
  });
});
