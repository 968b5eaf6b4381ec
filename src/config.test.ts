import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { assertDeployable, ConfigError, loadConfig } from "./config.ts";

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

  it("reads the admin port: unset by default, bound to HOST unless IMGUP_ADMIN_HOST, never PORT itself", () => {
    expect(loadConfig({}).admin).toEqual({ host: "127.0.0.1", port: undefined });
    expect(loadConfig({ HOST: "0.0.0.0", IMGUP_ADMIN_PORT: "9464" }).admin).toEqual({
      host: "0.0.0.0",
      port: 9464,
    });
    expect(loadConfig({ IMGUP_ADMIN_PORT: "9464", IMGUP_ADMIN_HOST: "10.0.0.5" }).admin.host).toBe(
      "10.0.0.5",
    );
    expect(() => loadConfig({ PORT: "9000", IMGUP_ADMIN_PORT: "9000" })).toThrow(
      /^IMGUP_ADMIN_PORT: is PORT/,
    );
    // A worker listens on no PORT: the same number is its admin port.
    expect(loadConfig({ PORT: "9000", IMGUP_ADMIN_PORT: "9000", IMGUP_ROLE: "worker" }).admin.port).toBe(
      9000,
    );
    expect(() => loadConfig({ IMGUP_ADMIN_PORT: "0" })).toThrow(/IMGUP_ADMIN_PORT/);
  });

  it("reads IMGUP_CORS_ORIGINS: named origins for everything, * for public delivery only", () => {
    const named = loadConfig({
      IMGUP_PUBLIC_URL: "https://imgup.example",
      IMGUP_CORS_ORIGINS: "https://app.example, http://127.0.0.1:5173/",
    });
    expect(named.cors).toEqual({
      apiOrigins: ["https://app.example", "http://127.0.0.1:5173"],
      deliveryOrigins: ["https://app.example", "http://127.0.0.1:5173"],
    });
    const star = loadConfig({
      IMGUP_PUBLIC_URL: "https://imgup.example",
      IMGUP_CORS_ORIGINS: "*,https://a.example",
    });
    expect(star.cors).toEqual({ apiOrigins: ["https://a.example"], deliveryOrigins: "*" });
    expect(loadConfig({ IMGUP_PUBLIC_URL: "https://imgup.example" }).cors).toEqual({
      apiOrigins: [],
      deliveryOrigins: [],
    });
    for (const bad of [
      "app.example",
      "https://app.example/path",
      "ftp://x.example",
      "https://u:p@a.example",
    ]) {
      expect(() => loadConfig({ IMGUP_CORS_ORIGINS: bad })).toThrow(
        /^IMGUP_CORS_ORIGINS: .* is not an origin/,
      );
    }
  });

  it("allows the loopback names of the default public URL, and only while it is the default", () => {
    expect(loadConfig({ PORT: "8080" }).cors.apiOrigins).toEqual([
      "http://localhost:8080",
      "http://127.0.0.1:8080",
      "http://[::1]:8080",
    ]);
    expect(loadConfig({ PORT: "8080", IMGUP_PUBLIC_URL: "http://localhost:8080" }).cors.apiOrigins).toEqual(
      [],
    );
  });

  it("lets the command line choose the role", () => {
    expect(loadConfig({ IMGUP_ROLE: "api" }, { role: "worker" }).role).toBe("worker");
  });
});

