import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type CORSRule, PutBucketCorsCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { doctor } from "../../src/cli-maintenance.ts";
import { checkBucketCors } from "../../src/services/doctor-cors.ts";
import type { BucketCorsRule } from "../../src/storage/object-store.ts";
import { RangeNotSatisfiableError } from "../../src/storage/object-store.ts";
import { S3ObjectStore } from "../../src/storage/s3.ts";
import { createS3Client } from "../../src/storage/s3-client.ts";
import { launchChromium } from "../support/browser.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";
import { type S3TestTarget, s3Env, s3TestConnection, s3TestTarget } from "../support/s3-target.ts";

const APP = "https://app.example";
/** The rule docs/cors.md shows and tells operators to apply. */
const DOC_RULE = JSON.parse(
  readFileSync(new URL("../../docs/s3-bucket-cors.json", import.meta.url), "utf8"),
) as {
  CORSRules: CORSRule[];
};

const full: BucketCorsRule = {
  allowedOrigins: [APP],
  allowedMethods: ["PUT", "POST", "GET", "HEAD"],
  allowedHeaders: ["content-type", "content-md5", "if-none-match", "x-amz-*"],
  exposeHeaders: ["ETag"],
};
const storeWith = (rules: BucketCorsRule[] | null) => ({ corsRules: async () => rules });

describe("doctor's bucket CORS check", () => {
  it("passes a rule with the origin, PUT and POST, the pinned headers and ETag exposed", async () => {
    expect(await checkBucketCors(storeWith([full]), { configured: [APP] })).toMatchObject({ missing: [] });
    const wide = { ...full, allowedOrigins: ["https://*.example"], allowedHeaders: ["*"] };
    expect(await checkBucketCors(storeWith([wide]), { configured: [APP] })).toMatchObject({ missing: [] });
  });

  it("names what is missing, per configured origin", async () => {
    const none = await checkBucketCors(storeWith([]), { configured: [APP] });
    expect(none?.missing).toEqual([`${APP}: no rule has it in AllowedOrigins`]);
    const partial = {
      ...full,
      allowedMethods: ["GET", "PUT"],
      allowedHeaders: ["content-type"],
      exposeHeaders: [],
    };
    const check = await checkBucketCors(storeWith([partial]), { configured: [APP] });
    expect(check?.missing).toEqual([
      `${APP}: AllowedMethods lacks POST; AllowedHeaders lacks content-md5, if-none-match, x-amz-checksum-sha256; ExposeHeaders lacks ETag`,
    ]);
  });

  it("only notes the demo page's origin, and says nothing for local storage", async () => {
    const check = await checkBucketCors(storeWith([full]), {
      configured: [APP],
      page: "https://imgup.example",
    });
    expect(check?.missing).toEqual([]);
    expect(check?.notes).toEqual(["https://imgup.example: no rule has it in AllowedOrigins"]);
    expect(await checkBucketCors(storeWith(null), { configured: [APP] })).toBeNull();
  });
});

const connection = s3TestConnection();
const db = dbTargets()[0];

describe.skipIf(!connection || !db)("bucket CORS and ranged reads on S3 (Ceph RGW)", () => {
  let bucket: S3TestTarget;
  let run: Running;
  let site: Server;
  let siteOrigin: string;

  beforeAll(async () => {
    const target = await s3TestTarget();
    if (!target || !connection || !db) throw new Error("no S3 target");
    bucket = target;
    site = createServer((_req, res) =>
      res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html>"),
    );
    await new Promise<void>((resolve) => site.listen(0, "127.0.0.1", resolve));
    siteOrigin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    run = await startImgup(db.make(), { ...s3Env(target, connection), IMGUP_CORS_ORIGINS: siteOrigin });
  }, 60_000);
  afterAll(async () => {
    await run?.stop();
    await bucket?.cleanup();
    await new Promise((resolve) => site?.close(resolve));
  }, 120_000);

  it("doctor names the missing rule, then passes once the documented rule is applied", async () => {
    const out: string[] = [];
    expect(await doctor(run.imgup.maintenance, (l) => out.push(l))).toBe(1);
    expect(out.join("\n")).toContain(`missing for ${siteOrigin}: no rule has it in AllowedOrigins`);
    expect(out.join("\n")).toContain("docs/cors.md");

    // The documented rule with this deployment's origins, applied as `aws s3api put-bucket-cors` would.
    const rules = DOC_RULE.CORSRules.map((r) => ({ ...r, AllowedOrigins: [siteOrigin, run.baseUrl] }));
    if (!connection) throw new Error("no S3 target");
    const client = createS3Client(connection);
    try {
      await client.send(
        new PutBucketCorsCommand({ Bucket: bucket.options.bucket, CORSConfiguration: { CORSRules: rules } }),
      );
    } finally {
      client.destroy();
    }
    out.length = 0;
    expect(await doctor(run.imgup.maintenance, (l) => out.push(l))).toBe(0);
    expect(out.join("\n")).toContain("browser uploads to the bucket are allowed");
    expect(out.at(-1)).toBe("no disagreements");
  }, 60_000);

  it("a page on that origin uploads to the bucket with the presigned URL and reads the ETag", async () => {
    const browser = await launchChromium();
    try {
      const tab = await browser.context.newPage();
      await tab.goto(siteOrigin);
      const bytes = [...(await makeImage("jpeg", 64, 48))];
      const put = await tab.evaluate(
        async ({ api, key, bytes }) => {
          const body = new Uint8Array(bytes);
          const created = await fetch(`${api}/v1/uploads`, {
            method: "POST",
            headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
            body: JSON.stringify({ filename: "b.jpg", contentType: "image/jpeg", size: body.length }),
          });
          const intent = await created.json();
          const res = await fetch(intent.upload.url, { method: "PUT", headers: intent.upload.headers, body });
          return { url: intent.upload.url as string, status: res.status, etag: res.headers.get("etag") };
        },
        { api: run.baseUrl, key: run.alice, bytes },
      );
      expect(new URL(put.url).origin).toBe(new URL(connection?.endpoint ?? "").origin);
      expect(put.status).toBe(200);
      expect(put.etag).toMatch(/^"[0-9a-f]+"$/);
    } finally {
      await browser.close();
    }
  }, 60_000);

  it("getRange cuts the range in the storage, and a range past the end is RangeNotSatisfiableError", async () => {
    const store = new S3ObjectStore(bucket.options);
    try {
      const bytes = Buffer.from("0123456789abcdefghij");
      await store.put("t/range.bin", bytes, { contentType: "application/octet-stream" });
      const read = async (range: Parameters<typeof store.getRange>[1]) => {
        const got = await store.getRange("t/range.bin", range);
        if (!got) throw new Error("no object");
        const chunks: Buffer[] = [];
        for await (const c of got.body) chunks.push(c as Buffer);
        return { ...got, text: Buffer.concat(chunks).toString() };
      };
      expect(await read({ start: 2, end: 5 })).toMatchObject({
        start: 2,
        end: 5,
        text: "2345",
        head: { size: 20 },
      });
      expect(await read({ suffix: 3 })).toMatchObject({ start: 17, end: 19, text: "hij" });
      expect(await read({ start: 15 })).toMatchObject({ start: 15, end: 19, text: "fghij" });
      await expect(store.getRange("t/range.bin", { start: 20 })).rejects.toEqual(
        new RangeNotSatisfiableError(20),
      );
      expect(await store.getRange("t/missing.bin", { start: 0 })).toBeNull();
    } finally {
      await store.close();
    }
  });
});
