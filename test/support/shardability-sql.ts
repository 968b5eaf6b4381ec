import type ts from "typescript";
import { OWNER_COLUMN, type Site, templateText, where } from "./shardability-site.ts";

/** SQL text in string and template literals: each reference to a scoped table needs its owner. */

const SQL_WORDS = new Set(
  (
    "where set on left right inner outer full cross join order group limit offset returning using values " +
    "select for union natural having window default as"
  ).split(" "),
);

// The alias is looked at, not consumed: `from images join jobs` must still find `join jobs`.
const TABLE_REF =
  /\b(from|join|update|into)\s+(?:only\s+)?"?([a-z_][a-z0-9_]*)"?(?=(?:\s+(?:as\s+)?([a-z_][a-z0-9_]*))?)/gi;

const OWNER_PREDICATE = new RegExp(
  `\\b(?:(\\w+)\\.)?${OWNER_COLUMN}\\s*=(?!=)|=\\s*(\\w+)\\.${OWNER_COLUMN}\\b`,
  "gi",
);

export function sqlTextSites(
  node: ts.StringLiteral | ts.NoSubstitutionTemplateLiteral | ts.TemplateExpression,
  source: ts.SourceFile,
  scoped: ReadonlySet<string>,
): Site[] {
  const text = templateText(node)
    .replace(/--[^\n]*/g, " ")
    .replace(/\/\*[\s\S]*?\*\//g, " ");
  const refs: Array<{ verb: string; table: string; alias: string; end: number }> = [];
  for (const m of text.matchAll(TABLE_REF)) {
    const [, verb = "", rawTable = "", rawAlias] = m;
    const table = rawTable.toLowerCase();
    if (!scoped.has(table)) continue;
    const alias = rawAlias && !SQL_WORDS.has(rawAlias.toLowerCase()) ? rawAlias : table;
    refs.push({ verb: verb.toLowerCase(), table, alias, end: (m.index ?? 0) + m[0].length });
  }
  if (refs.length === 0) return [];
  // Each reference consumes one `owner_id = …` (or `… = alias.owner_id`): qualified by its alias
  // when there is one, else an unqualified one.
  const predicates: Array<string | null> = [];
  for (const m of text.matchAll(OWNER_PREDICATE)) {
    predicates.push((m[1] ?? m[2] ?? null)?.toLowerCase() ?? null);
  }
  const at = where(node, source);
  return refs.map((r) => {
    let pinned: boolean;
    if (r.verb === "into") {
      let rest = text.slice(r.end);
      if (r.alias !== r.table) rest = rest.replace(/^\s+(?:as\s+)?\w+/i, "");
      const cols = /^\s*\(([^)]*)\)/.exec(rest);
      pinned = cols !== null && new RegExp(`\\b${OWNER_COLUMN}\\b`, "i").test(cols[1] ?? "");
    } else {
      const alias = r.alias.toLowerCase();
      let i = predicates.indexOf(alias);
      if (i < 0) i = predicates.indexOf(null);
      pinned = i >= 0;
      if (i >= 0) predicates.splice(i, 1);
    }
    return { ...at, table: r.table, kind: "sql" as const, pinned };
  });
}
