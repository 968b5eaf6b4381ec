import { describe, expect, it } from "vitest";
import { contentDisposition, sanitizeFilename } from "./filename.ts";

describe("client filenames", () => {
  it("keep the last path segment and drop controls", () => {
    expect(sanitizeFilename("../../etc/passwd")).toBe("passwd");
    expect(sanitizeFilename("C:\\photos\\a.jpg")).toBe("a.jpg");
    expect(sanitizeFilename("a\u0000b\nc\u007f\u0085.jpg")).toBe("abc.jpg");
  });

  it("drop bidi overrides, isolates and zero-width characters", () => {
    // Displayed as "photoexe.jpg" … but really ends in .exe: U+202E reverses what follows.
    expect(sanitizeFilename("photo\u202Egpj.exe")).toBe("photogpj.exe");
    expect(sanitizeFilename("a\u2066b\u2069\u200Bc\u200Fd\uFEFF\u2028.png")).toBe("abcd.png");
    expect(sanitizeFilename("café 写真.jpg")).toBe("café 写真.jpg");
  });

  it("never put an invisible character in Content-Disposition, even for names stored earlier", () => {
    const header = contentDisposition("invoice\u202Efdp.jpg");
    expect(header).not.toMatch(/\u202E|%E2%80%AE/i);
    expect(header).toBe(`inline; filename="invoicefdp.jpg"; filename*=UTF-8''invoicefdp.jpg`);
    expect(contentDisposition("\u202E")).toContain('filename="image"');
  });
});
