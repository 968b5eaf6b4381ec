/**
 * Load generators, run in this process while the servers run in their own.
 *
 * Unbounded load is autocannon: N keep-alive connections, each sending its next request when the
 * last one answered (a closed loop), which finds the server's throughput.
 *
 * Fixed rates are an open loop of our own (wrk2's model): request i is due at start + i/rate and
 * its latency counts from when it was due, so a server that falls behind shows the queueing it
 * caused. autocannon's `overallRate` does not do this: each connection sends its per-second quota
 * back to back at the start of every second, and its coordinated-omission correction records with
 * a 1 ms interval, filling the histogram with made-up samples.
 */
import http from "node:http";
import autocannon from "autocannon";
import type { SliceResult } from "./load-stats.ts";

export interface LoadRequest {
  method: "GET" | "POST";
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface Target {
  baseUrl: string;
  /** Server CPU so far (ms), to charge each slice with. */
  cpuMs: () => number | null;
}

const TIMEOUT_S = 10;

/** Closed-loop load for `seconds` over `connections` connections; `next` makes every request. */
export async function saturate(
  target: Target,
  opts: { connections: number; seconds: number; next: () => LoadRequest },
): Promise<SliceResult> {
  const result = emptySlice();
  const measure = startMeasuring(target);
  const instance = autocannon({
    url: target.baseUrl,
    connections: opts.connections,
    duration: opts.seconds,
    timeout: TIMEOUT_S,
    requests: [{ setupRequest: (req) => ({ ...req, ...opts.next() }) }],
  });
  instance.on("response", (_client: unknown, status: number, bytes: number, latencyMs: number) => {
    record(result, status, latencyMs, bytes);
  });
  const done = await instance;
  result.errors = done.errors;
  return measure(result, done.duration);
}

/** Open-loop requests at `rate` per second, over a pool of keep-alive connections kept between slices. */
export class PacedClient {
  private readonly agent: http.Agent;
  private readonly url: URL;

  constructor(
    private readonly target: Target,
    maxConnections: number,
  ) {
    this.url = new URL(target.baseUrl);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: maxConnections });
  }

  async run(rate: number, seconds: number, next: () => LoadRequest): Promise<SliceResult> {
    const result = emptySlice();
    const measure = startMeasuring(this.target);
    const interval = 1000 / rate;
    const start = performance.now();
    const end = start + seconds * 1000;
    const pending = new Set<Promise<void>>();
    let sent = 0;
    for (;;) {
      const now = performance.now();
      if (now >= end) break;
      for (; start + sent * interval <= now; sent++) {
        const p = this.send(next(), start + sent * interval, result);
        pending.add(p);
        void p.finally(() => pending.delete(p));
      }
      await new Promise((r) => setTimeout(r, Math.max(0, start + sent * interval - performance.now())));
    }
    await Promise.all(pending);
    return measure(result, (performance.now() - start) / 1000);
  }

  close(): void {
    this.agent.destroy();
  }

  private send(req: LoadRequest, dueAt: number, into: SliceResult): Promise<void> {
    return new Promise((resolve) => {
      const body = req.body ?? "";
      const headers = {
        ...req.headers,
        ...(body ? { "content-length": String(Buffer.byteLength(body)) } : {}),
      };
      const r = http.request(
        {
          agent: this.agent,
          hostname: this.url.hostname,
          port: this.url.port,
          method: req.method,
          path: req.path,
          headers,
          timeout: TIMEOUT_S * 1000,
        },
        (res) => {
          let bytes = 0;
          res.on("data", (chunk: Buffer) => {
            bytes += chunk.length;
          });
          res.on("end", () => {
            record(into, res.statusCode ?? 0, performance.now() - dueAt, bytes);
            resolve();
          });
          res.on("error", () => {
            into.errors++;
            resolve();
          });
        },
      );
      r.on("timeout", () => r.destroy(new Error("timeout")));
      r.on("error", () => {
        into.errors++;
        resolve();
      });
      r.end(body);
    });
  }
}

function emptySlice(): SliceResult {
  return {
    latencies: [],
    statuses: new Map(),
    errors: 0,
    bytes: 0,
    seconds: 0,
    serverCpuMs: null,
    generatorCpuMs: 0,
  };
}

function record(into: SliceResult, status: number, latencyMs: number, bytes: number): void {
  into.statuses.set(status, (into.statuses.get(status) ?? 0) + 1);
  if (status >= 200 && status < 300) {
    into.latencies.push(latencyMs);
    into.bytes += bytes;
  }
}

/** Charges the slice with the CPU the server and this generator used while it ran. */
function startMeasuring(target: Target) {
  const server0 = target.cpuMs();
  const gen0 = process.cpuUsage();
  return (result: SliceResult, seconds: number): SliceResult => {
    const server1 = target.cpuMs();
    const gen = process.cpuUsage(gen0);
    result.seconds = seconds;
    result.serverCpuMs = server0 === null || server1 === null ? null : server1 - server0;
    result.generatorCpuMs = (gen.user + gen.system) / 1000;
    return result;
  };
}
