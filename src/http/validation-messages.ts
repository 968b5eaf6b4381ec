/**
 * Ajv's errors in words a client developer reads without knowing Ajv: which field, and what it
 * must be ("field "visibility" must be one of "public", "private""), never "must be equal to
 * constant" or a JSON pointer.
 */

/** The parts of an Ajv error (Fastify's `err.validation` items) this reads. */
export interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string | undefined;
}

export interface ValidationMessage {
  detail: string;
  /** The field at fault as a dotted path (`parts[2].etag`), if one. */
  field: string | undefined;
}

const WHERE: Record<string, { one: (name: string) => string; whole: string }> = {
  body: { one: (n) => `field "${n}"`, whole: "the body" },
  querystring: { one: (n) => `query parameter "${n}"`, whole: "the query string" },
  params: { one: (n) => `path parameter "${n}"`, whole: "the path" },
  headers: { one: (n) => `header "${n}"`, whole: "the headers" },
};

const TYPES: Record<string, string> = {
  integer: "an integer",
  number: "a number",
  string: "a string",
  boolean: "true or false",
  array: "a list",
  object: "an object",
  null: "null",
};

/** `/parts/2/etag` → `parts[2].etag`. */
export function fieldPath(instancePath: string, child?: string): string {
  const segments = instancePath.split("/").slice(1);
  if (child !== undefined) segments.push(child);
  return segments
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
    .reduce((path, s) => (/^\d+$/.test(s) ? `${path}[${s}]` : path ? `${path}.${s}` : s), "");
}

const quoteAll = (values: unknown[]) => values.map((v) => JSON.stringify(v)).join(", ");
const plural = (n: unknown, one: string, many: string) => `${String(n)} ${n === 1 ? one : many}`;

export function describeValidation(errors: readonly SchemaError[], context = "body"): ValidationMessage {
  const where = WHERE[context] ?? { one: (n: string) => `"${n}"`, whole: `the ${context}` };
  const first = errors.find((e) => e.keyword === "anyOf" || e.keyword === "oneOf") ?? errors[0];
  if (!first) return { detail: `${where.whole} is not valid`, field: undefined };
  const p = first.params;
  const named = (child?: string) => {
    const path = fieldPath(first.instancePath, child);
    // A repeated query parameter (`?status=a&status=b`) is one name to its sender, not a list.
    const field = context === "querystring" ? path.replace(/\[\d+\]/g, "") : path;
    return { field: field || undefined, label: field ? where.one(field) : where.whole };
  };

  if (first.keyword === "required") {
    const { field, label } = named(String(p.missingProperty));
    return { detail: `${label} is required`, field };
  }
  if (first.keyword === "additionalProperties") {
    const { field, label } = named(String(p.additionalProperty));
    return { detail: `${label} is not accepted here (unknown field)`, field };
  }
  const { field, label } = named();
  const must = (what: string) => ({ detail: `${label} ${what}`, field });
  switch (first.keyword) {
    case "type": {
      const types = String(p.type).split(",");
      const wanted = types.map((t) => TYPES[t] ?? t).join(" or ");
      return field || context !== "body" ? must(`must be ${wanted}`) : must(`must be a JSON ${types[0]}`);
    }
    case "enum":
      return must(`must be one of ${quoteAll(p.allowedValues as unknown[])}`);
    case "const":
      return must(`must be ${JSON.stringify(p.allowedValue)}`);
    case "anyOf":
    case "oneOf": {
      // A union of literals (TypeBox's Union of Literal): the allowed values, as one list.
      const allowed = errors
        .filter((e) => e.instancePath === first.instancePath && e.keyword === "const")
        .map((e) => e.params.allowedValue);
      return allowed.length > 0
        ? must(`must be one of ${quoteAll(allowed)}`)
        : must("does not match any of the accepted forms");
    }
    case "minLength":
      return must(
        p.limit === 1
          ? "must not be empty"
          : `must be at least ${plural(p.limit, "character", "characters")} long`,
      );
    case "maxLength":
      return must(`must be at most ${plural(p.limit, "character", "characters")} long`);
    case "minimum":
      return must(`must be at least ${String(p.limit)}`);
    case "maximum":
      return must(`must be at most ${String(p.limit)}`);
    case "exclusiveMinimum":
      return must(`must be greater than ${String(p.limit)}`);
    case "exclusiveMaximum":
      return must(`must be less than ${String(p.limit)}`);
    case "minItems":
      return must(
        p.limit === 1 ? "must not be empty" : `must have at least ${plural(p.limit, "item", "items")}`,
      );
    case "maxItems":
      return must(`must have at most ${plural(p.limit, "item", "items")}`);
    case "uniqueItems":
      return must("must not repeat an item");
    case "pattern":
      return must(`does not have the expected form (pattern ${String(p.pattern)})`);
    case "format":
      return must(`must be a valid ${String(p.format)}`);
    case "minProperties":
      return must("must not be empty");
    default:
      return must("is not valid");
  }
}
