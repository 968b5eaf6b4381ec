import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isAppError } from "./errors.ts";
import {
  canonicalSpec,
  DEFAULT_SPEC_LIMITS,
  FITS,
  OUTPUT_FORMATS,
  parseSpec,
  type TransformSpec,
} from "./transform-spec.ts";

const L = DEFAULT_SPEC_LIMITS;

function invalidSpec(text: string): string {
  try {
    parseSpec(text, L);
  } catch (err) {
    if (isAppError(err) && err.code === "invalid_spec" && err.status === 400) return err.message;
    throw err;
  }
  throw new Error(`"${text}" was accepted`);
}

describe("parseSpec", () => {
  it("reads every option in any order", () => {
    expect(parseSpec("w_400,h_300,fit_cover,f_auto,q_80,dpr_2", L)).toEqual({
      width: 400,
      height: 300,
      fit: "cover",
      format: "auto",
      quality: 80,
      dpr: 2,
    });
    expect(parseSpec("dpr_1.5,q_1,f_avif,fit_fill,h_1,w_8", L)).toEqual({
      width: 8,
      height: 1,
      fit: "fill",
      format: "avif",
      quality: 1,
      dpr: 1.5,
    });
  });

  it("fills the defaults: fit inside, format auto, dpr 1, no quality", () => {
    expect(parseSpec("w_480", L)).toEqual({ width: 480, fit: "inside", format: "auto", dpr: 1 });
    expect(parseSpec("f_webp", L)).toEqual({ fit: "inside", format: "webp", dpr: 1 });
  });

  it("accepts the bounds", () => {
    expect(parseSpec("w_8192,h_8192,q_100", L)).toMatchObject({ width: 8192, height: 8192, quality: 100 });
    expect(parseSpec("w_2048,h_2048,dpr_4", L)).toMatchObject({ dpr: 4 });
  });

  it.each([
    ["", "empty"],
    ["w_999999999", "huge width"],
    ["w_8193", "over the width limit"],
    ["h_8193", "over the height limit"],
    ["w_4097,dpr_2", "width x dpr over the limit"],
    ["h_2731,dpr_3", "height x dpr over the limit"],
    ["w_0", "zero"],
    ["w_-1", "negative"],
    ["w_+1", "sign"],
    ["w_010", "leading zero"],
    ["w_1e3", "exponent"],
    ["w_1.5", "fraction"],
    ["w_0x10", "hex"],
    ["w_ 1", "space"],
    ["w_", "no value"],
    ["q_0", "quality zero"],
    ["q_101", "quality over 100"],
    ["dpr_100", "dpr 100"],
    ["dpr_0", "dpr 0"],
    ["dpr_0.5", "dpr under 1"],
    ["dpr_4.5", "dpr over the limit"],
    ["dpr_2.0", "dpr with a zero decimal"],
    ["dpr_1.25", "dpr with two decimals"],
    ["fit_crop", "unknown fit"],
    ["f_svg", "unknown format"],
    ["f_JPEG", "upper case"],
    ["W_100", "upper case name"],
    ["w_100,w_200", "twice"],
    ["w_100,", "trailing comma"],
    [",w_100", "leading comma"],
    ["w_100,,h_100", "empty option"],
    ["x_1", "unknown option"],
    ["width_100", "long name"],
    ["w100", "no separator"],
    ["_100", "no name"],
    ["w_100;h_100", "other separator"],
    ["w_100 ", "trailing space"],
    ["w_100\n", "newline"],
    ["w_1\u0000", "NUL"],
    ["w_１００", "full-width digits"],
    ["../../etc/passwd", "path"],
    ["w_100".repeat(2_000), "10 KB"],
    ["__proto__", "prototype key"],
    ["constructor_1", "prototype name"],
  ])("refuses %j (%s)", (text) => {
    expect(invalidSpec(text)).toBeTruthy();
  });

  it("keeps client input out of long error details", () => {
    const detail = invalidSpec(`x_${"a".repeat(60)}`);
    expect(detail.length).toBeLessThan(120);
  });
});

