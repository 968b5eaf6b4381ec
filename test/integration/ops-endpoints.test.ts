import { afterEach, describe, expect, it } from "vitest";
import { Api } from "../support/api.ts";
import { dbTargets, freePort, type Running, startImgup } from "../support/harness.ts";
import { s3TestConnection } from "../support/s3-target.ts";

const OPS_TOKEN = "ops-token-for-the-test-0123456789";
type Ready = { status: string; checks: Record<string, string>; failed: string[] };

/** A storage endpoint that refuses connections: /readyz fails with an error naming host and port. */
const refusedS3 = async () => ({
  IMGUP_STORAGE: "s3",
  S3_BUCKET: "ops",
  S3_ENDPOINT: `http://127.0.0.1:${await freePort()}`,
  S3_FORCE_PATH_STYLE: "true",
  S3_ACCESS_KEY_ID: "test",
  S3_SECRET_ACCESS_KEY: "test-secret",
});

describe.each(dbTargets())("/metrics and /readyz details on $name", (target) => {
  const runs: Running[] = [];
  afterEach(async () => {
    await Promise.all(runs.splice(0).map((r) => r.stop()));
  });
  const start = async (env: Record<string, string>) => {
    const run = await startImgup(target.make(), { IMGUP_ROLE: "api", ...env });
    runs.push(run);
    return run;
  };

  it("with IMGUP_OPS_TOKEN: /metrics needs it, and /readyz says why only to its holder", async () => {
    const run = await start({ ...(await refusedS3()), IMGUP_OPS_TOKEN: OPS_TOKEN });
    const anon = new Api(run.baseUrl);
    const ops = new Api(run.baseUrl, OPS_TOKEN);
    const denied = await anon.request("GET", "/metrics");
    expect(denied.status).toBe(401);
    expect(denied.body).toMatchObject({ code: "unauthenticated" });
    // An API key is not the ops token.
    expect((await anon.as(run.alice).request("GET", "/metrics")).status).toBe(401);
    const scraped = await ops.request<string>("GET", "/metrics");
    expect(scraped.status).toBe(200);
    expect(scraped.body).toContain("imgup_http_request_duration_seconds");

    const outside = await anon.request<Ready>("GET", "/readyz");
    expect(outside.status).toBe(503);
    expect(outside.body).toMatchObject({ status: "unavailable", failed: ["storage"] });
    expect(outside.body.checks.storage).toBe("failed");
    expect(JSON.stringify(outside.body)).not.toMatch(/127\.0\.0\.1|ECONNREFUSED/);
    const inside = await ops.request<Ready>("GET", "/readyz");
    expect(inside.body.checks.storage).toMatch(/^S3_ENDPOINT: connection refused .*ECONNREFUSED/);
  });

  const s3 = s3TestConnection();
  it.skipIf(!s3)(
    "names the setting on a real S3 (Ceph RGW) that refuses the key or lacks the bucket",
    async () => {
      const env = {
        IMGUP_STORAGE: "s3",
        S3_ENDPOINT: s3?.endpoint ?? "",
        S3_REGION: s3?.region ?? "us-east-1",
        S3_FORCE_PATH_STYLE: "true",
        S3_ACCESS_KEY_ID: s3?.accessKeyId ?? "",
        IMGUP_OPS_TOKEN: OPS_TOKEN,
      };
      const wrongSecret = await start({
        ...env,
        S3_BUCKET: "imgup-dev",
        S3_SECRET_ACCESS_KEY: "wrong-secret",
      });
      const a = await new Api(wrongSecret.baseUrl, OPS_TOKEN).request<Ready>("GET", "/readyz");
      expect(a.status).toBe(503);
      expect(a.body.checks.storage).toMatch(/^S3_ACCESS_KEY_ID: /);
      const noBucket = await start({
        ...env,
        S3_BUCKET: "imgup-no-such-bucket",
        S3_SECRET_ACCESS_KEY: s3?.secretAccessKey ?? "",
      });
      const b = await new Api(noBucket.baseUrl, OPS_TOKEN).request<Ready>("GET", "/readyz");
      expect(b.status).toBe(503);
      expect(b.body.checks.storage).toMatch(/^S3_BUCKET: .*"imgup-no-such-bucket" does not exist/);
    },
  );

  it("without a token: /metrics and /readyz details on the API port only in embedded mode; /metrics on the admin port", async () => {
    const adminPort = await freePort();
    const run = await start({ ...(await refusedS3()), IMGUP_ADMIN_PORT: String(adminPort) });
    const anon = new Api(run.baseUrl);
    const metrics = await anon.request("GET", "/metrics");
    const ready = await anon.request<Ready>("GET", "/readyz");
    expect(ready.status).toBe(503);
    if (target.name === "postgres") {
      // DATABASE_URL: a production setup, whose API port is public.
      expect(metrics.status).toBe(401);
      expect(metrics.body).toMatchObject({ code: "unauthenticated" });
      expect(JSON.stringify(metrics.body)).toContain("IMGUP_OPS_TOKEN");
      expect(ready.body.checks.storage).toBe("failed");
    } else {
      expect(metrics.status).toBe(200);
      expect(ready.body.checks.storage).toMatch(/ECONNREFUSED/);
    }
    // The admin port is the operator's own: scraped without a token in either mode.
    const admin = await new Api(`http://127.0.0.1:${adminPort}`).request<string>("GET", "/metrics");
    expect(admin.status).toBe(200);
    expect(admin.body).toContain("imgup_http_request_duration_seconds");
  });
});
