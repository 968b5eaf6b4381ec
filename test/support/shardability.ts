import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";

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

export type SiteKind = "select" | "update" | "delete" | "insert" | "join" | "sql";

export interface Site {
  file: string;
  line: number;
  /** The outermost named function around the query: `Class.method`, `function`, or a module const. */
  fn: string;
  table: string;
  kind: SiteKind;
  pinned: boolean;
}

const CHAIN_STARTS: Record<string, SiteKind> = {
  selectFrom: "select",
  updateTable: "update",
  deleteFrom: "delete",
  insertInto: "insert",
  replaceInto: "insert",
  mergeInto: "update",
};
const JOINS = new Set([
  "innerJoin",
  "leftJoin",
  "rightJoin",
  "fullJoin",
  "crossJoin",
  "innerJoinLateral",
  "leftJoinLateral",
  "crossJoinLateral",
]);
const SQL_WORDS = new Set(
  (
    "where set on left right inner outer full cross join order group limit offset returning using values " +
    "select for union natural having window default as"
  ).split(" "),
);

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

// ---- Kysely chains ----

interface Call {
  name: string;
  node: ts.CallExpression;
}

function chainSites(call: ts.CallExpression, source: ts.SourceFile, scoped: ReadonlySet<string>): Site[] {
  const callee = call.expression;
  if (!ts.isPropertyAccessExpression(callee)) return [];
  const method = callee.name.text;
  // sql.table("images") / db.dynamic.table("images") splice a table into SQL this check cannot read.
  if (method === "table" || method === "id") {
    const [arg] = call.arguments;
    if (arg && ts.isStringLiteralLike(arg)) {
      const { table } = splitAlias(arg.text);
      if (scoped.has(table)) return [{ ...where(call, source), table, kind: "sql", pinned: false }];
    }
    return [];
  }
  const kind = CHAIN_STARTS[method] ?? (JOINS.has(method) ? "join" : undefined);
  if (!kind) return [];
  const arg = call.arguments[0];
  if (!arg) return [];
  const names = ts.isArrayLiteralExpression(arg) ? [...arg.elements] : [arg];
  const out: Site[] = [];
  for (const n of names) {
    // A table named by a variable cannot be checked: it is a finding of its own.
    if (ts.isIdentifier(n) || ts.isPropertyAccessExpression(n) || ts.isTemplateExpression(n)) {
      out.push({ ...where(call, source), table: DYNAMIC, kind, pinned: false });
      continue;
    }
    if (!ts.isStringLiteralLike(n)) continue;
    const { table, alias } = splitAlias(n.text);
    if (!scoped.has(table)) continue;
    const chain = chainOf(call);
    const pinned =
      kind === "insert"
        ? insertNamesOwner(chain, source)
        : filtersOwner(chain, alias, table, kind === "join" ? call : null);
    out.push({ ...where(call, source), table, kind, pinned });
  }
  return out;
}

/** The table of a builder call whose table is not a literal. */
export const DYNAMIC = "<dynamic>";

function splitAlias(text: string): { table: string; alias: string } {
  const m = /^\s*([\w.]+)(?:\s+as\s+(\w+))?\s*$/i.exec(text);
  const table = (m?.[1] ?? text).split(".").pop() ?? text;
  return { table, alias: m?.[2] ?? table };
}

/** The calls of the builder chain `call` belongs to, outermost first, down to its root. */
function chainOf(call: ts.CallExpression): Call[] {
  let top: ts.Expression = call;
  for (;;) {
    const p = top.parent;
    if (p && ts.isPropertyAccessExpression(p) && p.expression === top) {
      const g = p.parent;
      if (g && ts.isCallExpression(g) && g.expression === p) {
        top = g;
        continue;
      }
    }
    // `await x`, `(x)`, `x!` do not end a chain.
    if (p && (ts.isParenthesizedExpression(p) || ts.isNonNullExpression(p)) && p.expression === top) {
      top = p;
      continue;
    }
    break;
  }
  const calls: Call[] = [];
  let n: ts.Expression = top;
  for (;;) {
    if (ts.isParenthesizedExpression(n) || ts.isNonNullExpression(n)) n = n.expression;
    else if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression)) {
      calls.push({ name: n.expression.name.text, node: n });
      n = n.expression.expression;
    } else if (ts.isPropertyAccessExpression(n)) n = n.expression;
    else break;
  }
  return calls;
}