describe("assertDeployable", () => {
  const secret = "s".repeat(40);
  it("lets the embedded setup start with generated secrets and an in-process KV", () => {
    expect(() => assertDeployable(loadConfig({}), {})).not.toThrow();
  });

  it("refuses a multi-instance setup without a signing secret, naming the variable", () => {
    expect(() => assertDeployable(loadConfig({ IMGUP_ROLE: "api" }), {})).toThrow(
      /^IMGUP_SIGNING_SECRET: must be set/,
    );
    const shared = { DATABASE_URL: "postgres://db/x", IMGUP_STORAGE: "s3", S3_BUCKET: "b" };
    expect(() => assertDeployable(loadConfig(shared), shared)).toThrow(/IMGUP_SIGNING_SECRET/);
  });

  it("refuses an API, scheduler or worker without REDIS_URL unless told it is the only instance", () => {
    const env = { IMGUP_SIGNING_SECRET: secret };
    expect(() => assertDeployable(loadConfig(env, { role: "api" }), env)).toThrow(/^REDIS_URL: must be set/);
    expect(() => assertDeployable(loadConfig(env, { role: "scheduler" }), env)).toThrow(/REDIS_URL/);
    // A worker buffers the storage events it cannot enqueue there, and publishes its heartbeat.
    expect(() => assertDeployable(loadConfig(env, { role: "worker" }), env)).toThrow(/REDIS_URL/);
    const single = { ...env, IMGUP_SINGLE_INSTANCE: "true" };
    expect(() => assertDeployable(loadConfig(single, { role: "api" }), single)).not.toThrow();
    const full = { ...env, REDIS_URL: "redis://127.0.0.1:6379" };
    expect(() => assertDeployable(loadConfig(full, { role: "api" }), full)).not.toThrow();
  });
});

describe("IMGUP_PROFILES", () => {
  it("reads profiles inline or from a file, checked against the deployment's types and presets", () => {
    const avatar = {
      maxBytes: 5 * 1024 * 1024,
      allowedTypes: ["jpeg", "image/png"],
      eagerPresets: ["thumb"],
    };
    const inline = loadConfig({ IMGUP_PROFILES: JSON.stringify({ avatar }) }).uploads.profiles;
    expect(inline.avatar).toEqual({ ...avatar, name: "avatar", allowedTypes: ["image/jpeg", "image/png"] });
    expect(loadConfig({}).uploads.profiles).toEqual({});
    const dir = mkdtempSync(path.join(tmpdir(), "imgup-profiles-"));
    const file = path.join(dir, "profiles.json");
    writeFileSync(file, JSON.stringify({ product: { maxWidth: 4096, visibility: "public" } }));
    expect(loadConfig({ IMGUP_PROFILES: file }).uploads.profiles.product).toMatchObject({ maxWidth: 4096 });
  });

  it("refuses a bad profile at start, naming the variable and the field", () => {
    const bad =
      (profiles: unknown, env: Record<string, string> = {}) =>
      () =>
        loadConfig({
          ...env,
          IMGUP_PROFILES: typeof profiles === "string" ? profiles : JSON.stringify(profiles),
        });
    expect(bad("{not json")).toThrow(/^IMGUP_PROFILES: not valid JSON/);
    expect(bad("/nonexistent/profiles.json")).toThrow(/^IMGUP_PROFILES: cannot read the file/);
    expect(bad([1])).toThrow(/^IMGUP_PROFILES: /);
    expect(bad({ avatar: { maxBytes: 0 } })).toThrow(/profile avatar: maxBytes must be an integer/);
    expect(bad({ avatar: { colour: "red" } })).toThrow(/unknown field "colour"/);
    expect(bad({ avatar: { eagerPresets: ["avatar_96"] } })).toThrow(
      /"avatar_96" is not a configured preset/,
    );
    expect(bad({ avatar: { allowedTypes: ["svg"] } })).toThrow(/allowedTypes: "svg"/);
    // A type the deployment itself does not accept is not the profile's to allow.
    expect(bad({ avatar: { allowedTypes: ["gif"] } }, { IMGUP_ALLOWED_TYPES: "image/jpeg" })).toThrow(
      /"gif"/,
    );
    expect(bad({ "Bad Name": {} })).toThrow(/profile name/);
    expect(bad({ avatar: { visibility: "secret" } })).toThrow(/visibility/);
    // Presets named by IMGUP_PRESETS are fine.
    expect(
      loadConfig({
        IMGUP_PRESETS: "thumb=w_200;avatar_96=w_96,h_96,fit_cover",
        IMGUP_PROFILES: JSON.stringify({ avatar: { eagerPresets: ["avatar_96"] } }),
      }).uploads.profiles.avatar?.eagerPresets,
    ).toEqual(["avatar_96"]);
  });
});
