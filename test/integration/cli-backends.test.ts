import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { missingBackend } from "../support/backends.ts";
import { runCli } from "../support/cli-run.ts";
import { s3TestConnection } from "../support/s3-target.ts";

const DATABASE_URL = process.env.DATABASE_URL;
const REDIS_URL = process.env.REDIS_URL;
if (!DATABASE_URL) missingBackend("postgres", "DATABASE_URL");
if (!REDIS_URL) missingBackend("redis", "REDIS_URL");

/** Refused at once by the kernel on the test machine: nothing listens on port 1. */
const CLOSED = "127.0.0.1:1";

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "imgup-cli-backends-"));
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

const base = () => ({
  IMGUP_DATA_DIR: dataDir,
  IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
  PORT: "0",
  HOST: "127.0.0.1",
  LOG_LEVEL: "silent",
});

/** One line naming the setting and the cause, exit 1, no stack. */
function expectNamed(r: { code: number; stderr: string }, setting: string, words: RegExp) {
  expect(r.code, r.stderr).toBe(1);
  // The AWS SDK may print its Node version warning first.
  const line = r.stderr.split("\n").find((l) => l.startsWith("imgup: ")) ?? r.stderr;
  expect(line, r.stderr).toMatch(new RegExp(`^imgup: ${setting}: `));
  expect(line, r.stderr).toMatch(words);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe.skipIf(!DATABASE_URL)("migrations are an explicit step (PostgreSQL)", () => {
  const schema = `t_cli_${randomBytes(5).toString("hex")}`;
  const env = () => ({ ...base(), DATABASE_URL: DATABASE_URL as string, DATABASE_SCHEMA: schema });
  afterAll(async () => {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`drop schema if exists "${schema}" cascade`);
    await client.end();
  });

  it("refuses an unmigrated or newer schema naming what to do, and migrates only when told", async () => {
    const refused = await runCli(["serve", "--role", "worker"], { ...env(), IMGUP_SINGLE_INSTANCE: "true" });
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toContain("run `imgup migrate` first");
    const keys = await runCli(["keys", "list"], env());
    expect(keys.code).toBe(1);
    expect(keys.stderr).toContain("imgup migrate");

    expect((await runCli(["migrate", "--help"], env())).code).toBe(0);
    const status = await runCli(["migrate", "--status"], env());
    expect(status.stdout).toContain("applied: none");

    const migrated = await runCli(["migrate"], env());
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stdout).toContain("applied: 001-initial");
    expect((await runCli(["migrate"], env())).stdout).toContain("database is up to date");
    const created = await runCli(["keys", "create", "--owner", "ops"], env());
    expect(created.code, created.stderr).toBe(0);

    // A newer imgup migrated further: this one refuses to start on it, and says so differently.
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(
      `insert into "${schema}".kysely_migration (name, timestamp) values ('999-future', '2030-01-01')`,
    );
    await client.end();
    const newer = await runCli(["keys", "list"], env());
    expect(newer.code).toBe(1);
    expect(newer.stderr).toContain("the database schema is newer than this imgup");
    expect(newer.stderr).toContain("999-future");
    expect((await runCli(["migrate"], env())).stderr).toContain("newer than this imgup");
  });
});

describe.skipIf(!DATABASE_URL)("DATABASE_URL errors name the setting and the cause", () => {
  it.each([
    ["not-a-url", /not a URL/],
    ["postgres://postgres@imgup-no-such-host.invalid:5432/test", /not found \(DNS\)/],
    [`postgres://postgres@${CLOSED}/test`, /connection refused/],
    [
      "postgres://postgres@127.0.0.1:5432/imgup_no_such_database",
      /database "imgup_no_such_database" does not exist/,
    ],
    ["postgres://imgup_no_such_role:wrong@127.0.0.1:5432/test", /authentication failed/],
  ])("%s", async (url, words) => {
    expectNamed(await runCli(["migrate"], { ...base(), DATABASE_URL: url }), "DATABASE_URL", words);
  });
});

describe.skipIf(!REDIS_URL)("REDIS_URL errors stop the start naming the setting", () => {
  it.each([
    [`redis://${CLOSED}`, /connection refused/],
    ["redis://imgup_no_such_user:wrong@127.0.0.1:6379", /authentication failed/],
    ["127.0.0.1:6379", /not a URL/],
  ])("%s", async (url, words) => {
    expectNamed(await runCli(["serve", "--role", "api"], { ...base(), REDIS_URL: url }), "REDIS_URL", words);
  });
});

const s3 = s3TestConnection();
describe.skipIf(!s3)("S3 errors stop the start naming the setting (Ceph RGW)", () => {
  const env = (over: Record<string, string>) => ({
    ...base(),
    IMGUP_STORAGE: "s3",
    IMGUP_SINGLE_INSTANCE: "true",
    S3_ENDPOINT: s3?.endpoint ?? "",
    S3_REGION: s3?.region ?? "us-east-1",
    S3_BUCKET: process.env.TEST_S3_BUCKET || "imgup-dev",
    S3_ACCESS_KEY_ID: s3?.accessKeyId ?? "",
    S3_SECRET_ACCESS_KEY: s3?.secretAccessKey ?? "",
    S3_FORCE_PATH_STYLE: "true",
    ...over,
  });
  it.each([
    [{ S3_ACCESS_KEY_ID: "IMGUPWRONGKEY0000000" }, "S3_ACCESS_KEY_ID", /S3_SECRET_ACCESS_KEY/],
    [{ S3_SECRET_ACCESS_KEY: "wrong-secret" }, "S3_ACCESS_KEY_ID", /refused|secret/],
    [{ S3_BUCKET: "imgup-no-such-bucket" }, "S3_BUCKET", /"imgup-no-such-bucket" does not exist/],
    [{ S3_ENDPOINT: `http://${CLOSED}` }, "S3_ENDPOINT", /connection refused/],
  ])("%o", async (over, setting, words) => {
    expectNamed(await runCli(["serve"], env(over)), setting, words);
  });
});
