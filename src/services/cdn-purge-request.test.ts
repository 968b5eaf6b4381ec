import { describe, expect, it } from "vitest";
import { type CdnPurgeSettings, ConfigError, loadConfig } from "../config.ts";
import { renderPurgeRequests, surrogateKey, unknownPlaceholders } from "./cdn-purge-request.ts";

const A = "0b1c2d3e-4f50-4617-8899-aabbccddeeff";
const B = "1b1c2d3e-4f50-4617-8899-aabbccddeeff";
const PUBLIC = "https://img.example.com";

function settings(env: Record<string, string>): CdnPurgeSettings {
  return loadConfig(env).cdnPurge;
}

describe("renderPurgeRequests", () => {
  it("renders nothing when off, or for no images", () => {
    expect(renderPurgeRequests(settings({}), PUBLIC, { imageIds: [A], reference: "r" })).toEqual([]);
    const varnish = settings({ IMGUP_CDN_PURGE: "varnish", IMGUP_CDN_PURGE_VARNISH_URLS: "http://v1:6081" });
    expect(renderPurgeRequests(varnish, PUBLIC, { imageIds: [], reference: "r" })).toEqual([]);
  });

  it("varnish: one BAN per Varnish, every image's surrogate key in one header", () => {
    const s = settings({
      IMGUP_CDN_PURGE: "varnish",
      IMGUP_CDN_PURGE_VARNISH_URLS: "http://v1:6081/, http://v2:6081/",
    });
    expect(renderPurgeRequests(s, PUBLIC, { imageIds: [A, B], reference: "r" })).toEqual([
      {
        method: "BAN",
        url: "http://v1:6081/",
        headers: { "X-Purge-Keys": `img-${A} img-${B}` },
        body: undefined,
      },
      {
        method: "BAN",
        url: "http://v2:6081/",
        headers: { "X-Purge-Keys": `img-${A} img-${B}` },
        body: undefined,
      },
    ]);
    expect(surrogateKey(A)).toBe(`img-${A}`);
  });

  it("http: Cloudflare purge by tag (Cache-Tag), one call per image", () => {
    const s = settings({
      IMGUP_CDN_PURGE: "http",
      IMGUP_CDN_PURGE_URL: "https://api.cloudflare.com/client/v4/zones/ZONE/purge_cache",
      IMGUP_CDN_PURGE_HEADERS: '{"Authorization":"Bearer cf-token","Content-Type":"application/json"}',
      IMGUP_CDN_PURGE_BODY: '{"tags":["{surrogateKey}"]}',
    });
    const requests = renderPurgeRequests(s, PUBLIC, { imageIds: [A, B], reference: "r" });
    expect(requests).toHaveLength(2);
    expect(requests[0]).toEqual({
      method: "POST",
      url: "https://api.cloudflare.com/client/v4/zones/ZONE/purge_cache",
      headers: { Authorization: "Bearer cf-token", "Content-Type": "application/json" },
      body: `{"tags":["img-${A}"]}`,
    });
    expect(JSON.parse(requests[1]?.body ?? "")).toEqual({ tags: [`img-${B}`] });
  });

  it("http: Cloudflare purge by prefix uses {host} and {path}", () => {
    const s = settings({
      IMGUP_CDN_PURGE: "http",
      IMGUP_CDN_PURGE_URL: "https://api.cloudflare.com/client/v4/zones/ZONE/purge_cache",
      IMGUP_CDN_PURGE_BODY: '{"prefixes":["{host}{path}"]}',
    });
    const [req] = renderPurgeRequests(s, PUBLIC, { imageIds: [A], reference: "r" });
    expect(JSON.parse(req?.body ?? "")).toEqual({ prefixes: [`img.example.com/i/${A}/`] });
  });

  it("http: Fastly purge by surrogate key puts the key in the URL", () => {
    const s = settings({
      IMGUP_CDN_PURGE: "http",
      IMGUP_CDN_PURGE_URL: "https://api.fastly.com/service/SVC/purge/{surrogateKey}",
      IMGUP_CDN_PURGE_HEADERS: '{"Fastly-Key":"fastly-token"}',
    });
    const [req] = renderPurgeRequests(s, PUBLIC, { imageIds: [A], reference: "r" });
    expect(req).toEqual({
      method: "POST",
      url: `https://api.fastly.com/service/SVC/purge/img-${A}`,
      headers: { "Fastly-Key": "fastly-token" },
      body: undefined,
    });
  });

  it("http: CloudFront CreateInvalidation by path, with a caller reference unique per call", () => {
    const s = settings({
      IMGUP_CDN_PURGE: "http",
      IMGUP_CDN_PURGE_URL: "http://sigv4-proxy:8080/2020-05-31/distribution/EDFDVBD6EXAMPLE/invalidation",
      IMGUP_CDN_PURGE_HEADERS: '{"Content-Type":"text/xml"}',
      IMGUP_CDN_PURGE_BODY:
        '<InvalidationBatch xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><CallerReference>{reference}</CallerReference><Paths><Quantity>1</Quantity><Items><Path>{path}*</Path></Items></Paths></InvalidationBatch>',
    });
    const requests = renderPurgeRequests(s, PUBLIC, { imageIds: [A, B], reference: "42-1" });
    expect(requests.map((r) => r.body)).toEqual([
      expect.stringContaining(
        `<CallerReference>42-1-0</CallerReference><Paths><Quantity>1</Quantity><Items><Path>/i/${A}/*</Path>`,
      ),
      expect.stringContaining(`<CallerReference>42-1-1</CallerReference>`),
    ]);
    const [one] = renderPurgeRequests(s, PUBLIC, { imageIds: [A], reference: "42-1" });
    expect(one?.body).toContain("<CallerReference>42-1</CallerReference>");
  });

  it("honours the method and {publicUrl}", () => {
    const s = settings({
      IMGUP_CDN_PURGE: "http",
      IMGUP_CDN_PURGE_METHOD: "PURGE",
      IMGUP_CDN_PURGE_URL: "http://cache.internal/purge?url={publicUrl}/i/{imageId}/thumb",
    });
    const [req] = renderPurgeRequests(s, PUBLIC, { imageIds: [A], reference: "r" });
    expect(req?.method).toBe("PURGE");
    expect(req?.url).toBe(`http://cache.internal/purge?url=https://img.example.com/i/${A}/thumb`);
  });
});

