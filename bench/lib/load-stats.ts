/**
 * Figures of one load target gathered over several slices (alternating with another target), so
 * that whatever else the shared machine did fell on both alike.
 */
import { percentile } from "../report.ts";

/** What one slice of load against one target produced. */
export interface SliceResult {
  /** Latency of every 2xx response, ms. */
  latencies: number[];
  statuses: Map<number, number>;
  /** Connection errors and timeouts. */
  errors: number;
  bytes: number;
  seconds: number;
  /** CPU the server process (tree) used during the slice, ms; null without /proc. */
  serverCpuMs: number | null;
  /** CPU this (generator) process used during the slice, ms. */
  generatorCpuMs: number;
}

export interface Summary {
  responses: number;
  perSecond: number;
  p50: number;
  p90: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** Mean response size of 2xx responses, bytes. */
  meanBytes: number;
  /** Server CPU per response, ms. */
  cpuPerRequestMs: number | null;
  /** Share of one core the generator used: near 100 % means it, not the server, set the pace. */
  generatorCorePercent: number;
}

export class LoadStats {
  private readonly latencies: number[] = [];
  private readonly statuses = new Map<number, number>();
  private errors = 0;
  private bytes = 0;
  private seconds = 0;
  private serverCpuMs: number | null = 0;
  private generatorCpuMs = 0;

  add(slice: SliceResult): void {
    for (const l of slice.latencies) this.latencies.push(l);
    for (const [status, n] of slice.statuses) this.statuses.set(status, (this.statuses.get(status) ?? 0) + n);
    this.errors += slice.errors;
    this.bytes += slice.bytes;
    this.seconds += slice.seconds;
    this.serverCpuMs =
      this.serverCpuMs === null || slice.serverCpuMs === null ? null : this.serverCpuMs + slice.serverCpuMs;
    this.generatorCpuMs += slice.generatorCpuMs;
  }

  summary(): Summary {
    let responses = 0;
    let ok = 0;
    for (const [status, n] of this.statuses) {
      responses += n;
      if (status >= 200 && status < 300) ok += n;
    }
    return {
      responses,
      perSecond: responses / this.seconds,
      p50: percentile(this.latencies, 50),
      p90: percentile(this.latencies, 90),
      p99: percentile(this.latencies, 99),
      non2xx: responses - ok,
      errors: this.errors,
      meanBytes: ok ? this.bytes / ok : 0,
      cpuPerRequestMs: this.serverCpuMs === null || responses === 0 ? null : this.serverCpuMs / responses,
      generatorCorePercent: (100 * this.generatorCpuMs) / (this.seconds * 1000),
    };
  }

  /** e.g. `{"201": 4000}`, for the record when something was not 2xx. */
  statusText(): string {
    return [...this.statuses].map(([s, n]) => `${s}×${n}`).join(" ");
  }
}

export const ms = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1));
export const cpu = (v: number | null) => (v === null ? "n/a" : v.toFixed(3));
