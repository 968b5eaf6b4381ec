import { describe, expect, it } from "vitest";
import { negotiateFormat } from "./negotiate.ts";

const CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
const SAFARI_15 = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5";
const FIREFOX_OLD = "image/webp,*/*";
const CURL = "*/*";

describe("negotiateFormat", () => {
  it.each([
    // accept, original, expected
    [CHROME, "jpeg", "avif"],
    [CHROME, "heic", "avif"],
    [SAFARI_15, "png", "webp"],
    [FIREFOX_OLD, "gif", "webp"],
    [CURL, "jpeg", "jpeg"],
    [CURL, "png", "png"],
    [CURL, "gif", "gif"],
    [CURL, "webp", "jpeg"],
    [CURL, "avif", "jpeg"],
    [CURL, "heic", "jpeg"],
    [undefined, "png", "png"],
    ["", "heic", "jpeg"],
    ["image/*", "webp", "jpeg"],
    ["image/avif;q=0, image/webp", "jpeg", "webp"],
    ["image/avif; q=0.0, image/webp;q=0", "png", "png"],
    ["image/AVIF;Q=0.5", "jpeg", "avif"],
    ["image/webp;q=0.1", "jpeg", "webp"],
    ["image/avif, image/avif;q=0", "jpeg", "jpeg"],
    ["image/avif;q=junk", "jpeg", "jpeg"],
    ["text/html, application/xhtml+xml", "jpg", "jpeg"],
    [" , ;;, image/webp ;level=1", "jpeg", "webp"],
  ])("auto with Accept %j and a %s original -> %s", (accept, original, expected) => {
    expect(negotiateFormat("auto", accept, original)).toEqual({ format: expected, negotiated: true });
  });

  it("serves an image with alpha as PNG when nothing better is accepted", () => {
    expect(negotiateFormat("auto", CURL, "webp", { hasAlpha: true })).toEqual({
      format: "png",
      negotiated: true,
    });
    expect(negotiateFormat("auto", CURL, "jpeg", { hasAlpha: true })).toEqual({
      format: "jpeg",
      negotiated: true,
    });
  });

  it("leaves an explicit format alone, whatever Accept says", () => {
    for (const f of ["jpeg", "png", "webp", "avif", "gif"] as const) {
      expect(negotiateFormat(f, CHROME, "heic")).toEqual({ format: f, negotiated: false });
      expect(negotiateFormat(f, undefined, "png")).toEqual({ format: f, negotiated: false });
    }
  });
});
