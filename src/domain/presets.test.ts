import { describe, expect, it } from "vitest";
import { isAppError } from "./errors.ts";
import { DEFAULT_EAGER_PRESETS, DEFAULT_PRESETS, parsePresets } from "./presets.ts";
import { canonicalSpec, DEFAULT_SPEC_LIMITS } from "./transform-spec.ts";

const L = DEFAULT_SPEC_LIMITS;

function refused(text: string): string {
  try {
    parsePresets(text, L);
  } catch (err) {
    if (isAppError(err) && err.code === "invalid_spec") return err.message;
    throw err;
  }
  throw new Error(`accepted ${text}`);
}

describe("presets", () => {
  it("has the documented defaults", () => {
    expect(Object.keys(DEFAULT_PRESETS)).toEqual(["thumb", "small", "medium", "large"]);
    expect(Object.values(DEFAULT_PRESETS).map(canonicalSpec)).toEqual([
      "w_200,h_200,fit_cover,f_webp",
      "w_480,fit_inside,f_auto",
      "w_1024,fit_inside,f_auto",
      "w_2048,fit_inside,f_auto",
    ]);
    expect(DEFAULT_EAGER_PRESETS).toEqual(["thumb"]);
  });

  it("the default text form parses to the defaults", () => {
    const text = "thumb=w_200,h_200,fit_cover,f_webp; small=w_480;medium=w_1024 ;large=w_2048;";
    expect({ ...parsePresets(text, L) }).toEqual(DEFAULT_PRESETS);
  });

  it("reads an empty text as no presets", () => {
    expect(Object.keys(parsePresets("", L))).toEqual([]);
    expect(Object.keys(parsePresets(" ; ", L))).toEqual([]);
  });

  it("cannot be tricked through the prototype", () => {
    const presets = parsePresets("a=w_1", L);
    expect(Object.hasOwn(presets, "toString")).toBe(false);
    expect(presets.constructor).toBeUndefined();
  });

  it.each([
    ["thumb", "no spec"],
    ["=w_100", "no name"],
    ["Thumb=w_100", "upper case"],
    ["a b=w_100", "space in the name"],
    [`${"a".repeat(33)}=w_100`, "long name"],
    ["original=w_100", "reserved"],
    ["a=w_100;a=w_200", "duplicate"],
    ["a=w_0", "bad spec"],
    ["a=", "empty spec"],
    ["a=w_100=h_1", "junk spec"],
  ])("refuses %j (%s)", (text) => {
    expect(refused(text)).toBeTruthy();
  });

  it("names the preset at fault", () => {
    expect(refused("ok=w_1;broken=q_0")).toContain('preset "broken"');
  });
});
