import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api, type ImageJson } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, eventually, freePort, type Running, startImgup } from "../support/harness.ts";
import { startVarnish, type Varnish, varnishdOrSkip } from "../support/varnish.ts";

/**
 * Debian's varnishd in front of a real imgup, with deploy/varnish/imgup.vcl as shipped (only the
 * backend's port substituted), and imgup's cdn-purge job pointed at it (IMGUP_CDN_PURGE=varnish).
 */

const varnishd = varnishdOrSkip();
const db = dbTargets()[0];
if (!db) throw new Error("no database target");

describe.skipIf(!varnishd)("Varnish in front of imgup (deploy/varnish/imgup.vcl)", () => {
  let run: Running;
  let varnish: Varnish;
  let alice: Api;
  let admin: Api;
  let jpeg: Buffer;

  beforeAll(async () => {
    const varnishPort = await freePort();
    run = await startImgup(db.make(), {
      IMGUP_CDN_PURGE: "varnish",
      IMGUP_CDN_PURGE_VARNISH_URLS: `http://127.0.0.1:${varnishPort}/`,
      // The repeat purge is for fills in flight at the first one; these tests wait on the first.
      IMGUP_CDN_PURGE_REPEAT_MS: "0",
    });
    varnish = await startVarnish(varnishd ?? "", varnishPort, [Number(new URL(run.baseUrl).port)]);
    alice = new Api(run.baseUrl, run.alice);
    admin = new Api(run.baseUrl, (await run.imgup.auth.createKey({ ownerId: "ops", scopes: ["admin"] })).key);
    jpeg = await makeImage("jpeg", 100, 80);
  });
  afterAll(async () => {
    await varnish?.stop();
    await run?.stop();
  });

  const viaVarnish = (url: string) => url.replace(run.baseUrl, varnish.url);

  async function upload(api: Api, visibility: "public" | "private" = "public"): Promise<ImageJson> {
    const { intent } = await api.uploadBytes(jpeg, {
      filename: "a.jpg",
      contentType: "image/jpeg",
      visibility,
    });
    const image = await api.settled(intent.image.id);
    expect(image.status).toBe("ready");
    return image;
  }

  async function get(url: string, headers: Record<string, string> = {}) {
    const res = await fetch(url, { headers });
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, headers: res.headers, body };
  }

  /** Delivery requests imgup has answered (its own latency histogram, every /i/ route). */
  async function originDeliveries(): Promise<number> {
    const metric = run.imgup.metrics.registry.getSingleMetric("imgup_http_request_duration_seconds");
    const data = await metric?.get();
    return (data?.values ?? [])
      .map((v) => v as typeof v & { metricName?: string })
      .filter((v) => v.metricName?.endsWith("_count") && String(v.labels.route ?? "").startsWith("/i/"))
      .reduce((sum, v) => sum + v.value, 0);
  }

  /**
   * How many delivery requests reached imgup while `fn` ran. The histogram is written when a
   * response finishes, a moment after the client has it: a direct request of ours afterwards is
   * awaited in the count, and the earlier ones finished before it.
   */
  async function reachingOrigin(fn: () => Promise<void>): Promise<number> {
    const before = await originDeliveries();
    await fn();
    const probe = await fetch(`${run.baseUrl}/i/00000000-0000-4000-8000-000000000000/thumb`);
    await probe.arrayBuffer();
    const after = await eventually(async () => {
      const n = await originDeliveries();
      return n >= before + 1 ? n : undefined;
    });
    return after - before - 1;
  }

  async function purgeMetric(outcome: string): Promise<number> {
    const metric = run.imgup.metrics.registry.getSingleMetric("imgup_cdn_purge_jobs_total");
    const data = await metric?.get();
    return (data?.values ?? []).filter((v) => v.labels.outcome === outcome).reduce((s, v) => s + v.value, 0);
  }

  async function purgeJobDone(imageId: string) {
    await eventually(async () => (await run.imgup.jobs.get(`cdn-purge:${imageId}`))?.status === "done");
  }

  /** A cached copy through Varnish: a miss, then a hit. */
  async function warm(url: string) {
    await get(url);
    const hit = await get(url);
    expect(hit.headers.get("x-cache")).toBe("HIT");
    expect(hit.status).toBe(200);
  }

  it("serves a public preset from the cache on the second request, without reaching imgup", async () => {
    const image = await upload(alice);
    const thumb = viaVarnish(image.urls?.presets.thumb ?? "");
    let first: Awaited<ReturnType<typeof get>> | undefined;
    const misses = await reachingOrigin(async () => {
      first = await get(thumb);
    });
    expect(first?.status).toBe(200);
    expect(first?.headers.get("x-cache")).toBe("MISS");
    expect(misses).toBe(1);

    let second: Awaited<ReturnType<typeof get>> | undefined;
    const hits = await reachingOrigin(async () => {
      second = await get(thumb);
    });
    expect(hits).toBe(0);
    expect(second?.headers.get("x-cache")).toBe("HIT");
    expect(Number(second?.headers.get("age"))).toBeGreaterThanOrEqual(0);
    expect(second?.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(second?.body.equals(first?.body ?? Buffer.alloc(0))).toBe(true);
    // The ban key is on the stored object, not on what clients see; imgup itself sends it.
    expect(second?.headers.get("surrogate-key")).toBeNull();
    const direct = await get(image.urls?.presets.thumb ?? "");
    expect(direct.headers.get("surrogate-key")).toBe(`img-${image.id}`);
  });

  it("puts f_auto answers in three Accept buckets that equivalent Accepts share", async () => {
    const image = await upload(alice);
    const small = viaVarnish(`${run.baseUrl}/i/${image.id}/small`);
    const buckets = [
      // [first Accept (a miss), an equivalent one (a hit), the format served]
      [
        "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
        "image/avif;q=0.9, image/webp",
        "avif",
      ],
      ["image/webp,*/*", "image/AVIF;q=0, image/webp;q=0.5", "webp"],
      ["image/png,image/*;q=0.8,*/*;q=0.5", "", "jpeg"],
    ] as const;
    const fetched = await reachingOrigin(async () => {
      for (const [accept, equivalent, format] of buckets) {
        const miss = await get(small, { accept });
        expect(miss.status).toBe(200);
        expect(miss.headers.get("content-type")).toBe(`image/${format}`);
        expect(miss.headers.get("x-cache"), `${format}: first`).toBe("MISS");
        expect(miss.headers.get("vary")?.toLowerCase()).toContain("accept");
        const hit = await get(small, equivalent ? { accept: equivalent } : {});
        expect(hit.headers.get("content-type")).toBe(`image/${format}`);
        expect(hit.headers.get("x-cache"), `${format}: equivalent Accept ${equivalent}`).toBe("HIT");
        expect(hit.body.equals(miss.body)).toBe(true);
      }
    });
    expect(fetched).toBe(3);
  });

  it("never caches a private image's signed answer", async () => {
    const image = await upload(alice, "private");
    const signed = image.urls?.presets.thumb ?? "";
    expect(signed).toContain("sig=");
    const answers: Array<Awaited<ReturnType<typeof get>>> = [];
    const fetched = await reachingOrigin(async () => {
      answers.push(await get(viaVarnish(signed)), await get(viaVarnish(signed)));
    });
    expect(fetched).toBe(2);
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.headers.get("x-cache")).toBe("PASS");
      expect(a.headers.get("cache-control")).toMatch(/^private/);
    }
    // Without the signature: 404, whatever the cache holds.
    const unsigned = await get(viaVarnish(signed.split("?")[0] ?? ""));
    expect(unsigned.status).toBe(404);
  });

  it("answers 404 through the cache once the purge after DELETE ran", async () => {
    const image = await upload(alice);
    const thumb = viaVarnish(image.urls?.presets.thumb ?? "");
    const original = viaVarnish(image.urls?.original ?? "");
    await warm(thumb);
    await warm(original);
    expect((await alice.request("DELETE", `/v1/images/${image.id}`)).status).toBe(204);
    await purgeJobDone(image.id);
    expect((await get(thumb)).status).toBe(404);
    expect((await get(original)).status).toBe(404);
  });

  it("answers 404 through the cache once the purge after PATCH to private ran", async () => {
    const image = await upload(alice);
    const thumb = viaVarnish(image.urls?.presets.thumb ?? "");
    await warm(thumb);
    const patched = await alice.request("PATCH", `/v1/images/${image.id}`, {
      json: { visibility: "private" },
    });
    expect(patched.status).toBe(200);
    await purgeJobDone(image.id);
    expect((await get(thumb)).status).toBe(404);
  });

  it("answers 404 through the cache for every image of an owner once the owner purge's purge ran", async () => {
    const bob = new Api(run.baseUrl, run.bob);
    const images = [await upload(bob), await upload(bob)];
    const urls = images.map((image) => viaVarnish(image.urls?.presets.thumb ?? ""));
    for (const url of urls) await warm(url);
    const purged = await purgeMetric("purged");
    expect((await admin.request("DELETE", "/v1/owners/bob/images")).status).toBe(202);
    await eventually(async () => (await purgeMetric("purged")) > purged);
    for (const url of urls) expect((await get(url)).status).toBe(404);
  });
});
