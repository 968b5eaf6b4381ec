import pino from "pino";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { MemoryJobQueue } from "../../test/support/memory-job-queue.ts";
import { loadConfig } from "../config.ts";
import type { ClaimedJob } from "../jobs/job-queue.ts";
import { CDN_PURGE, CdnPurgeService, createCdnPurgeMetrics, type PurgeFetch } from "./cdn-purge.ts";

const A = "0b1c2d3e-4f50-4617-8899-aabbccddeeff";
const B = "1b1c2d3e-4f50-4617-8899-aabbccddeeff";
const NOW = Date.UTC(2026, 0, 1);

function setup(env: Record<string, string>, fetcher?: PurgeFetch) {
  const jobs = new MemoryJobQueue();
  const registry = new Registry();
  const calls: Array<{ url: string; init: RequestInit }> = [];
  const service = new CdnPurgeService({
    settings: loadConfig(env).cdnPurge,
    publicUrl: "https://img.example.com",
    jobs,
    logger: pino({ level: "silent" }),
    metrics: createCdnPurgeMetrics(registry),
    now: () => NOW,
    fetch:
      fetcher ??
      (async (url, init) => {
        calls.push({ url, init });
        return { status: 200 };
      }),
  });
  const counts = async (name: string) =>
    Object.fromEntries(
      ((await registry.getSingleMetric(name)?.get())?.values ?? []).map((v) => [
        String(Object.values(v.labels)[0]),
        v.value,
      ]),
    );
  return { jobs, service, calls, counts };
}

const VARNISH = {
  IMGUP_CDN_PURGE: "varnish",
  IMGUP_CDN_PURGE_VARNISH_URLS: "http://v1:6081/,http://v2:6081/",
};

function claimed(payload: Record<string, unknown>, attempts = 1, maxAttempts = 3): ClaimedJob {
  return { id: "7", kind: CDN_PURGE, key: "k", payload, attempts, maxAttempts, leaseToken: "t" };
}

describe("CdnPurgeService", () => {
  it("queues nothing when off, and a worker with it off dead-letters a queued purge instead of dropping it", async () => {
    const { jobs, service, calls } = setup({});
    await service.enqueue([A], "deleted");
    expect(jobs.jobs.size).toBe(0);
    const run = service.jobHandlers()[CDN_PURGE]?.(claimed({ imageIds: [A] }), new AbortController().signal);
    await expect(run).rejects.toMatchObject({
      permanent: true,
      message: expect.stringMatching(/IMGUP_CDN_PURGE is off/),
    });
    expect(calls).toEqual([]);
  });

  it("queues a purge now and a repeat later, keyed by image (a repeated delete re-queues it)", async () => {
    const { jobs, service, counts } = setup({ ...VARNISH, IMGUP_CDN_PURGE_MAX_ATTEMPTS: "9" });
    await service.enqueue([A], "private");
    const now = jobs.jobs.get(`cdn-purge:${A}`);
    expect(now).toMatchObject({
      kind: CDN_PURGE,
      payload: { imageIds: [A], reason: "private" },
      maxAttempts: 9,
    });
    expect(now?.runAt).toBeUndefined();
    expect(jobs.jobs.get(`cdn-purge:${A}:repeat`)?.runAt).toEqual(new Date(NOW + 30_000));
    await service.enqueue([A, B], "owner_purge");
    expect(jobs.jobs.get(`cdn-purge:owner_purge:${A}+2`)?.payload).toEqual({
      imageIds: [A, B],
      reason: "owner_purge",
    });
    expect(await counts("imgup_cdn_purge_images_queued_total")).toEqual({ private: 1, owner_purge: 2 });
  });

  it("queues no repeat with IMGUP_CDN_PURGE_REPEAT_MS=0", async () => {
    const { jobs, service } = setup({ ...VARNISH, IMGUP_CDN_PURGE_REPEAT_MS: "0" });
    await service.enqueue([A], "deleted");
    expect([...jobs.jobs.keys()]).toEqual([`cdn-purge:${A}`]);
  });

  it("the job bans every Varnish and counts the outcome", async () => {
    const { service, calls, counts } = setup(VARNISH);
    await service.jobHandlers()[CDN_PURGE]?.(claimed({ imageIds: [A, B] }), new AbortController().signal);
    expect(calls.map((c) => [c.url, c.init.method, c.init.headers])).toEqual([
      ["http://v1:6081/", "BAN", { "X-Purge-Keys": `img-${A} img-${B}` }],
      ["http://v2:6081/", "BAN", { "X-Purge-Keys": `img-${A} img-${B}` }],
    ]);
    expect(await counts("imgup_cdn_purge_jobs_total")).toEqual({ purged: 1 });
    expect(await counts("imgup_cdn_purge_requests_total")).toEqual({ ok: 2 });
  });

  it("fails the job (to be retried) when any call fails, with an error that carries no token", async () => {
    const env = {
      IMGUP_CDN_PURGE: "http",
      IMGUP_CDN_PURGE_URL: "https://api.example/purge?token=SECRET",
      IMGUP_CDN_PURGE_HEADERS: '{"Authorization":"Bearer SECRET"}',
    };
    let n = 0;
    const { service, counts } = setup(env, async () => {
      n++;
      if (n === 1) throw new Error("connect ECONNREFUSED");
      return { status: 503 };
    });
    const handler = service.jobHandlers()[CDN_PURGE];
    const run = handler?.(claimed({ imageIds: [A, B] }), new AbortController().signal);
    await expect(run).rejects.toThrow(/ECONNREFUSED.*HTTP 503/);
    await expect(run).rejects.not.toThrow(/SECRET/);
    expect(await counts("imgup_cdn_purge_jobs_total")).toEqual({ retrying: 1 });
    expect(await counts("imgup_cdn_purge_requests_total")).toEqual({ unreachable: 1, error: 1 });
    // The last attempt's failure is counted as given up (the queue dead-letters it).
    await expect(handler?.(claimed({ imageIds: [A] }, 3, 3), new AbortController().signal)).rejects.toThrow();
    expect(await counts("imgup_cdn_purge_jobs_total")).toEqual({ retrying: 1, gave_up: 1 });
  });
});
