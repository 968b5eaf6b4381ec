/**
 * What a benchmark started (servers, schemas, Redis keys, temp dirs) is undone even when it is
 * interrupted: SIGINT (Ctrl-C) or SIGTERM (bench/run.ts's timeout) runs every registered undo,
 * newest first, then exits.
 */
const undos = new Set<() => Promise<void>>();
let installed = false;

/** Registers an undo; returns a function to call once it has run (or is no longer needed). */
export function onInterrupt(undo: () => Promise<void>): () => void {
  install();
  undos.add(undo);
  return () => undos.delete(undo);
}

function install(): void {
  if (installed) return;
  installed = true;
  const handle = async (signal: NodeJS.Signals) => {
    console.error(`\n${signal}: cleaning up…`);
    for (const undo of [...undos].reverse()) {
      await undo().catch((err) => console.error("cleanup failed:", err));
    }
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.once("SIGINT", handle);
  process.once("SIGTERM", handle);
}
