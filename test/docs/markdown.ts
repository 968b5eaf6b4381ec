import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

export const REPO = path.resolve(import.meta.dirname, "../..");

/** Pages whose code blocks their own owners test (the SDK's and the CORS page's snippets). */
const TESTED_ELSEWHERE = new Set(["docs/sdk.md", "docs/cors.md"]);

/** README.md and every docs/*.md, as paths relative to the repository. */
export function docPages(): string[] {
  const docs = readdirSync(path.join(REPO, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`);
  return ["README.md", ...docs.sort()];
}

/** The pages whose code blocks test/docs must account for. */
export function pagesWithOwnBlocks(): string[] {
  return docPages().filter((p) => !TESTED_ELSEWHERE.has(p));
}

export type Marker =
  | { kind: "doc-test"; name: string }
  | { kind: "same-as"; file: string }
  | { kind: "not-run"; reason: string }
  | { kind: "none" };

export interface CodeBlock {
  page: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  text: string;
  marker: Marker;
}

const FENCE = /^(\s*)(`{3,}|~{3,})(.*)$/;
const MARKER = /^\s*<!--\s*(doc-test|same-as|not-run):\s*(.*?)\s*-->\s*$/;

/**
 * Fenced code blocks with the marker comment on the line right before each (blank lines allowed
 * between). Indented fences (inside list items) lose their indentation.
 */
export function codeBlocks(page: string): CodeBlock[] {
  const lines = readFileSync(path.join(REPO, page), "utf8").split("\n");
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i] ?? "");
    if (!open) continue;
    const [, indent = "", fence = "```", info = ""] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j] ?? "";
      if (l.trim().startsWith(fence) && l.trim().replace(/[`~]/g, "") === "") break;
      body.push(l.startsWith(indent) ? l.slice(indent.length) : l.trimStart());
    }
    blocks.push({
      page,
      line: i + 1,
      lang: info.trim().split(/\s+/)[0] ?? "",
      text: `${body.join("\n")}\n`,
      marker: markerBefore(lines, i),
    });
    i = j;
  }
  return blocks;
}

function markerBefore(lines: string[], fenceIndex: number): Marker {
  let k = fenceIndex - 1;
  while (k >= 0 && (lines[k] ?? "").trim() === "") k--;
  const m = MARKER.exec(lines[k] ?? "");
  if (!m) return { kind: "none" };
  const [, kind, value = ""] = m;
  if (kind === "doc-test") return { kind, name: value };
  if (kind === "same-as") return { kind, file: value };
  return { kind: "not-run", reason: value };
}

/**
 * The blocks of one page marked `doc-test: name`, joined in page order: a walkthrough split by
 * prose runs as one script, its variables carried from block to block.
 */
export function docTest(page: string, name: string): string {
  const blocks = codeBlocks(page).filter((b) => b.marker.kind === "doc-test" && b.marker.name === name);
  if (blocks.length === 0) throw new Error(`${page} has no block marked doc-test: ${name}`);
  return blocks.map((b) => b.text).join("\n");
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, "")
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");
}

/** The anchors a page's headings make (outside code blocks), with GitHub's -1, -2 for repeats. */
export function anchors(page: string): Set<string> {
  const text = readFileSync(path.join(REPO, page), "utf8");
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let inFence = false;
  for (const line of text.split("\n")) {
    if (FENCE.test(line)) inFence = !inFence;
    if (inFence) continue;
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const base = slug(h[1] ?? "");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Markdown links and images `[text](target)` outside code, as written. */
export function links(page: string): Array<{ target: string; line: number }> {
  const lines = readFileSync(path.join(REPO, page), "utf8").split("\n");
  const out: Array<{ target: string; line: number }> = [];
  let inFence = false;
  lines.forEach((line, i) => {
    if (FENCE.test(line)) inFence = !inFence;
    if (inFence) return;
    const withoutCode = line.replace(/`[^`]*`/g, "");
    for (const m of withoutCode.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      out.push({ target: m[1] ?? "", line: i + 1 });
    }
  });
  return out;
}
