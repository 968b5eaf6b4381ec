import type { Site } from "./shardability-site.ts";

/** The lists docs/scaling.md keeps for the shardability test: table placement and the allow-list. */

export type Route = "id" | "all-shards" | "fix";

export interface AllowEntry {
  fn: string;
  file: string;
  tables: string[];
  route: Route;
  why: string;
  line: number;
}

/** The rows of a Markdown table between `<!-- NAME:start -->` and `<!-- NAME:end -->`. */
export function markedTable(markdown: string, name: string): Array<{ cells: string[]; line: number }> {
  const lines = markdown.split("\n");
  const start = lines.findIndex((l) => l.trim() === `<!-- ${name}:start -->`);
  const end = lines.findIndex((l) => l.trim() === `<!-- ${name}:end -->`);
  if (start < 0 || end < start) throw new Error(`no <!-- ${name}:start --> … <!-- ${name}:end --> block`);
  const rows: Array<{ cells: string[]; line: number }> = [];
  for (let i = start + 1; i < end; i++) {
    const l = (lines[i] ?? "").trim();
    if (!l.startsWith("|")) continue;
    const cells = l
      .slice(1, l.endsWith("|") ? -1 : undefined)
      .split("|")
      .map((c) => c.trim().replace(/^`|`$/g, ""));
    if (cells.every((c) => /^:?-+:?$/.test(c))) continue;
    rows.push({ cells, line: i + 1 });
  }
  // The first row is the header.
  return rows.slice(1);
}

export function parseAllowList(markdown: string): AllowEntry[] {
  return markedTable(markdown, "shardability:allow-list").map(({ cells, line }) => {
    const [fn = "", file = "", tables = "", route = "", why = ""] = cells;
    return {
      fn,
      file,
      tables: tables.split(/[,\s]+/).filter(Boolean),
      route: route as Route,
      why,
      line,
    };
  });
}

export type Placement = "distributed" | "reference" | "local";

export function parsePlacements(markdown: string): Map<string, Placement> {
  return new Map(
    markedTable(markdown, "shardability:placement").map(({ cells }) => [
      cells[0] ?? "",
      (cells[1] ?? "") as Placement,
    ]),
  );
}

/** The table names of the `Database` interface in src/db/schema.ts. */
export function schemaTables(schemaSource: string): string[] {
  const body = /export interface Database \{([^}]*)\}/.exec(schemaSource)?.[1] ?? "";
  return [...body.matchAll(/^\s*(\w+)\s*:/gm)].map((m) => m[1] ?? "");
}

export interface Verdict {
  /** Unpinned sites no allow-list entry covers: the failures. */
  unlisted: Site[];
  /** Entries that excuse nothing (the query was fixed or moved): the list must shrink with the code. */
  stale: AllowEntry[];
}

export function judge(sites: readonly Site[], allow: readonly AllowEntry[]): Verdict {
  const used = new Set<AllowEntry>();
  const unlisted = sites.filter((s) => {
    if (s.pinned) return false;
    const entry = allow.find((a) => a.file === s.file && a.fn === s.fn && a.tables.includes(s.table));
    if (entry) used.add(entry);
    return !entry;
  });
  return { unlisted, stale: allow.filter((a) => !used.has(a)) };
}

export const describeSite = (s: Site) => `${s.file}:${s.line} ${s.fn} (${s.kind} on ${s.table})`;
