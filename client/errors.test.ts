import { describe, expect, it } from "vitest";
import { errorFromBody, ImgupError, UploadRejectedError } from "./errors.ts";
import type { ImageView } from "./types.ts";

describe("errorFromBody", () => {
  it("takes imgup's problem+json code and detail", () => {
    const problem = {
      type: "about:blank",
      title: "No such image",
      status: 404,
      detail: "no image x",
      code: "image_not_found",
    };
    const err = errorFromBody(404, "application/problem+json; charset=utf-8", JSON.stringify(problem));
    expect(err).toBeInstanceOf(ImgupError);
    expect([err.status, err.code, err.detail]).toEqual([404, "image_not_found", "no image x"]);
  });

  it("takes S3's XML error code and message", () => {
    const xml = `<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`;
    const err = errorFromBody(403, "application/xml", xml);
    expect([err.status, err.code, err.detail]).toEqual([403, "AccessDenied", "Request has expired"]);
  });

  it("falls back to the status when the body says nothing usable", () => {
    expect(errorFromBody(502, "text/html", "<html>bad gateway</html>").code).toBe("http_502");
    expect(errorFromBody(500, "application/json", "{not json").code).toBe("http_500");
  });
});

describe("UploadRejectedError", () => {
  it("carries the image and its reject reason", () => {
    const image = {
      id: "i",
      status: "rejected",
      rejectReason: "too_many_pixels",
      rejectDetail: "60 MP",
    } as ImageView;
    const err = new UploadRejectedError(image);
    expect(err).toBeInstanceOf(ImgupError);
    expect([err.code, err.reason, err.detail, err.image]).toEqual([
      "upload_rejected",
      "too_many_pixels",
      "60 MP",
      image,
    ]);
  });
});
