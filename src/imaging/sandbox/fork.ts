import { type ChildProcess, fork } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { ChildMessage } from "./protocol.ts";

// Compiled (dist/, the package) the child is plain JavaScript and tsx is not installed; from the
// sources (development, tests) it is TypeScript run through tsx.
const COMPILED = import.meta.url.endsWith(".js");
const CHILD = fileURLToPath(new URL(COMPILED ? "./child.js" : "./child.ts", import.meta.url));
let tsxLoader: string[] | undefined;

/** Node's arguments for a .ts child: the tsx loader, resolved once. */
function loaderArgs(childModule: string): string[] {
  if (!childModule.endsWith(".ts")) return [];
  tsxLoader ??= ["--import", pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href];
  return tsxLoader;
}

/**
 * Starts an image child; `ready` resolves on its first message, rejects if it exits or is late.
 * `childModule`: another build of child.js/.ts to run (the test suite runs its compiled one).
 */
export function forkChild(
  vipsConcurrency: number,
  startTimeoutMs: number,
  childModule: string = CHILD,
): { proc: ChildProcess; ready: Promise<void> } {
  const proc = fork(childModule, [], {
    execArgv: loaderArgs(childModule),
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    // Not the server's environment: a child that an exploit took over finds no secrets there.
    env: { ...childEnv(), IMGUP_VIPS_CONCURRENCY: String(vipsConcurrency) },
  });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error("the image child did not start in time")),
      startTimeoutMs,
    );
    const onMessage = (msg: ChildMessage) => {
      if ("ready" in msg) {
        clearTimeout(timer);
        proc.off("message", onMessage);
        resolve();
      }
    };
    proc.on("message", onMessage);
    proc.once("exit", () => {
      clearTimeout(timer);
      reject(new Error("the image child exited while starting"));
    });
  });
  return { proc, ready };
}

/** What a child needs of the environment: paths, locale, and libvips/sharp/Node tuning. */
function childEnv(): NodeJS.ProcessEnv {
  const keep =
    /^(PATH|HOME|TMPDIR|TMP|TEMP|LANG|LC_[A-Z]+|TZ|NODE_ENV|NODE_OPTIONS|VIPS_[A-Z_]+|SHARP_[A-Z_]+|TSX_[A-Z_]+)$/;
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => keep.test(k)));
}
