import { readFileSync } from "node:fs";

/**
 * Resident set size of a process in bytes, from /proc (Linux): readable without the process's
 * cooperation, so it works while the child's thread is stuck inside a decoder. null elsewhere or
 * once the process is gone (the memory bound is then not enforced, the deadline still is).
 */
export function readRss(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "latin1");
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
