import { describe, expect, it } from "vitest";
import { describeValidation, fieldPath } from "./validation-messages.ts";

describe("describeValidation", () => {
  it("turns a union of literals (TypeBox Union of Literal) into one list of the allowed values", () => {
    // What Ajv reports for anyOf [const "put", const "post"] with allErrors off: each branch, then anyOf.
    const errors = [
      {
        keyword: "const",
        instancePath: "/method",
        params: { allowedValue: "put" },
        message: "must be equal to constant",
      },
      {
        keyword: "const",
        instancePath: "/method",
        params: { allowedValue: "post" },
        message: "must be equal to constant",
      },
      { keyword: "anyOf", instancePath: "/method", params: {}, message: "must match a schema in anyOf" },
    ];
    expect(describeValidation(errors, "body")).toEqual({
      detail: 'field "method" must be one of "put", "post"',
      field: "method",
    });
  });

  it("names where the field is: body, query, path or header", () => {
    const tooLong = (context: string) =>
      describeValidation([{ keyword: "maxLength", instancePath: "/id", params: { limit: 64 } }], context)
        .detail;
    expect(tooLong("body")).toBe('field "id" must be at most 64 characters long');
    expect(tooLong("querystring")).toBe('query parameter "id" must be at most 64 characters long');
    expect(tooLong("params")).toBe('path parameter "id" must be at most 64 characters long');
    expect(tooLong("headers")).toBe('header "id" must be at most 64 characters long');
  });

  it("writes paths with indexes and unescapes JSON pointer segments", () => {
    expect(fieldPath("/parts/2/etag")).toBe("parts[2].etag");
    expect(fieldPath("/a~1b/c~0d")).toBe("a/b.c~d");
    expect(fieldPath("", "missing")).toBe("missing");
    expect(fieldPath("/parts/0", "etag")).toBe("parts[0].etag");
  });

  it("keeps Ajv's wording out of every message, whatever the keyword", () => {
    const keywords: Array<[string, Record<string, unknown>, string]> = [
      ["minimum", { limit: 1 }, "must be at least 1"],
      ["exclusiveMaximum", { limit: 5 }, "must be less than 5"],
      ["minItems", { limit: 1 }, "must not be empty"],
      ["maxItems", { limit: 3 }, "must have at most 3 items"],
      ["minLength", { limit: 2 }, "must be at least 2 characters long"],
      ["format", { format: "date-time" }, "must be a valid date-time"],
      ["type", { type: "integer,null" }, "must be an integer or null"],
      ["const", { allowedValue: "admin" }, 'must be "admin"'],
      ["multipleOf", { multipleOf: 2 }, "is not valid"],
    ];
    for (const [keyword, params, words] of keywords) {
      const { detail } = describeValidation(
        [{ keyword, instancePath: "/x", params, message: "must be equal to constant" }],
        "body",
      );
      expect(detail, keyword).toBe(`field "x" ${words}`);
    }
    expect(describeValidation([], "body").detail).toBe("the body is not valid");
  });
});
