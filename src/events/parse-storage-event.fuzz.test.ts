import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fixture, fixtureNames, parseOrInvalid } from "./fixtures.test-support.ts";
import { parseStorageEvents } from "./parse-storage-event.ts";

/**
 * Property tests: whatever arrives on a queue or a webhook, the parser returns events or throws
 * invalid_event (parseOrInvalid fails the property on anything else), and keys survive the
 * S3 form encoding.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Path = (string | number)[];

function paths(value: Json, prefix: Path = []): Path[] {
  const here = prefix.length > 0 ? [prefix] : [];
  if (Array.isArray(value)) return [...here, ...value.flatMap((v, i) => paths(v, [...prefix, i]))];
  if (value !== null && typeof value === "object") {
    return [...here, ...Object.entries(value).flatMap(([k, v]) => paths(v, [...prefix, k]))];
  }
  return here;
}

type Mutation =
  | { op: "drop"; at: number }
  | { op: "replace"; at: number; value: Json }
  | { op: "retype"; at: number };

/** Another JSON type with a related value: the changes a careless producer would make. */
function retype(value: Json): Json {
  if (typeof value === "string") return /^\d+$/.test(value) ? Number(value) : [value];
  if (typeof value === "number") return String(value);
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value === null) return {};
  if (Array.isArray(value)) return value.length > 0 ? (value[0] as Json) : null;
  return JSON.stringify(value);
}

function mutate(root: Json, mutation: Mutation): Json {
  const all = paths(root);
  if (all.length === 0) return root;
  const path = all[mutation.at % all.length] as Path;
  const copy = structuredClone(root);
  const parent = path
    .slice(0, -1)
    .reduce<Json>((node, step) => (node as Record<string, Json>)[step] as Json, copy);
  const last = path[path.length - 1] as string | number;
  const container = parent as Record<string | number, Json>;
  if (mutation.op === "drop") {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete container[last];
  } else if (mutation.op === "replace") {
    container[last] = mutation.value;
  } else {
    container[last] = retype(container[last] as Json);
  }
  return copy;
}

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("drop" as const), at: fc.nat() }),
  fc.record({
    op: fc.constant("replace" as const),
    at: fc.nat(),
    value: fc.jsonValue() as fc.Arbitrary<Json>,
  }),
  fc.record({ op: fc.constant("retype" as const), at: fc.nat() }),
);

/** Mutating an SNS envelope only ever hits the envelope; also mutate the message inside it. */
function mutateDeep(root: Json, mutations: Mutation[]): Json {
  const isSns =
    typeof root === "object" && root !== null && !Array.isArray(root) && root.Type === "Notification";
  if (isSns && typeof root.Message === "string" && mutations.length > 1) {
    const [first, ...rest] = mutations as [Mutation, ...Mutation[]];
    const inner = rest.reduce(mutate, JSON.parse(root.Message) as Json);
    return mutate({ ...root, Message: JSON.stringify(inner) }, first);
  }
  return mutations.reduce(mutate, root);
}

/** x-www-form-urlencoded as S3 writes it: percent-encoding, with spaces as "+". */
function formEncode(key: string): string {
  return encodeURIComponent(key).replaceAll("%20", "+");
}

function isWellFormed(s: string): boolean {
  try {
    encodeURIComponent(s);
    return true;
  } catch {
    return false;
  }
}

const s3KeyArb = fc
  .string({ unit: "binary", minLength: 1, maxLength: 300 })
  .filter((k) => isWellFormed(k) && Buffer.byteLength(k) <= 1024);

function awsRecordBody(encodedKey: string) {
  return {
    Records: [
      {
        eventVersion: "2.1",
        eventSource: "aws:s3",
        eventName: "ObjectCreated:Put",
        s3: { bucket: { name: "b" }, object: { key: encodedKey, size: 1, eTag: "e" } },
      },
    ],
  };
}

describe("parseStorageEvents under fuzzing", () => {
  it("never throws anything but invalid_event on arbitrary values", () => {
    fc.assert(
      fc.property(
        fc.anything({ withObjectString: true, withNullPrototype: true, withSparseArray: true }),
        (v) => {
          parseOrInvalid(v);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("never throws anything but invalid_event on arbitrary JSON, parsed or as an SNS Message", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        parseOrInvalid(v);
        parseOrInvalid(JSON.parse(JSON.stringify(v) ?? "null"));
        parseOrInvalid({ Type: "Notification", Message: JSON.stringify(v) });
        parseOrInvalid({ Records: [v] });
      }),
      { numRuns: 1000 },
    );
  });

  it("survives prototype-pollution keys anywhere", () => {
    const evil = fc.constantFrom("__proto__", "constructor", "prototype", "toString", "hasOwnProperty");
    fc.assert(
      fc.property(fc.dictionary(evil, fc.jsonValue()), fc.nat(), (junk, at) => {
        for (const name of fixtureNames()) {
          const body = mutate(fixture(name) as Json, { op: "replace", at, value: junk as Json });
          parseOrInvalid(JSON.parse(JSON.stringify(body).replaceAll('"toString"', '"__proto__"')));
        }
        expect(({} as Record<string, unknown>).Records).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });

  it.each(fixtureNames())("returns events or invalid_event for mutations of %s", (name) => {
    const original = fixture(name) as Json;
    const seen = { invalid: 0, parsed: 0 };
    fc.assert(
      fc.property(fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (mutations) => {
        seen[parseOrInvalid(mutateDeep(original, mutations)) === "invalid" ? "invalid" : "parsed"]++;
      }),
      { numRuns: 300 },
    );
    // Both outcomes must occur, or the mutations are not exercising the parser.
    expect(seen.invalid).toBeGreaterThan(0);
    expect(seen.parsed).toBeGreaterThan(0);
  });

  it("handles huge and deeply nested junk", () => {
    let deep: unknown = "k";
    for (let i = 0; i < 100_000; i++) deep = [deep];
    parseOrInvalid({ Records: deep });
    parseOrInvalid({ Records: [{ eventName: "ObjectCreated:Put", s3: { object: { key: deep } } }] });
    parseOrInvalid(awsRecordBody("%".repeat(5_000_000)));
    parseOrInvalid({ Type: "Notification", Message: `${"[".repeat(200_000)}${"]".repeat(200_000)}` });
    parseOrInvalid({ Type: "Notification", Message: " ".repeat(2 * 1024 * 1024) });
  });

  it("round-trips form-encoded keys in S3-style records", () => {
    fc.assert(
      fc.property(s3KeyArb, fc.boolean(), (key, slashesRaw) => {
        // AWS leaves "/" unescaped in practice, MinIO escapes it as %2F: both must decode.
        const encoded = slashesRaw ? formEncode(key).replaceAll("%2F", "/") : formEncode(key);
        expect(parseStorageEvents(awsRecordBody(encoded)).events[0]?.key).toBe(key);
      }),
      { numRuns: 2000 },
    );
  });

  it("passes EventBridge keys through unchanged", () => {
    fc.assert(
      fc.property(s3KeyArb, (key) => {
        const body = { "detail-type": "Object Created", source: "aws.s3", detail: { object: { key } } };
        expect(parseStorageEvents(body).events[0]?.key).toBe(key);
      }),
      { numRuns: 500 },
    );
  });
});
