import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.ts";

describe("loadConfig", () => {
  it("has working embedded defaults", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ role: "all", port: 8080, publicUrl: "http://localhost:8080" });
    expect(c.database.url).toBeUndefined();
    expect(c.uploads).toMatchObject({
      maxBytes: 20 * 1024 * 1024,
      maxPixels: 50_000_000,
      urlTtlSeconds: 600,
    });
    expect(c.auth.devKey).toBe(true);
  });

  it("fails naming the variable", () => {
    expect(() => loadConfig({ PORT: "eighty" })).toThrow(/^PORT: expected an integer/);
    expect(() => loadConfig({ IMGUP_MAX_UPLOAD_BYTES: "0" })).toThrow(ConfigError);
    expect(() => loadConfig({ IMGUP_ROLE: "boss" })).toThrow(/IMGUP_ROLE/);
    expect(() => loadConfig({ IMGUP_ALLOWED_TYPES: "image/svg+xml" })).toThrow(/IMGUP_ALLOWED_TYPES/);
    expect(() => loadConfig({ IMGUP_SIGNING_SECRET: "short" })).toThrow(/IMGUP_SIGNING_SECRET/);
    expect(() => loadConfig({ IMGUP_PUBLIC_URL: "ftp://x" })).toThrow(/IMGUP_PUBLIC_URL/);
    expect(() => loadConfig({ DATABASE_SCHEMA: "Robert'); drop" })).toThrow(/DATABASE_SCHEMA/);
  });

  it("lets the command line choose the role", () => {
    expect(loadConfig({ IMGUP_ROLE: "api" }, { role: "worker" }).role).toBe("worker");
  });
});