describe("IMGUP_CDN_PURGE configuration", () => {
  it("is off by default", () => {
    expect(settings({}).kind).toBe("off");
    expect(settings({}).repeatAfterMs).toBe(30_000);
  });

  it("refuses what cannot work at startup, never echoing a header's value", () => {
    expect(() => settings({ IMGUP_CDN_PURGE: "varnish" })).toThrow(ConfigError);
    expect(() => settings({ IMGUP_CDN_PURGE: "http" })).toThrow(/IMGUP_CDN_PURGE_URL/);
    expect(() => settings({ IMGUP_CDN_PURGE: "varnish", IMGUP_CDN_PURGE_VARNISH_URLS: "ftp://v1" })).toThrow(
      /IMGUP_CDN_PURGE_VARNISH_URLS/,
    );
    expect(() => settings({ IMGUP_CDN_PURGE: "http", IMGUP_CDN_PURGE_URL: "https://x/{imageid}" })).toThrow(
      /unknown placeholder \{imageid\}/,
    );
    const bad = () =>
      settings({
        IMGUP_CDN_PURGE: "http",
        IMGUP_CDN_PURGE_URL: "https://x/",
        IMGUP_CDN_PURGE_HEADERS: "secret-token",
      });
    expect(bad).toThrow(/IMGUP_CDN_PURGE_HEADERS/);
    expect(bad).not.toThrow(/secret-token/);
  });

  it("lists unknown placeholders", () => {
    expect(unknownPlaceholders("{imageId}{nope}{path}")).toEqual(["nope"]);
    expect(unknownPlaceholders('{"tags":["{surrogateKey}"]}')).toEqual([]);
  });
});
