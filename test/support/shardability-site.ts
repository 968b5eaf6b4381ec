import ts from "typescript";

/** What the shardability checker reports about one query (see shardability.ts). */

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

export const OWNER_COLUMN = "owner_id";

/** The table of a builder call whose table is not a literal. */
export const DYNAMIC = "<dynamic>";

export function splitAlias(text: string): { table: string; alias: string } {
  const m = /^\s*([\w.]+)(?:\s+as\s+(\w+))?\s*$/i.exec(text);
  const table = (m?.[1] ?? text).split(".").pop() ?? text;
  return { table, alias: m?.[2] ?? table };
}

/** `${…}` of a template as `$?`, so table references around substitutions still read as SQL. */
export function templateText(t: ts.TemplateLiteral | ts.StringLiteral): string {
  if (ts.isStringLiteral(t) || ts.isNoSubstitutionTemplateLiteral(t)) return t.text;
  return t.head.text + t.templateSpans.map((s) => `$? ${s.literal.text}`).join("");
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export function where(node: ts.Node, source: ts.SourceFile): { file: string; line: number; fn: string } {
  const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  return { file: source.fileName, line, fn: enclosingName(node) };
}

export function nameOf(n: ts.PropertyName | ts.BindingName): string {
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
