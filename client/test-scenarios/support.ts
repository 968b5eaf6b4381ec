/**
 * What the SDK scenarios need from where they run (Node under vitest, or a page in Chromium), and
 * small assertion helpers: the scenarios run in both, so they use no test framework.
 */
import { createClient } from "../client.ts";
import type { ImgupClient, ImgupClientOptions, UploadProgress } from "../types.ts";

export type FixtureKind = "jpeg" | "png" | "large" | "notAnImage";

/** Each fixture call returns fresh bytes (no two scenarios dedup against each other). */
export const FIXTURES: Record<FixtureKind, { type: string; width: number; height: number }> = {
  jpeg: { type: "image/jpeg", width: 64, height: 48 },
  png: { type: "image/png", width: 50, height: 40 },
  /** A PNG of noise over 15 MiB: four parts of 5 MiB (the server runs with 5 MiB parts). */
  large: { type: "image/png", width: 2000, height: 2000 },
  notAnImage: { type: "image/png", width: 0, height: 0 },
};

export const PART_SIZE = 5 * 1024 * 1024;

export interface ScenarioContext {
  /** imgup's base URL as the client is given it ("" on a same-origin page). */
  baseUrl: string;
  /** API keys of two owners. */
  token: string;
  otherToken: string;
  file(kind: FixtureKind): Promise<Blob>;
  /** Decoded dimensions of image bytes. */
  probe(blob: Blob): Promise<{ width: number; height: number }>;
  /** Resolve a URL the API gave out (absolute already; relative ones against the page). */
  fetch: typeof fetch;
}

export interface Recorded {
  method: string;
  url: string;
  idempotencyKey: string | null;
  status: number | null;
  /** The storage's part number, for part uploads. */
  partNumber: number | null;
  api: boolean;
}

/** A hook may fail a request (throw, as a broken network would) or answer it itself. */
export type Hook = (
  req: Recorded,
  init: RequestInit | undefined,
  attempt: number,
) => Promise<Response | undefined>;

/** A fetch that records every request the SDK makes and lets a scenario break some of them. */
export class Recorder {
  readonly requests: Recorded[] = [];
  private readonly attempts = new Map<string, number>();

  private readonly ctx: ScenarioContext;
  private readonly hook: Hook | undefined;

  constructor(ctx: ScenarioContext, hook?: Hook) {
    this.ctx = ctx;
    this.hook = hook;
  }

  readonly fetch: typeof fetch = async (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const method = (init?.method ?? "GET").toUpperCase();
    const headers = new Headers(init?.headers);
    const partNumber = /[?&]partNumber=(\d+)/.exec(url)?.[1];
    const rec: Recorded = {
      method,
      url,
      idempotencyKey: headers.get("idempotency-key"),
      status: null,
      partNumber: partNumber ? Number(partNumber) : null,
      api: url.startsWith(`${this.ctx.baseUrl}/v1/`),
    };
    this.requests.push(rec);
    const id = `${method} ${url.split("?")[0]} ${rec.partNumber ?? ""}`;
    const attempt = this.attempts.get(id) ?? 0;
    this.attempts.set(id, attempt + 1);
    const answer = (await this.hook?.(rec, init, attempt)) ?? (await this.ctx.fetch(input, init));
    rec.status = answer.status;
    return answer;
  };

  client(opts: Partial<ImgupClientOptions> = {}): ImgupClient {
    return createClient({ baseUrl: this.ctx.baseUrl, token: this.ctx.token, fetch: this.fetch, ...opts });
  }

  storageRequests(): Recorded[] {
    return this.requests.filter((r) => !r.api);
  }

  parts(): Recorded[] {
    return this.requests.filter((r) => r.partNumber !== null);
  }
}

/** Options every scenario client shares: quick polling keeps the suite fast. */
export const FAST = { pollIntervalMs: 50, multipartThresholdBytes: PART_SIZE, readyTimeoutMs: 60_000 };

export function plainClient(ctx: ScenarioContext, opts: Partial<ImgupClientOptions> = {}): ImgupClient {
  return createClient({ baseUrl: ctx.baseUrl, token: ctx.token, ...FAST, ...opts });
}

export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`check failed: ${message}`);
}

export function equal<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`check failed: ${what}: expected ${e}, got ${a}`);
}

/** Runs fn, which must reject; returns what it rejected with. */
export async function rejection(fn: () => Promise<unknown>, what: string): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error(`check failed: ${what} should have failed`);
}

/** Checks a progress log: phases in order, loaded never past total, upload ending at total. */
export function checkProgress(log: UploadProgress[], total: number): void {
  const order = ["hashing", "uploading", "processing"];
  let phase = 0;
  let lastLoaded = 0;
  for (const p of log) {
    const index = order.indexOf(p.phase);
    check(index >= phase, `phase ${p.phase} came after ${order[phase]}`);
    if (index > phase) lastLoaded = 0;
    phase = index;
    check(p.total === total, `progress total ${p.total} is the file size ${total}`);
    check(p.loaded >= 0 && p.loaded <= total, `progress ${p.loaded} within 0..${total}`);
    lastLoaded = p.loaded;
  }
  const uploaded = log.filter((p) => p.phase === "uploading").at(-1);
  check(uploaded?.loaded === total, `upload progress reached ${total} (last: ${uploaded?.loaded})`);
  check(log.at(-1)?.phase === "processing", "the last phase is processing");
  check(lastLoaded === total, "processing reports the whole file");
}
