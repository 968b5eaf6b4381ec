import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imgupCli } from "../support/cli-run.ts";
import { eventually, freePort } from "../support/harness.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const run = promisify(execFile);

/**
 * The embedded database has one writer. `imgup keys …` while `imgup serve` runs on the same data
 * directory goes through the server; a second server is refused with a message saying why.
 */
// Every CLI call is a fresh Node process loading TypeScript: seconds each on a busy machine.
describe("imgup keys with the embedded database", { timeout: 240_000 }, () => {
  let dataDir: string;
  let env: Record<string, string>;
  let server: ChildProcess | null = null;
  let baseUrl: string;

  const cli = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [imgupCli(), ...args], {
        cwd: ROOT,
        env,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  const serve = () => spawn(process.execPath, [imgupCli(), "serve"], { cwd: ROOT, env });
  const exited = (child: ChildProcess) =>
    new Promise<number | null>((resolve) => {
      if (child.exitCode !== null) resolve(child.exitCode);
      else child.once("exit", (code) => resolve(code));
    });
  const stopServer = async () => {
    if (!server) return;
    const gone = exited(server);
    server.kill("SIGTERM");
    await gone;
    server = null;
  };
  const images = (key: string) =>
    fetch(`${baseUrl}/v1/images`, { headers: { authorization: `Bearer ${key}` } });

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "imgup-keys-"));
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    env = {
      PATH: process.env.PATH ?? "",
      IMGUP_DATA_DIR: dataDir,
      PORT: String(port),
      HOST: "127.0.0.1",
      IMGUP_PUBLIC_URL: baseUrl,
      IMGUP_DEMO_PAGE: "false",
      IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
      LOG_LEVEL: "warn",
    };
    server = serve();
    const child = server;
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`imgup serve exited ${child.exitCode}`);
      return (await fetch(`${baseUrl}/healthz`).catch(() => null))?.ok;
    }, 90_000);
  }, 120_000);

  afterAll(async () => {
    await stopServer();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("creates, lists and revokes keys through the running server", async () => {
    const created = await cli("keys", "create", "--owner", "carol", "--name", "ci");
    expect(created.code, created.stderr).toBe(0);
    const key = created.stdout.match(/^imgup_\S+$/m)?.[0] as string;
    const id = created.stdout.match(/key_[0-9a-f]{16}/)?.[0] as string;
    expect((await images(key)).status).toBe(200);

    const listed = await cli("keys", "list", "--owner", "carol", "--json");
    expect(listed.code, listed.stderr).toBe(0);
    const items = JSON.parse(listed.stdout) as Array<{ id: string; ownerId: string; name: string }>;
    expect(items).toEqual([expect.objectContaining({ id, ownerId: "carol", name: "ci" })]);
    expect(listed.stdout).not.toContain(key);

    const revoked = await cli("keys", "revoke", id);
    expect(revoked.code, revoked.stderr).toBe(0);
    // The server that revoked it refuses it at once.
    expect((await images(key)).status).toBe(401);
    expect(JSON.parse((await cli("keys", "list", "--owner", "carol", "--json")).stdout)).toEqual([]);
    // The file that lets the CLI in is the owner's alone.
    expect((await stat(path.join(dataDir, "local-admin.json"))).mode & 0o777).toBe(0o600);
  });

  it("refuses a second server on the same data directory, saying why", async () => {
    const second = serve();
    let err = "";
    second.stderr?.on("data", (d) => {
      err += d;
    });
    second.stdout?.on("data", (d) => {
      err += d;
    });
    expect(await exited(second)).not.toBe(0);
    expect(err).toContain("the embedded database is in use by another imgup process");
    expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);
  });

  it("keeps what was created through the server once it stops, and then works on the database directly", async () => {
    const created = await cli("keys", "create", "--owner", "dave");
    expect(created.code, created.stderr).toBe(0);
    await stopServer();
    const listed = await cli("keys", "list", "--json");
    expect(listed.code, listed.stderr).toBe(0);
    const keys = JSON.parse(listed.stdout) as Array<{ id: string; ownerId: string }>;
    const dave = keys.find((k) => k.ownerId === "dave")?.id as string;
    expect(dave).toMatch(/^key_/);
    const revoked = await cli("keys", "revoke", dave);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout.trim()).toBe(`revoked ${dave}`);
    const after = JSON.parse((await cli("keys", "list", "--owner", "dave", "--json")).stdout);
    expect(after).toEqual([]);
    // Revoked already: one line saying so, exit 1, no stack and no hint about one.
    const again = await cli("keys", "revoke", dave);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe(`imgup: no active API key ${dave}`);
    const usage = await cli("keys", "revoke");
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("missing required argument 'keyId'");
  });
});
