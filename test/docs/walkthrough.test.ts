import { randomBytes } from "node:crypto";
import { statSync, writeFileSync } from "node:fs";
import path from "node:path";
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createS3Client } from "../../src/storage/s3-client.ts";
import { s3TestConnection } from "../support/s3-target.ts";
import { docTest } from "./markdown.ts";
import {
  cleanEnv,
  NEVER_RESTART_RGW,
  removeScratchDirs,
  runShell,
  type Served,
  scratchDir,
  serveFromScript,
} from "./shell.ts";

/** An intent for docs/sample.jpg whose bytes never arrive: what the troubleshooting page inspects. */
async function intentFile(served: Served, dir: string): Promise<void> {
  const sample = path.join(dir, "docs/sample.jpg");
  const response = await fetch(`${served.baseUrl}/v1/uploads`, {
    method: "POST",
    headers: { authorization: `Bearer ${served.key}`, "content-type": "application/json" },
    body: JSON.stringify({ filename: "stuck.jpg", contentType: "image/jpeg", size: statSync(sample).size }),
  });
  expect(response.status).toBe(201);
  writeFileSync(path.join(dir, "intent.json"), await response.text());
}

/** Runs the API walkthrough, then the troubleshooting commands on an upload that never happened. */
function walkthroughSuite(name: string, start: () => Promise<Served>, s3: boolean) {
  describe(name, () => {
    let served: Served;
    beforeAll(async () => {
      served = await start();
    }, 240_000);
    afterAll(async () => {
      await served?.stop();
      removeScratchDirs();
    });

    it("runs docs/api.md's walkthrough from start to end", async () => {
      const dir = scratchDir();
      const env = cleanEnv({ IMGUP: served.baseUrl, KEY: served.key });
      const { code, output } = await runShell(docTest("docs/api.md", "walkthrough"), { cwd: dir, env });
      expect(code, output).toBe(0);
      if (s3) expect(output).toContain('"If-None-Match": "*"');
      for (const expected of [
        '"status": "ready"',
        '"rejectReason": "not_an_image"',
        "200 image/webp",
        "range: 206 100",
        "unsigned: 404",
        "signed: 200",
        "deleted: 204",
        "after delete: 404",
        "aborted: 204",
        "idempotent-replayed: true",
        "same image",
        '"deduplicated": true',
      ]) {
        expect(output, output).toContain(expected);
      }
    }, 300_000);

    it("runs docs/troubleshooting.md's commands", async () => {
      const dir = scratchDir();
      await intentFile(served, dir);
      const env = cleanEnv({ IMGUP: served.baseUrl, KEY: served.key });
      const { code, output } = await runShell(docTest("docs/troubleshooting.md", "troubleshooting"), {
        cwd: dir,
        env,
      });
      expect(code, output).toBe(0);
      for (const expected of [
        '"status": "ok"',
        "HTTP/1.1 204",
        "access-control-allow-origin: http://localhost:5173",
        "wrong Content-Type: 403",
        '"status": "pending"',
        '"code": "upload_incomplete"',
      ]) {
        expect(output, output).toContain(expected);
      }
    }, 300_000);
  });
}

// The troubleshooting page's preflight asks as a page on http://localhost:5173 would.
const CORS = { IMGUP_CORS_ORIGINS: "http://localhost:5173" };

walkthroughSuite(
  "the docs' curl commands on embedded storage",
  () => serveFromScript("npm start", CORS),
  false,
);

const connection = s3TestConnection();
const prefix = `docs-${randomBytes(4).toString("hex")}`;

describe.skipIf(!connection)("on S3 (Ceph RGW from scripts/local-s3.sh)", () => {
  afterAll(async () => {
    if (!connection) return;
    const client = createS3Client(connection);
    const Bucket = process.env.TEST_S3_BUCKET || "imgup-dev";
    try {
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: `${prefix}/` }));
      for (const u of uploads.Uploads ?? []) {
        await client.send(new AbortMultipartUploadCommand({ Bucket, Key: u.Key, UploadId: u.UploadId }));
      }
      for (;;) {
        const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix: `${prefix}/` }));
        const objects = (page.Contents ?? []).map((o) => ({ Key: o.Key }));
        if (objects.length === 0) break;
        await client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: objects, Quiet: true } }));
      }
    } finally {
      client.destroy();
    }
  }, 120_000);

  // docs/operations.md's own block starts this imgup: env --imgup must give imgup all it needs.
  walkthroughSuite(
    "the docs' curl commands on S3",
    () =>
      serveFromScript(NEVER_RESTART_RGW + docTest("docs/operations.md", "local-s3-imgup"), {
        IMGUP_S3_PREFIX: prefix,
        ...CORS,
      }),
    true,
  );
});
