/**
 * CPU time a server process (and its children, e.g. nginx workers) spent, from /proc. On a shared
 * machine, CPU per request is a steadier figure than requests per second: other tenants slow a
 * server down without making each request cost it more CPU.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface ProcStat {
  ppid: number;
  cpuTicks: number;
}

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The command name is in parentheses and may hold spaces: the fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // After the name: state, ppid, …; utime and stime are fields 14 and 15 of the whole line.
  return { ppid: Number(fields[1]), cpuTicks: Number(fields[11]) + Number(fields[12]) };
}

/** Milliseconds of user + system CPU of pid and its live direct children; null without /proc. */
export function processTreeCpuMs(pid: number): number | null {
  const own = readStat(pid);
  if (!own) return null;
  let ticks = own.cpuTicks;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const child = readStat(Number(entry));
    if (child?.ppid === pid) ticks += child.cpuTicks;
  }
  return (ticks * 1000) / clockTicks();
}
