import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] ?? Number.NaN;
}

/** The machine, and how busy it was: on a shared machine the load average says how far to trust absolute figures. */
export function machineInfo(): string {
  const cpu = os.cpus()[0]?.model ?? "unknown cpu";
  const load = os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(" / ");
  return `${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} x ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${os.platform()} ${os.release()}, load average ${load} (1/5/15 min)`;
}

/**
 * Replaces this benchmark's section of bench/RESULTS.md (between its markers) with fresh figures;
 * `machine` is machineInfo() as it was when the benchmark started.
 */
export async function recordResults(name: string, table: string, machine = machineInfo()): Promise<void> {
  const file = path.join(import.meta.dirname, "RESULTS.md");
  let text = "";
  try {
    text = await readFile(file, "utf8");
  } catch {
    text =
      "# Benchmark results\n\nWritten by the benchmarks with --write; the machine line says where they ran.\n";
  }
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const section = `${start}\n## ${name}\n\nMachine: ${machine}\n\n${table}\n${end}`;
  const re = new RegExp(`${start}[\\s\\S]*?${end}`);
  text = re.test(text) ? text.replace(re, section) : `${text.trimEnd()}\n\n${section}\n`;
  await writeFile(file, text);
}
