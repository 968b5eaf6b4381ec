import { readFile } from "node:fs/promises";
import path from "node:path";
import { inject } from "vitest";
import type { Config } from "../../src/config.ts";

// What global-setup.ts built for this run, from the sources as they were when it started.

/**
 * The compiled CLI: `node <it> …` runs imgup as the installed package does, at a third of tsx's
 * start-up CPU (the suite starts hundreds of these).
 */
export function imgupCli(): string {
  return inject("imgupCli");
}

/** The compiled image child (for ImagePool's childModule). */
export function compiledImageChild(): string {
  return path.join(path.dirname(imgupCli()), "imaging/sandbox/child.js");
}

let seed: Promise<Blob> | undefined;

/** The migrated PGlite template, read once per test worker. */
export function pgliteSeed(): Promise<Blob> {
  seed ??= readFile(inject("pgliteSeed")).then((bytes) => new Blob([bytes]));
  return seed;
}

/**
 * An in-process instance's test settings: the compiled image child, and without DATABASE_URL a
 * throwaway in-memory database started from the migrated template.
 */
export async function useTestBuild(config: Config): Promise<void> {
  config.imaging.childModule = compiledImageChild();
  if (config.database.url) return;
  config.database.pgliteDir = "memory://";
  config.database.pgliteSeed = await pgliteSeed();
}
