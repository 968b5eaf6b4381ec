import ts from "typescript";
import {
  DYNAMIC,
  escapeRegExp,
  nameOf,
  OWNER_COLUMN,
  type Site,
  type SiteKind,
  splitAlias,
  templateText,
  where,
} from "./shardability-site.ts";

/** Kysely builder chains on scoped tables, and whether each pins one owner (see shardability.ts). */

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

interface Call {
  name: string;
  node: ts.CallExpression;
}

export function chainSites(
  call: ts.CallExpression,
  source: ts.SourceFile,
  scoped: ReadonlySet<string>,
): Site[] {
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