const specArb: fc.Arbitrary<TransformSpec> = fc
  .record(
    {
      width: fc.option(fc.integer({ min: 1, max: 2048 }), { nil: undefined }),
      height: fc.option(fc.integer({ min: 1, max: 2048 }), { nil: undefined }),
      fit: fc.constantFrom(...FITS),
      format: fc.constantFrom("auto" as const, ...OUTPUT_FORMATS),
      quality: fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }),
      dpr: fc.constantFrom(1, 1.5, 2, 2.5, 3, 4),
    },
    { requiredKeys: ["fit", "format", "dpr"] },
  )
  .map((s) => {
    const spec: TransformSpec = { fit: s.fit, format: s.format, dpr: s.dpr };
    if (s.width !== undefined) spec.width = s.width;
    if (s.height !== undefined) spec.height = s.height;
    if (s.quality !== undefined) spec.quality = s.quality;
    return spec;
  });

describe("canonicalSpec", () => {
  it("is stable and omits only what is unset or dpr 1", () => {
    expect(canonicalSpec(parseSpec("q_80,dpr_2,f_auto,fit_cover,h_300,w_400", L))).toBe(
      "w_400,h_300,fit_cover,f_auto,q_80,dpr_2",
    );
    expect(canonicalSpec(parseSpec("w_480", L))).toBe("w_480,fit_inside,f_auto");
    expect(canonicalSpec(parseSpec("f_webp", L))).toBe("fit_inside,f_webp");
  });

  it("round-trips: parse(canonical(x)) equals x, in a key-safe alphabet", () => {
    fc.assert(
      fc.property(specArb, (spec) => {
        const text = canonicalSpec(spec);
        expect(text).toMatch(/^[a-z0-9_,.]+$/);
        expect(parseSpec(text, L)).toEqual(spec);
        expect(canonicalSpec(parseSpec(text, L))).toBe(text);
      }),
      { numRuns: 500 },
    );
  });

  it("gives every accepted spelling the canonical form of its parse", () => {
    fc.assert(
      fc.property(specArb, fc.integer({ min: 0, max: 1000 }), (spec, seed) => {
        const parts = canonicalSpec(spec).split(",");
        const shuffled = parts
          .map((p, i) => ({ p, k: (i * 7919 + seed) % 101 }))
          .sort((a, b) => a.k - b.k)
          .map((x) => x.p);
        expect(canonicalSpec(parseSpec(shuffled.join(","), L))).toBe(canonicalSpec(spec));
      }),
    );
  });
});

describe("parseSpec on arbitrary input", () => {
  const onlyInvalidSpec = (text: string) => {
    try {
      const spec = parseSpec(text, L);
      // Whatever it accepted is within the limits.
      if (spec.width !== undefined) expect(spec.width * spec.dpr).toBeLessThanOrEqual(L.maxWidth);
      if (spec.height !== undefined) expect(spec.height * spec.dpr).toBeLessThanOrEqual(L.maxHeight);
    } catch (err) {
      if (!isAppError(err) || err.code !== "invalid_spec") throw err;
    }
  };

  it("throws nothing but invalid_spec on any string", () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), onlyInvalidSpec), { numRuns: 2000 });
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 200 }), onlyInvalidSpec), { numRuns: 1000 });
  });

  it("throws nothing but invalid_spec on near-valid strings", () => {
    const token = fc.oneof(
      fc.constantFrom("w", "h", "q", "fit", "f", "dpr", "x", "", "W"),
      fc.string({ maxLength: 4 }),
    );
    const value = fc.oneof(
      fc.integer({ min: -10, max: 100_000 }).map(String),
      fc.double().map(String),
      fc.constantFrom("cover", "auto", "webp", "1.5", "", "0", "01", "4.0"),
      fc.string({ maxLength: 6 }),
    );
    const part = fc.tuple(token, value).map(([n, v]) => `${n}_${v}`);
    fc.assert(
      fc.property(fc.array(part, { maxLength: 8 }), (parts) => onlyInvalidSpec(parts.join(","))),
      { numRuns: 2000 },
    );
  });
});
