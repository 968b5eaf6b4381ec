#!/usr/bin/env node
// Runs imgup. From the package (or a checkout after `npm run build`, without its sources) that is
// the compiled JavaScript in dist/ with plain node. In a development checkout, where src/ sits next
// to this file and tsx is installed, it is the TypeScript sources through tsx: a dist/ left by an
// earlier build would otherwise run stale code after an edit. IMGUP_USE_DIST=1 forces dist/.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";

const here = (relative) => new URL(relative, import.meta.url);
const compiled = here("../dist/cli.js");
const sources = here("../src/cli.ts");

function tsxAvailable() {
  try {
    createRequire(import.meta.url).resolve("tsx/esm/api");
    return true;
  } catch {
    return false;
  }
}

const useSources =
  process.env.IMGUP_USE_DIST !== "1" && existsSync(sources) && (tsxAvailable() || !existsSync(compiled));

if (useSources) {
  const { register } = await import("tsx/esm/api");
  register();
  const { checkRuntime } = await import(here("../src/runtime-check.ts").href);
  checkRuntime();
  await import(sources.href);
} else if (existsSync(compiled)) {
  const { checkRuntime } = await import(here("../dist/runtime-check.js").href);
  checkRuntime();
  await import(compiled.href);
} else {
  process.stderr.write("imgup: dist/cli.js is missing; run `npm run build` first.\n");
  process.exit(1);
}
