import { execFile } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertDeployable, loadConfig, type Role } from "../../src/config.ts";

const run = promisify(execFile);
const SYSTEMD = path.resolve(import.meta.dirname, "../../deploy/systemd");
const ROLES = ["api", "worker", "scheduler"] as const;

/** KEY=value lines of an EnvironmentFile (no quotes or expansion in this one). */
function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m?.[1]) env[m[1]] = m[2] ?? "";
  }
  return env;
}

describe("deploy/systemd units", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "imgup-systemd-"));
    // systemd-analyze verify wants ExecStart's binary to exist: a stand-in at a path of our own.
    const bin = path.join(dir, "imgup");
    await writeFile(bin, "#!/bin/sh\nexit 0\n");
    await chmod(bin, 0o755);
    const template = (await readFile(path.join(SYSTEMD, "imgup@.service"), "utf8")).replaceAll(
      "/usr/bin/imgup",
      bin,
    );
    for (const role of ROLES) await writeFile(path.join(dir, `imgup@${role}.service`), template);
    const migrate = await readFile(path.join(SYSTEMD, "imgup-migrate.service"), "utf8");
    await writeFile(path.join(dir, "imgup-migrate.service"), migrate.replaceAll("/usr/bin/imgup", bin));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("pass systemd-analyze verify with no warning (an unknown key is only a warning)", async () => {
    const units = [...ROLES.map((r) => `imgup@${r}.service`), "imgup-migrate.service"];
    const { stdout, stderr } = await run(
      "systemd-analyze",
      ["verify", ...units.map((u) => path.join(dir, u))],
      {
        cwd: dir,
      },
    );
    expect(`${stdout}${stderr}`.trim()).toBe("");
  });

  it("run each role from the EnvironmentFile, hardened, restarted on failure", async () => {
    const unit = await readFile(path.join(SYSTEMD, "imgup@.service"), "utf8");
    for (const line of [
      "EnvironmentFile=/etc/imgup/imgup.env",
      "ExecStart=/usr/bin/imgup serve --role %i",
      "Restart=on-failure",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "ReadWritePaths=/var/lib/imgup",
    ]) {
      expect(unit.split("\n")).toContain(line);
    }
    const migrate = await readFile(path.join(SYSTEMD, "imgup-migrate.service"), "utf8");
    expect(migrate.split("\n")).toContain("ExecStart=/usr/bin/imgup migrate");
  });

  it("ship an example EnvironmentFile that every role accepts, naming only documented variables", async () => {
    const env = parseEnvFile(await readFile(path.join(SYSTEMD, "imgup.env.example"), "utf8"));
    const documented = await readFile(
      path.resolve(import.meta.dirname, "../../docs/configuration.md"),
      "utf8",
    );
    for (const name of Object.keys(env)) expect(documented, name).toContain(`\`${name}\``);
    for (const role of ROLES) {
      const config = loadConfig(env, { role: role as Role });
      expect(() => assertDeployable(config, env)).not.toThrow();
      expect(config.publicUrl.startsWith("https://")).toBe(true);
      expect(config.http.trustProxy).toEqual(["127.0.0.1"]);
    }
  });
});