const OWNER_COLUMN = "owner_id";

function ownerRefs(alias: string, table: string): Set<string> {
  return new Set([OWNER_COLUMN, `${alias}.${OWNER_COLUMN}`, `${table}.${OWNER_COLUMN}`]);
}

/** The chain has `.where(owner, "=", x)` (or sql`owner_id = …`), or this join is on owner_id. */
function filtersOwner(chain: Call[], alias: string, table: string, join: ts.CallExpression | null): boolean {
  const refs = ownerRefs(alias, table);
  // A join is pinned by its own `on` condition; its plain `owner_id` would be the first table's.
  if (join) {
    refs.delete(OWNER_COLUMN);
    if (join.arguments.slice(1).some((a) => onOwner(a, refs))) return true;
  }
  return chain.some(({ name, node }) => {
    if (name !== "where") return false;
    const [col, op, value] = node.arguments;
    if (col && op && value && ts.isStringLiteralLike(col) && ts.isStringLiteralLike(op)) {
      return refs.has(col.text) && op.text === "=";
    }
    // where(sql`owner_id = ${x}`): raw text that starts with the equality.
    if (col && !op && ts.isTaggedTemplateExpression(col)) {
      const raw = templateText(col.template);
      return [...refs].some((r) => new RegExp(`^\\s*${escapeRegExp(r)}\\s*=`).test(raw));
    }
    return false;
  });
}

/** A join condition callback naming one of `refs` in an equality (`onRef("e.owner_id", "=", …)`). */
function onOwner(arg: ts.Node, refs: Set<string>): boolean {
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression)) {
      const m = n.expression.name.text;
      const [a, op, b] = n.arguments;
      if ((m === "on" || m === "onRef") && op && ts.isStringLiteralLike(op) && op.text === "=") {
        const named = [a, b].some((x) => x && ts.isStringLiteralLike(x) && refs.has(x.text));
        if (named) found = true;
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(arg);
  return found;
}

/** `.values({owner_id, …})` (directly, or from a helper of the same file), or `.columns([… "owner_id" …])`. */
function insertNamesOwner(chain: Call[], source: ts.SourceFile): boolean {
  return chain.some(({ name, node }) => {
    const arg = node.arguments[0];
    if (!arg) return false;
    if (name === "columns" && ts.isArrayLiteralExpression(arg)) {
      return arg.elements.some((e) => ts.isStringLiteralLike(e) && e.text === OWNER_COLUMN);
    }
    if (name === "values") return valuesNameOwner(arg, source, 0);
    return false;
  });
}

function valuesNameOwner(e: ts.Expression, source: ts.SourceFile, depth: number): boolean {
  if (depth > 3) return false;
  if (ts.isParenthesizedExpression(e)) return valuesNameOwner(e.expression, source, depth);
  if (ts.isArrayLiteralExpression(e)) {
    return e.elements.length > 0 && e.elements.every((x) => valuesNameOwner(x, source, depth + 1));
  }
  if (ts.isObjectLiteralExpression(e)) {
    return e.properties.some((p) => {
      if (ts.isSpreadAssignment(p)) return valuesNameOwner(p.expression, source, depth + 1);
      return p.name !== undefined && propertyName(p.name) === OWNER_COLUMN;
    });
  }
  // toInsert(image), this.#row(job): a function of the same file whose returned object names owner_id.
  if (ts.isCallExpression(e)) {
    const fn = calleeName(e.expression);
    const decl = fn ? findFunction(source, fn) : undefined;
    return decl ? returnsOwner(decl, source, depth + 1) : false;
  }
  return false;
}

function propertyName(n: ts.PropertyName): string | undefined {
  if (ts.isIdentifier(n) || ts.isStringLiteralLike(n) || ts.isPrivateIdentifier(n)) return n.text;
  return undefined;
}

function calleeName(e: ts.Expression): string | undefined {
  if (ts.isIdentifier(e)) return e.text;
  if (ts.isPropertyAccessExpression(e)) return e.name.text;
  return undefined;
}

type FunctionLike = ts.FunctionDeclaration | ts.MethodDeclaration | ts.ArrowFunction | ts.FunctionExpression;

function findFunction(source: ts.SourceFile, name: string): FunctionLike | undefined {
  let found: FunctionLike | undefined;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if ((ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n)) && n.name && nameOf(n.name) === name) {
      found = n;
      return;
    }
    if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.name.text === name && n.initializer) {
      if (ts.isArrowFunction(n.initializer) || ts.isFunctionExpression(n.initializer)) found = n.initializer;
    }
    ts.forEachChild(n, visit);
  };
  visit(source);
  return found;
}

