import { describe, expect, it } from "vitest";
import { BackendError, checkBackendUrl, classifyBackendError, redactUrl } from "./backend-errors.ts";

/** Node's socket errors as the clients throw them. */
const sysError = (code: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(`${code} something`), { code, ...extra });
/** The AWS SDK's shape for a HEAD answer (no body, so no S3 error code). */
const sdkError = (name: string, status: number) =>
  Object.assign(new Error("UnknownError"), { name, $metadata: { httpStatusCode: status } });

describe("classifyBackendError", () => {
  it("names DATABASE_URL and the cause for what pg throws", () => {
    const url = "postgres://u:secret@db.example:5432/imgup";
    const cases: Array<[unknown, string]> = [
      [sysError("ENOTFOUND", { hostname: "db.example" }), "dns"],
      [sysError("EAI_AGAIN", { hostname: "db.example" }), "dns"],
      [sysError("ECONNREFUSED", { address: "127.0.0.1", port: 5999 }), "refused"],
      [sysError("ETIMEDOUT"), "timeout"],
      [new Error("timeout exceeded when trying to connect"), "timeout"],
      [new Error("Connection terminated due to connection timeout"), "timeout"],
      [Object.assign(new Error('password authentication failed for user "u"'), { code: "28P01" }), "auth"],
      [Object.assign(new Error('role "u" does not exist'), { code: "28000" }), "auth"],
      [Object.assign(new Error('database "imgup" does not exist'), { code: "3D000" }), "missing-database"],
      [new Error("The server does not support SSL connections"), "tls"],
      [sysError("DEPTH_ZERO_SELF_SIGNED_CERT"), "tls"],
      [new Error("something else entirely"), "unknown"],
    ];
    for (const [err, cause] of cases) {
      const p = classifyBackendError("database", err, { url });
      expect(p, String(err)).toMatchObject({ setting: "DATABASE_URL", cause });
      expect(p.message.startsWith("DATABASE_URL: "), p.message).toBe(true);
      expect(p.message).not.toContain("secret");
    }
    expect(
      classifyBackendError("database", sysError("ENOTFOUND", { hostname: "db.example" })).message,
    ).toContain('"db.example"');
    expect(
      classifyBackendError("database", Object.assign(new Error("x"), { code: "3D000" }), { url }).message,
    ).toContain('"imgup"');
  });

  it("finds the network cause inside AggregateError and wrapped causes", () => {
    const agg = Object.assign(new AggregateError([sysError("ECONNREFUSED")], "connect failed"), {});
    expect(classifyBackendError("database", agg).cause).toBe("refused");
    const wrapped = new Error("Connection is closed.", { cause: sysError("ENOTFOUND", { hostname: "r" }) });
    expect(classifyBackendError("redis", wrapped)).toMatchObject({ setting: "REDIS_URL", cause: "dns" });
  });

  it("says the URL is not a URL before anything else", () => {
    // What pg alone makes of it: a socket path, then a DNS failure for "base".
    const p = classifyBackendError("database", sysError("ENOTFOUND", { hostname: "base" }), {
      url: "not-a-url",
    });
    expect(p).toMatchObject({ setting: "DATABASE_URL", cause: "invalid-url" });
    expect(p.message).toContain("not a URL");
    expect(checkBackendUrl("database", "mysql://h/db")).toMatchObject({ cause: "invalid-url" });
    expect(checkBackendUrl("database", "postgresql://h/db")).toBeNull();
    expect(checkBackendUrl("redis", "redis://127.0.0.1:6379")).toBeNull();
    expect(checkBackendUrl("redis", "127.0.0.1:6379")).toMatchObject({
      setting: "REDIS_URL",
      cause: "invalid-url",
    });
    expect(checkBackendUrl("s3", "s3.example")).toMatchObject({
      setting: "S3_ENDPOINT",
      cause: "invalid-url",
    });
    expect(checkBackendUrl("s3", "https://s3.example")).toBeNull();
  });

  it("names REDIS_URL for auth and network failures", () => {
    expect(
      classifyBackendError(
        "redis",
        new Error("WRONGPASS invalid username-password pair or user is disabled."),
      ),
    ).toMatchObject({ setting: "REDIS_URL", cause: "auth" });
    expect(classifyBackendError("redis", new Error("NOAUTH Authentication required."))).toMatchObject({
      cause: "auth",
    });
    expect(classifyBackendError("redis", sysError("ECONNREFUSED"))).toMatchObject({ cause: "refused" });
    expect(classifyBackendError("redis", new Error("Redis not connected within 1000 ms"))).toMatchObject({
      cause: "timeout",
    });
  });

  it("names the S3 setting to fix: bucket, credentials or endpoint", () => {
    const ctx = { bucket: "photos" };
    expect(classifyBackendError("s3", sdkError("NotFound", 404), ctx)).toMatchObject({
      setting: "S3_BUCKET",
      cause: "missing-bucket",
    });
    expect(classifyBackendError("s3", sdkError("NoSuchBucket", 404), ctx).message).toContain('"photos"');
    // RGW answers a HEAD with a wrong key 403 and no body: the SDK calls it "Unknown".
    for (const err of [
      sdkError("Unknown", 403),
      sdkError("InvalidAccessKeyId", 403),
      sdkError("Forbidden", 403),
    ]) {
      const p = classifyBackendError("s3", err, ctx);
      expect(p).toMatchObject({ setting: "S3_ACCESS_KEY_ID", cause: "auth" });
      expect(p.message).toContain("S3_SECRET_ACCESS_KEY");
    }
    expect(classifyBackendError("s3", sysError("ECONNREFUSED"))).toMatchObject({
      setting: "S3_ENDPOINT",
      cause: "refused",
    });
    expect(classifyBackendError("s3", sysError("ENOTFOUND", { hostname: "s3.nowhere" }))).toMatchObject({
      setting: "S3_ENDPOINT",
      cause: "dns",
    });
    expect(
      classifyBackendError("s3", Object.assign(new Error("slow"), { name: "TimeoutError" })),
    ).toMatchObject({
      cause: "timeout",
    });
    expect(classifyBackendError("s3", sdkError("Unknown", 500))).toMatchObject({
      setting: "S3_ENDPOINT",
      cause: "unknown",
    });
  });

  it("passes a BackendError's classification through unchanged", () => {
    const problem = { setting: "S3_BUCKET", cause: "missing-bucket", message: "S3_BUCKET: gone" } as const;
    expect(classifyBackendError("database", new BackendError(problem))).toEqual(problem);
  });
});

describe("redactUrl", () => {
  it("hides the password and leaves other text alone", () => {
    expect(redactUrl("postgres://u:secret@h:5432/db")).toBe("postgres://u:***@h:5432/db");
    expect(redactUrl("redis://h:6379")).toBe("redis://h:6379");
    expect(redactUrl("not-a-url")).toBe("not-a-url");
  });
});
