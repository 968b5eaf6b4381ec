import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { missingBackend } from "../support/backends.ts";
import { eventually, freePort } from "../support/harness.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const PROCFILE = path.join(ROOT, "deploy/Procfile");

/** `name: command` lines, as foreman and honcho read them. */
function parseProcfile(text: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z0-9_-]+):\s*(.+)$/.exec(line);
    if (m?.[1] && m[2]) types.set(m[1], m[2].trim());
  }
  return types;
}

interface Proc {
  child: ChildProcess;
  out: () => string;
  exit: Promise<number | null>;
}

describe("deploy/Procfile", () => {
  const databaseUrl = process.env.DATABASE_URL;
  const redisUrl = process.env.REDIS_URL;
  if (!databaseUrl) missingBackend("postgres", "DATABASE_URL");
  if (!redisUrl) missingBackend("redis", "REDIS_URL");

  let dir = "";
  const schema = `t_${randomBytes(6).toString("hex")}`;
  const procs: Proc[] = [];
  let env: Record<string, string> = {};

  /** Runs a Procfile command the way foreman does: `sh -c`, with the environment and `imgup` on PATH. */
  function start(command: string): Proc {
    // Its own process group, signalled as a whole as foreman does: `sh` alone would leave imgup behind.
    const child = spawn("sh", ["-c", command], {
      cwd: dir,
      env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d;
    });
    child.stderr?.on("data", (d: Buffer) => {
      out += d;
    });
    const exit = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const proc = { child, out: () => out, exit };
    procs.push(proc);
    return proc;
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "imgup-procfile-"));
    // `imgup` on PATH, as after `npm install -g imgup`: here the checkout's bin.
    const shim = path.join(dir, "imgup");
    await writeFile(
      shim,
      `#!/bin/sh\nexec "${process.execPath}" "${path.join(ROOT, "bin/imgup.js")}" "$@"\n`,
    );
    await chmod(shim, 0o755);
    env = {
      PATH: `${dir}:${process.env.PATH ?? ""}`,
      PORT: String(await freePort()),
      HOST: "127.0.0.1",
      IMGUP_DATA_DIR: path.join(dir, "data"),
      DATABASE_URL: databaseUrl ?? "",
      DATABASE_SCHEMA: schema,
      REDIS_URL: redisUrl ?? "",
      REDIS_KEY_PREFIX: `procfile-${schema}:`,
      IMGUP_SIGNING_SECRET: randomBytes(32).toString("hex"),
      IMGUP_DEMO_PAGE: "false",
      LOG_LEVEL: "info",
    };
  });

  afterAll(async () => {
    for (const p of procs) {
      const group = -(p.child.pid ?? 0);
      const signal = (name: NodeJS.Signals) => {
        try {
          process.kill(group, name);
        } catch {
          // The group is gone already.
        }
      };
      signal("SIGTERM");
      if (p.child.exitCode === null && p.child.signalCode === null) {
        const timer = setTimeout(() => signal("SIGKILL"), 30_000);
        await p.exit;
        clearTimeout(timer);
      }
    }
    if (databaseUrl) {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      await client.query(`drop schema if exists "${schema}" cascade`);
      await client.end();
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("names release, api, worker and scheduler, each an `imgup` command", async () => {
    const types = parseProcfile(await readFile(PROCFILE, "utf8"));
    expect([...types.keys()].sort()).toEqual(["api", "release", "scheduler", "worker"]);
    expect(types.get("release")).toBe("imgup migrate");
    for (const role of ["api", "worker", "scheduler"])
      expect(types.get(role)).toBe(`imgup serve --role ${role}`);
  });

  it.skipIf(!databaseUrl || !redisUrl)(
    "runs: release migrates, then the three roles start on PostgreSQL and Redis and the API serves",
    async () => {
      const types = parseProcfile(await readFile(PROCFILE, "utf8"));
      const release = start(types.get("release") ?? "");
      expect(await release.exit, release.out()).toBe(0);

      const roles = ["api", "worker", "scheduler"].map((role) => ({
        role,
        proc: start(types.get(role) ?? ""),
      }));
      for (const { role, proc } of roles) {
        await eventually(async () => {
          if (proc.child.exitCode !== null)
            throw new Error(`${role} exited ${proc.child.exitCode}: ${proc.out()}`);
          return proc.out().includes(`"msg":"imgup (${role}) ready`);
        }, 240_000);
      }
      const health = await fetch(`http://127.0.0.1:${env.PORT}/healthz`);
      expect(health.status).toBe(200);
      for (const { proc } of roles) expect(proc.out().match(/\) ready/g)).toHaveLength(1);
    },
  );
});
