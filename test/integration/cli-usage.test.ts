import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newImageId } from "../../src/domain/ids.ts";
import { ROOT, runCli } from "../support/cli-run.ts";

/**
 * What an operator types by mistake, or to learn: help, --version, usage errors. None of it may run
 * a command or load the app, and none of it prints a stack trace.
 */
describe("imgup command line: help, version and mistakes", () => {
  let dataDir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "imgup-cli-"));
    // A DATABASE_URL nothing answers: any command that ran would fail on it.
    env = { IMGUP_DATA_DIR: dataDir, DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" };
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  const commands = [
    ["serve"],
    ["migrate"],
    ["keys"],
    ["keys", "create"],
    ["keys", "list"],
    ["keys", "revoke"],
    ["sign-url"],
    ["events", "ceph-webhook"],
    ["reconcile"],
    ["sweep"],
    ["doctor"],
    ["purge"],
  ];

  it("answers --help and -h on every command and subcommand without running it", async () => {
    const results = await Promise.all(
      commands.flatMap((words) =>
        ["--help", "-h"].map(async (flag) => ({ words, flag, r: await runCli([...words, flag], env) })),
      ),
    );
    for (const { words, flag, r } of results) {
      const what = `imgup ${words.join(" ")} ${flag}: ${r.stderr}`;
      expect(r.code, what).toBe(0);
      expect(r.stdout, what).toContain(`Usage: imgup ${words.join(" ")}`);
      expect(r.stderr, what).toBe("");
    }
    // Nothing was created in the data directory (serve and migrate would have).
    expect(await readdir(dataDir)).toEqual([]);
  });

  it("prints the package version", async () => {
    const pkg = JSON.parse(await readFile(path.join(ROOT, "package.json"), "utf8")) as { version: string };
    for (const flag of ["--version", "-V"]) {
      const r = await runCli([flag], env);
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(pkg.version);
    }
  });

  it("refuses usage mistakes with exit 2, one message and no stack", async () => {
    const cases: Array<[string[], string]> = [
      [[], "Usage: imgup"],
      [["bogus"], "unknown command 'bogus'"],
      [["serve", "--role", "nope"], "Allowed choices are all, api, worker, scheduler"],
      [["serve", "--port", "1"], "unknown option '--port'"],
      [["keys", "create"], "required option '--owner <id>' not specified"],
      [["keys", "revoke"], "missing required argument 'keyId'"],
      [["sign-url", "--image", "x"], "required option '--spec <spec>' not specified"],
      [["purge"], "required option '--owner <id>' not specified"],
      // Not a terminal: purge cannot ask, so it wants --yes (and opens nothing to say so).
      [["purge", "--owner", "alice"], "add --yes to confirm"],
      [["sign-url", "--image", "x", "--spec", "w_abc"], "--spec:"],
    ];
    const withSecret = { ...env, IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex") };
    const results = await Promise.all(
      cases.map(async ([args, text]) => ({ args, text, r: await runCli(args, withSecret) })),
    );
    for (const { args, text, r } of results) {
      const what = `imgup ${args.join(" ")}: ${r.stderr}`;
      expect(r.code, what).toBe(2);
      expect(r.stderr + r.stdout, what).toContain(text);
      expect(r.stderr, what).not.toMatch(/\n\s+at /);
    }
  });

  it("words configuration errors in one line, and shows the stack only with --debug", async () => {
    const plain = await runCli(["keys", "list"], { ...env, PORT: "abc" });
    expect(plain.code).toBe(1);
    expect(plain.stderr.trim()).toBe('imgup: configuration error: PORT: expected an integer, got "abc"');
    const debug = await runCli(["keys", "list", "--debug"], { ...env, PORT: "abc" });
    expect(debug.code).toBe(1);
    expect(debug.stderr).toContain("configuration error: PORT");
    expect(debug.stderr).toMatch(/\n\s+at /);
  });

  it("sign-url prints a signed URL; with no secret anywhere it says where one comes from, in one line", async () => {
    const id = newImageId();
    const spec = "w_400,h_300,fit_cover,f_auto";
    const signed = await runCli(["sign-url", "--image", id, "--spec", spec], {
      ...env,
      IMGUP_PUBLIC_URL: "http://localhost:8080",
      IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
    });
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stdout.trim()).toMatch(
      new RegExp(`^http://localhost:8080/i/[A-Za-z0-9_-]+/${spec}/${id}$`),
    );
    const noSecret = await runCli(["sign-url", "--image", id, "--spec", spec], env);
    expect(noSecret.code).toBe(1);
    expect(noSecret.stderr.trim()).toMatch(
      /^imgup: no IMGUP_SIGNING_SECRET and no \S+: start imgup once or set it$/,
    );
  });

  it("refuses to serve a multi-instance setup without IMGUP_SIGNING_SECRET or REDIS_URL, naming it", async () => {
    const secret = randomBytes(32).toString("hex");
    const sharedBucket = { ...env, IMGUP_STORAGE: "s3", S3_BUCKET: "shared" };
    const [api, worker, all, noRedis] = await Promise.all([
      runCli(["serve", "--role", "api"], env),
      runCli(["serve", "--role", "worker"], env),
      // Role all, but DATABASE_URL with S3: other instances may share both.
      runCli(["serve"], sharedBucket),
      runCli(["serve", "--role", "api"], { ...env, IMGUP_SIGNING_SECRET: secret }),
    ]);
    // Refused before any backend is tried: the DATABASE_URL here answers nothing.
    for (const r of [api, worker, all]) {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr.trim(), r.stderr).toMatch(
        /^imgup: configuration error: IMGUP_SIGNING_SECRET: must be set \(.*same key\)$/,
      );
    }
    expect(noRedis.code, noRedis.stderr).toBe(1);
    expect(noRedis.stderr.trim()).toMatch(/^imgup: configuration error: REDIS_URL: must be set/);
  });

  it("loads none of the app for help and usage errors, and does once a command runs", async () => {
    const traced = async (args: string[], extraEnv: Record<string, string> = {}) => {
      const trace = path.join(dataDir, `trace-${randomBytes(4).toString("hex")}`);
      const r = await runCli(args, { ...env, ...extraEnv, IMGUP_IMPORT_TRACE: trace }, [
        "--import",
        "./test/support/import-trace.mjs",
      ]);
      const urls = (await readFile(trace, "utf8").catch(() => "")).split("\n");
      await rm(trace, { force: true });
      return { r, urls };
    };
    const heavy = (urls: string[]) =>
      urls.filter((u) => /\/app\.[jt]s$|\/sharp\/|@aws-sdk|@electric-sql\/pglite|\/fastify\//.test(u));
    for (const args of [
      ["serve", "--help"],
      ["--help"],
      ["migrate", "--help"],
      ["serve", "--role", "nope"],
    ]) {
      const { r, urls } = await traced(args);
      expect(
        urls.some((u) => u.endsWith("/cli.js")),
        args.join(" "),
      ).toBe(true);
      expect(heavy(urls), args.join(" ")).toEqual([]);
      expect(r.code).toBeLessThanOrEqual(2);
    }
    // The control: a command that runs (embedded doctor) does load the app, so the trace sees it.
    const ran = await traced(["doctor", "--json"], { DATABASE_URL: "" });
    expect(ran.r.code, ran.r.stderr).toBe(0);
    expect(heavy(ran.urls).some((u) => u.endsWith("/app.js"))).toBe(true);
  });

  it("prints the maintenance reports as JSON for scripts", async () => {
    const embedded = { IMGUP_DATA_DIR: path.join(dataDir, "json"), LOG_LEVEL: "silent" };
    // One at a time: the embedded database has one writer.
    const doctor = await runCli(["doctor", "--json"], embedded);
    const sweep = await runCli(["sweep", "--dry-run", "--json"], embedded);
    const reconcile = await runCli(["reconcile", "--dry-run", "--json"], embedded);
    const purge = await runCli(["purge", "--owner", "nobody", "--dry-run", "--json"], embedded);
    const keys = await runCli(["keys", "list", "--json"], embedded);
    for (const r of [doctor, sweep, reconcile, purge, keys]) expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(doctor.stdout)).toMatchObject({
      command: "doctor",
      exitCode: 0,
      report: expect.any(Object),
    });
    expect(JSON.parse(sweep.stdout)).toMatchObject({ command: "sweep", report: { dryRun: true, listed: 0 } });
    expect(JSON.parse(reconcile.stdout)).toMatchObject({ command: "reconcile", report: { dryRun: true } });
    expect(JSON.parse(purge.stdout)).toMatchObject({
      command: "purge",
      exitCode: 0,
      report: { ownerId: "nobody", dryRun: true, images: 0 },
    });
    expect(JSON.parse(keys.stdout)).toEqual([]);
  });
});