function returnsOwner(fn: FunctionLike, source: ts.SourceFile, depth: number): boolean {
  if (fn.body && !ts.isBlock(fn.body)) return valuesNameOwner(fn.body, source, depth);
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found || (n !== fn.body && ts.isFunctionLike(n))) return;
    if (ts.isReturnStatement(n) && n.expression && valuesNameOwner(n.expression, source, depth)) found = true;
    ts.forEachChild(n, visit);
  };
  if (fn.body) visit(fn.body);
  return found;
}

// ---- SQL text ----

/** `${…}` of a template as `$?`, so table references around substitutions still read as SQL. */
function templateText(t: ts.TemplateLiteral | ts.StringLiteral): string {
  if (ts.isStringLiteral(t) || ts.isNoSubstitutionTemplateLiteral(t)) return t.text;
  return t.head.text + t.templateSpans.map((s) => `$? ${s.literal.text}`).join("");
}

// The alias is looked at, not consumed: `from images join jobs` must still find `join jobs`.
const TABLE_REF =
  /\b(from|join|update|into)\s+(?:only\s+)?"?([a-z_][a-z0-9_]*)"?(?=(?:\s+(?:as\s+)?([a-z_][a-z0-9_]*))?)/gi;

function sqlTextSites(
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
  for (const m of text.matchAll(/\b(?:(\w+)\.)?owner_id\s*=(?!=)|=\s*(\w+)\.owner_id\b/gi)) {
    predicates.push((m[1] ?? m[2] ?? null)?.toLowerCase() ?? null);
  }
  const at = where(node, source);
  return refs.map((r) => {
    let pinned: boolean;
    if (r.verb === "into") {
      let rest = text.slice(r.end);
      if (r.alias !== r.table) rest = rest.replace(/^\s+(?:as\s+)?\w+/i, "");
      const cols = /^\s*\(([^)]*)\)/.exec(rest);
      pinned = cols !== null && /\bowner_id\b/i.test(cols[1] ?? "");
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

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// ---- where a site is ----

function where(node: ts.Node, source: ts.SourceFile): { file: string; line: number; fn: string } {
  const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  return { file: source.fileName, line, fn: enclosingName(node) };
}

function nameOf(n: ts.PropertyName | ts.BindingName): string {
  if (ts.isIdentifier(n) || ts.isPrivateIdentifier(n) || ts.isStringLiteralLike(n)) return n.text;
  return "?";
}

/** The outermost named function, method or module-level const around `node`. */
function enclosingName(node: ts.Node): string {
  let name = "<module>";
  for (let n: ts.Node | undefined = node.parent; n; n = n.parent) {
    if (
      (ts.isMethodDeclaration(n) ||
        ts.isPropertyDeclaration(n) ||
        ts.isGetAccessorDeclaration(n) ||
        ts.isSetAccessorDeclaration(n)) &&
      n.name
    ) {
      const cls = n.parent;
      const owner =
        (ts.isClassDeclaration(cls) || ts.isClassExpression(cls)) && cls.name ? `${cls.name.text}.` : "";
      name = `${owner}${nameOf(n.name)}`;
    } else if (ts.isConstructorDeclaration(n)) {
      const cls = n.parent;
      name = `${ts.isClassDeclaration(cls) && cls.name ? cls.name.text : "?"}.constructor`;
    } else if (ts.isFunctionDeclaration(n) && n.name) {
      name = n.name.text;
    } else if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name)) {
      name = n.name.text;
    }
  }
  return name;
}

// ---- the documented lists (docs/scaling.md) ----

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
