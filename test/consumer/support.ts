/**
 * Throwaway consumer projects for @imgup/client: the package is built with its tsdown config,
 * packed as `npm publish` would pack it and installed from that tarball, so the tests see what a
 * user gets, not the sources next door.
 */
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

export const ROOT = path.resolve(import.meta.dirname, "../..");
const run = promisify(execFile);

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command; a failure throws with its output, so the test report shows what went wrong. */
export async function exec(
  cmd: string,
  args: string[],
  opts: { cwd: string; env?: Record<string, string> },
): Promise<RunResult> {
  try {
    const { stdout, stderr } = await run(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", ...opts.env },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { stdout, stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${cmd} ${args.join(" ")} failed in ${opts.cwd}:\n${e.stdout ?? ""}\n${e.stderr ?? e.message}`,
    );
  }
}

export const bin = (name: string) => path.join(ROOT, "node_modules/.bin", name);

/** A fresh directory for one test file, removed by the returned cleanup. */
export async function workDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), `imgup-consumer-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Builds client/ with its tsdown config into a staging copy of the package and packs that: test
 * files running side by side never clean each other's build, and client/dist is left alone.
 * Returns the tarball's path.
 */
export async function packClient(dir: string): Promise<string> {
  const stage = path.join(dir, "package");
  const out = path.join(dir, "pack");
  await mkdir(out, { recursive: true });
  await mkdir(stage, { recursive: true });
  const client = path.join(ROOT, "client");
  await copyFile(path.join(client, "package.json"), path.join(stage, "package.json"));
  await exec(bin("tsdown"), ["--out-dir", path.join(stage, "dist"), "--logLevel", "warn"], { cwd: client });
  // prepack would build again, from sources the staging copy does not have.
  await exec("npm", ["pack", "--silent", "--ignore-scripts", "--pack-destination", out], { cwd: stage });
  const [tarball] = (await readdir(out)).filter((f) => f.endsWith(".tgz"));
  if (!tarball) throw new Error("npm pack made no tarball");
  return path.join(out, tarball);
}

/**
 * A project that installed the tarball with npm (it has no dependencies: nothing is fetched).
 * `links` are repository packages made visible to it (typescript's @types/node, vite, Uppy) by
 * symlink, instead of downloading them again.
 */
export async function consumerProject(
  dir: string,
  tarball: string,
  opts: { packageJson?: Record<string, unknown>; links?: string[] } = {},
): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, "package.json"),
    JSON.stringify({ name: "consumer", private: true, version: "0.0.0", ...opts.packageJson }, null, 2),
  );
  await exec("npm", ["install", "--no-audit", "--no-fund", "--offline", "--no-package-lock", tarball], {
    cwd: dir,
  });
  for (const name of opts.links ?? []) {
    const target = path.join(dir, "node_modules", name);
    await mkdir(path.dirname(target), { recursive: true });
    await symlink(path.join(ROOT, "node_modules", name), target, "dir");
  }
  return dir;
}
