import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";

/** Another live process holds the embedded database; PGlite must have exactly one writer. */
export class EmbeddedDatabaseLockedError extends Error {
  override name = "EmbeddedDatabaseLockedError";
  constructor(
    readonly lockFile: string,
    readonly pid: number,
  ) {
    super(
      `the embedded database is in use by another imgup process (pid ${pid}; lock ${lockFile}). ` +
        "Stop that process first, or, for API keys, run `imgup keys …` while it runs: the command then goes through the running server.",
    );
  }
}

export interface EmbeddedLock {
  release(): void;
}

/**
 * One process per PGlite directory: two processes opening it corrupt each other's view (a key
 * created by one was never seen by the other and was lost on restart). An exclusive lock file with
 * the holder's pid; a lock whose process is gone (a crash, SIGKILL) is taken over.
 */
export function acquireEmbeddedLock(lockFile: string): EmbeddedLock {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(lockFile, "wx", 0o600);
      writeSync(fd, JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString() }));
      closeSync(fd);
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          if (holderOf(lockFile) === process.pid) unlinkSync(lockFile);
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = holderOf(lockFile);
      if (pid !== null && pid !== process.pid && isAlive(pid))
        throw new EmbeddedDatabaseLockedError(lockFile, pid);
      // Stale (or unreadable, or our own from a previous open in this process): take it over.
      try {
        unlinkSync(lockFile);
      } catch {}
    }
  }
  throw new Error(`could not take the embedded database lock ${lockFile}`);
}

/** The pid holding the lock, or null when there is no readable lock. */
export function holderOf(lockFile: string): number | null {
  try {
    const pid = (JSON.parse(readFileSync(lockFile, "utf8")) as { pid?: unknown }).pid;
    return typeof pid === "number" && Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else; still alive.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
