import { Counter, Histogram, type Registry } from "prom-client";

export const SCAN_OUTCOMES = ["clean", "infected", "error"] as const;
export type ScanOutcome = (typeof SCAN_OUTCOMES)[number];

export function createMalwareScanMetrics(registry: Registry) {
  const scans = new Counter({
    name: "imgup_malware_scan_total",
    help: "Malware scans of uploads by outcome: clean, infected, or error (no verdict: scanner down, timeout, refused)",
    labelNames: ["outcome"],
    registers: [registry],
  });
  // Every outcome exists from the start, so rate() and the alert see a 0 before the first error.
  for (const outcome of SCAN_OUTCOMES) scans.inc({ outcome }, 0);
  return {
    scans,
    duration: new Histogram({
      name: "imgup_malware_scan_duration_seconds",
      help: "Time of one malware scan (sending the bytes to clamd and its verdict) by outcome",
      labelNames: ["outcome"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
  };
}

export type MalwareScanMetrics = ReturnType<typeof createMalwareScanMetrics>;
