import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { anchors, docPages, links, REPO } from "./markdown.ts";

describe("links in the README and docs/", () => {
  const pages = docPages();

  it("finds links (the extraction itself works)", () => {
    expect(links("README.md").length).toBeGreaterThanOrEqual(5);
  });

  it("never point outside the repository", () => {
    const outside = pages.flatMap((page) =>
      links(page)
        .filter(({ target }) => !/^[a-z]+:/i.test(target) && !target.startsWith("#"))
        .filter(({ target }) => {
          const resolved = path.resolve(REPO, path.dirname(page), target.split("#")[0] ?? "");
          return !resolved.startsWith(`${REPO}${path.sep}`) && resolved !== REPO;
        })
        .map(({ target, line }) => `${page}:${line} ${target}`),
    );
    expect(outside).toEqual([]);
  });

  it("resolve to existing files and, for Markdown pages, existing headings", () => {
    const broken: string[] = [];
    for (const page of pages) {
      for (const { target, line } of links(page)) {
        if (/^[a-z]+:/i.test(target)) continue; // http(s), mailto: checked by nobody here
        const [file = "", anchor] = target.split("#");
        const resolved = file === "" ? path.join(REPO, page) : path.resolve(REPO, path.dirname(page), file);
        if (!existsSync(resolved)) {
          broken.push(`${page}:${line} ${target} (no such file)`);
          continue;
        }
        if (anchor && resolved.endsWith(".md") && statSync(resolved).isFile()) {
          if (!anchors(path.relative(REPO, resolved)).has(anchor)) {
            broken.push(`${page}:${line} ${target} (no such heading)`);
          }
        }
      }
    }
    expect(broken).toEqual([]);
  });
});
