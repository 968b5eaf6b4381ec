import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { imgupCli } from "./cli-run.ts";
import { eventually, freePort } from "./harness.ts";

/** `imgup serve --role <role>` as a real child process, with its admin endpoint on a port of its own. */
export interface RoleProcess {
  role: string;
  /** http://127.0.0.1:<IMGUP_ADMIN_PORT> */
  adminUrl: string;
  /** The API port's URL (role api), else null. */
  baseUrl: string | null;
  dataDir: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<void>;
  stop: () => Promise<void>;
}

export async function startRole(
  role: "api" | "worker" | "scheduler",
  env: Record<string, string>,
): Promise<RoleProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(role, env);
    } catch (err) {
      // Another test file took a drawn port between the check and the child's listen.
      if (attempt >= 4 || !String(err).includes("EADDRINUSE")) throw err;
    }
  }
}

async function startOnce(
  role: "api" | "worker" | "scheduler",
  env: Record<string, string>,
): Promise<RoleProcess> {
  const dataDir = await mkdtemp(path.join(tmpdir(), `imgup-${role}-`));
  const adminPort = await freePort();
  const port = role === "api" ? await freePort() : null;
  const baseUrl = port ? `http://127.0.0.1:${port}` : null;
  const child = spawn(process.execPath, [imgupCli(), "serve", "--role", role], {
    cwd: path.resolve(import.meta.dirname, "../.."),
    env: {
      PATH: process.env.PATH ?? "",
      IMGUP_DATA_DIR: dataDir,
      HOST: "127.0.0.1",
      IMGUP_ADMIN_PORT: String(adminPort),
      IMGUP_DEMO_PAGE: "false",
      LOG_LEVEL: "info",
      ...(port ? { PORT: String(port), IMGUP_PUBLIC_URL: `http://127.0.0.1:${port}` } : {}),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const keep = (d: Buffer) => {
    out = (out + d).slice(-50_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  let gone = false;
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      gone = true;
      resolve();
    }),
  );
  const stop = async () => {
    if (!gone) {
      child.kill("SIGKILL");
      await exited;
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  try {
    await eventually(async () => {
      if (gone) throw new Error(`imgup serve --role ${role} exited`);
      return (await fetch(`${adminUrl}/healthz`).catch(() => null))?.ok;
    }, 120_000);
  } catch (err) {
    await stop();
    throw new Error(`imgup serve --role ${role} did not come up: ${err}\n${out}`);
  }
  return { role, adminUrl, baseUrl, dataDir, child, output: () => out, exited, stop };
}
