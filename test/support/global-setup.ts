import { execFile } from "node:child_process";
import { copyFile, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { PGlite } from "@electric-sql/pglite";
import { Kysely, PGliteDialect } from "kysely";
import type { TestProject } from "vitest/node";
import { migrateToLatest } from "../../src/db/connect.ts";
import type { Database } from "../../src/db/schema.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** `dist/cli.js` compiled for this run (see cli-run.ts `imgupCommand`). */
    imgupCli: string;
    /** A migrated, empty PGlite database dumped to a file (see test-build.ts). */
    pgliteSeed: string;
  }
}

const ROOT = path.resolve(import.meta.dirname, "../..");
// One level below a folder whose package.json is the project's: the compiled code finds
// ../package.json and node_modules where it would in dist/, and `npm run build` (or a test that
// packs the package) never rewrites what a running test spawns.
const OUT = path.join(ROOT, "node_modules/.cache/imgup-test-build");

/**
 * Once per test run, before any test file: the server compiled to JavaScript (child processes run
 * it with plain node: a third of tsx's start-up CPU) and a migrated PGlite template (loading one
 * is a third of an initdb). Both come from the sources as they are now.
 */
export default async function setup(project: TestProject): Promise<void> {
  await rm(OUT, { recursive: true, force: true });
  await mkdir(OUT, { recursive: true });
  await symlink(path.join(ROOT, "package.json"), path.join(OUT, "package.json"));
  const [cli, seed] = await Promise.all([compileServer(), migratedPgliteDump()]);
  project.provide("imgupCli", cli);
  project.provide("pgliteSeed", seed);
}

async function compileServer(): Promise<string> {
  const dist = path.join(OUT, "dist");
  // Emit only: `npm run typecheck` checks types, and the build proper (`npm run build`) checks too.
  const tsc = path.join(ROOT, "node_modules/typescript/bin/tsc");
  await promisify(execFile)(
    process.execPath,
    [tsc, "-p", "tsconfig.build.json", "--outDir", dist, "--noCheck"],
    {
      cwd: ROOT,
    },
  );
  await copyFile(path.join(ROOT, "src/imaging/heic-worker.mjs"), path.join(dist, "imaging/heic-worker.mjs"));
  return path.join(dist, "cli.js");
}

async function migratedPgliteDump(): Promise<string> {
  const file = path.join(OUT, "pglite-migrated.tar");
  const pglite = await PGlite.create("memory://");
  const db = new Kysely<Database>({ dialect: new PGliteDialect({ pglite }) });
  try {
    await migrateToLatest(db);
    const dump = await pglite.dumpDataDir("none");
    await writeFile(file, Buffer.from(await dump.arrayBuffer()));
  } finally {
    await db.destroy();
  }
  return file;
}
