import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import { chainSites } from "./shardability-chains.ts";
import type { Site } from "./shardability-site.ts";
import { sqlTextSites } from "./shardability-sql.ts";

/**
 * The shardability checker (docs/scaling.md "Keeping the code shardable"). It reads TypeScript
 * sources and finds every query on an owner-scoped table: Kysely builder chains
 * (selectFrom/updateTable/deleteFrom/insertInto/…Join with a literal table) and SQL text in any
 * string or template literal (sql`…`, CompiledQuery.raw constants). Each must pin one owner:
 * a `.where("owner_id", "=", x)` (or `alias.owner_id`) on the chain itself, a join `on` owner_id,
 * `owner_id = …` per table reference in SQL text, or owner_id among an insert's columns.
 * Everything else is a finding that only the documented allow-list may excuse. Deliberately
 * conservative: an owner filter added in a callback, a helper or a conditional `q = q.where(…)`
 * does not count, since the check cannot see that it always applies.
 */

export * from "./shardability-lists.ts";
export { DYNAMIC, OWNER_COLUMN, type Site, type SiteKind } from "./shardability-site.ts";

/** Every query site on `scoped` tables in one source text. */
export function scanSource(file: string, text: string, scoped: ReadonlySet<string>): Site[] {
  // Parsing is most of the cost: a file with no builder call and no SQL naming a scoped table has no site.
  if (!BUILDER_CALL.test(text) && !mentionsScopedSql(text, scoped)) return [];
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const sites: Site[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node)) sites.push(...chainSites(node, source, scoped));
    if (
      ts.isStringLiteral(node) ||
      ts.isNoSubstitutionTemplateLiteral(node) ||
      ts.isTemplateExpression(node)
    ) {
      sites.push(...sqlTextSites(node, source, scoped));
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return sites;
}

const BUILDER_CALL =
  /\.(?:selectFrom|updateTable|deleteFrom|insertInto|replaceInto|mergeInto|\w+Join(?:Lateral)?|table|id)\s*\(/;

function mentionsScopedSql(text: string, scoped: ReadonlySet<string>): boolean {
  for (const m of text.matchAll(/\b(?:from|join|update|into)\s+(?:only\s+)?"?([a-z_][a-z0-9_]*)/gi)) {
    if (scoped.has((m[1] ?? "").toLowerCase())) return true;
  }
  return false;
}

/** scanSource over every non-test .ts file under each root; `file` is relative to `base`. */
export function scanTree(
  roots: readonly string[],
  base: string,
  scoped: ReadonlySet<string>,
  skip: (relative: string) => boolean = () => false,
): Site[] {
  const files = roots.flatMap((root) => listTs(root));
  return files.flatMap((abs) => {
    const rel = path.relative(base, abs).split(path.sep).join("/");
    if (skip(rel)) return [];
    return scanSource(rel, readFileSync(abs, "utf8"), scoped);
  });
}

function listTs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const abs = path.join(dir, e.name);
    if (e.isDirectory()) return listTs(abs);
    return e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") && !e.name.endsWith(".d.ts") ? [abs] : [];
  });
}
