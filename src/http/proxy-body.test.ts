import { describe, expect, it } from "vitest";
import { describeBody, filenameFromDisposition } from "./proxy-body.ts";

describe("proxy upload body description", () => {
  it("reads filenames from Content-Disposition, the UTF-8 form first", () => {
    expect(filenameFromDisposition('attachment; filename="a \\"b\\".jpg"')).toBe('a "b".jpg');
    expect(filenameFromDisposition("inline; filename=plain.png")).toBe("plain.png");
    expect(filenameFromDisposition(`attachment; filename="fallback.jpg"; filename*=UTF-8''%C3%9C.jpg`)).toBe(
      "Ü.jpg",
    );
    expect(filenameFromDisposition("attachment")).toBeUndefined();
  });

  it("describes what is known before reading, leaving out a form's boundary", () => {
    expect(
      describeBody({
        "content-type": "multipart/form-data; boundary=----abc",
        "content-length": "1234",
        "x-filename": "%C3%9Cn%C3%AF.png",
        "x-content-sha256": " abc ",
      }),
    ).toEqual({ mediaType: "multipart/form-data", contentLength: 1234, filename: "Ünï.png", sha256: "abc" });
    expect(
      describeBody({ "content-type": "Image/JPEG", "content-disposition": 'inline; filename="x.jpg"' }),
    ).toEqual({ mediaType: "image/jpeg", contentLength: null, filename: "x.jpg", sha256: null });
    expect(describeBody({})).toMatchObject({ mediaType: "", contentLength: null });
  });
});
