import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../client/index.ts";
import { runMaintenanceCommand } from "../../src/cli-maintenance.ts";
import { KyselyClaimsRepository } from "../../src/db/claims-repository.ts";
import { imagePrefix } from "../../src/domain/keys.ts";
import { UnclaimedExpiry } from "../../src/services/unclaimed-expiry.ts";
import { Api, type ImageJson } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, eventually, type Running, startImgup } from "../support/harness.ts";
import { imageStatus, listAll } from "../support/maintenance.ts";

const DAY_MS = 24 * 3600_000;
const signal = () => new AbortController().signal;

/** Claim or expire through the real API, on PGlite and (with DATABASE_URL) PostgreSQL. */
describe.each(dbTargets())("claim or expire ($name)", ({ make }) => {
  let run: Running;
  let alice: Api;
  let bob: Api;
  let jpeg: Buffer;

  /** The expiry task as the scheduler runs it, with the clock `ahead` ms in the future. */
  const expiry = (aheadMs: number) =>
    new UnclaimedExpiry({
      claims: new KyselyClaimsRepository(run.imgup.database.db),
      store: run.imgup.store,
      jobs: run.imgup.jobs,
      logger: pino({ level: "silent" }),
      metrics: run.imgup.metrics,
      now: () => Date.now() + aheadMs,
      settings: { batchSize: 3 },
    });

  async function uploadReady(api: Api, extra: Record<string, unknown> = {}): Promise<ImageJson> {
    const { intent, put } = await api.uploadBytes(jpeg, {
      filename: "p.jpg",
      contentType: "image/jpeg",
      ...extra,
    });
    expect(put.status).toBe(200);
    const image = await api.settled(intent.image.id);
    expect(image.status).toBe("ready");
    return image;
  }

  const claim = (api: Api, id: string, body?: Record<string, unknown>) =>
    api.request<{ image: ImageJson; replaced: string[]; code?: string }>("POST", `/v1/images/${id}/claim`, {
      ...(body === undefined ? {} : { json: body }),
    });

  beforeAll(async () => {
    run = await startImgup(make());
    alice = new Api(run.baseUrl, run.alice);
    bob = new Api(run.baseUrl, run.bob);
    jpeg = await makeImage("jpeg", 64, 48);
  });
  afterAll(async () => run?.stop());

  it("deletes an unclaimed upload with its objects after the TTL, never a claimed one", async () => {
    const unclaimed = await uploadReady(alice, { claim: true });
    const claimed = await uploadReady(alice, { claim: true });
    const free = await uploadReady(alice);
    expect(unclaimed).toMatchObject({ claimRequired: true, claimed: false, ref: null });
    const deadline = Date.parse(String(unclaimed.claimExpiresAt));
    expect(deadline).toBeGreaterThan(Date.now() + DAY_MS - 3600_000);
    expect(free).toMatchObject({ claimRequired: false, claimed: false, claimExpiresAt: null });
    expect((await claim(alice, claimed.id)).body.image).toMatchObject({
      claimed: true,
      claimExpiresAt: null,
    });
    expect((await listAll(run, imagePrefix(unclaimed.id))).length).toBeGreaterThan(0);

    // Within the TTL: nothing to do.
    expect(await expiry(0).run({ dryRun: false, signal: signal() })).toMatchObject({ expired: 0 });
    const dry = await expiry(DAY_MS + 60_000).run({ dryRun: true, signal: signal() });
    expect(dry).toMatchObject({ dryRun: true, expired: 1 });
    expect(await imageStatus(run, unclaimed.id)).toBe("ready");

    const report = await expiry(DAY_MS + 60_000).run({ dryRun: false, signal: signal() });
    expect(report).toMatchObject({ expired: 1, deferred: 0, errors: 0 });
    expect(await imageStatus(run, unclaimed.id)).toBe("deleted");
    expect((await alice.getImage(unclaimed.id)).status).toBe(404);
    expect(await listAll(run, imagePrefix(unclaimed.id))).toEqual([]);
    for (const kept of [claimed, free]) {
      expect((await alice.getImage(kept.id)).body.status).toBe("ready");
      expect((await listAll(run, imagePrefix(kept.id))).length).toBeGreaterThan(0);
    }
    // Far later still: the claimed and the never-required images stay.
    expect(await expiry(365 * DAY_MS).run({ dryRun: false, signal: signal() })).toMatchObject({ expired: 0 });
    const metrics = await run.imgup.metrics.registry.metrics();
    expect(metrics).toMatch(/imgup_images_finalized_total\{status="deleted",reason="unclaimed"\} 1\b/);

    // The app hears of both through the outbox: image.claimed and image.expired, never image.deleted.
    // Eventually: the feed stops before the oldest transaction running on the server, maybe another file's.
    type Feed = { events: { type: string; data: { id: string } }[] };
    const feed = await eventually(async () => {
      const got = await alice.request<Feed>("GET", "/v1/events");
      return got.body.events.length >= 5 ? got : null;
    });
    const about = (id: string) => feed.body.events.filter((e) => e.data.id === id).map((e) => e.type);
    expect(about(claimed.id)).toEqual(["image.ready", "image.claimed"]);
    expect(about(unclaimed.id)).toEqual(["image.ready", "image.expired"]);
    expect(about(free.id)).toEqual(["image.ready"]);
  });

  it("is one of the scheduler's tasks, run under its lock", async () => {
    const outcome = await run.imgup.maintenance.scheduler.runNow("expire-unclaimed", { dryRun: false });
    expect(outcome).toMatchObject({ ran: true, report: { dryRun: false, errors: 0 } });
    const open = async () => ({ maintenance: run.imgup.maintenance, close: async () => {} });
    const lines: string[] = [];
    const log = console.log;
    console.log = (line: string) => void lines.push(line);
    try {
      expect(await runMaintenanceCommand("expire-unclaimed", { dryRun: true, json: true }, open)).toBe(0);
    } finally {
      console.log = log;
    }
    expect(JSON.parse(lines.join("\n"))).toMatchObject({
      command: "expire-unclaimed",
      exitCode: 0,
      report: { dryRun: true, expired: 0 },
    });
  });

  it("a claim racing the expiry either keeps its image or finds it gone, never both", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await uploadReady(alice, { claim: true })).id);
    const [claims, report] = await Promise.all([
      Promise.all(ids.map((id, i) => claim(alice, id, { ref: `race/${i}` }))),
      expiry(DAY_MS + 60_000).run({ dryRun: false, signal: signal() }),
    ]);
    let kept = 0;
    for (const [i, id] of ids.entries()) {
      const answer = claims[i];
      const status = await imageStatus(run, id);
      if (answer?.status === 200) {
        kept++;
        expect(status, `${id} was claimed`).toBe("ready");
        expect((await listAll(run, imagePrefix(id))).length).toBeGreaterThan(0);
      } else {
        expect(answer?.status, `${id}: ${JSON.stringify(answer?.body)}`).toBe(404);
        expect(status).toBe("deleted");
      }
    }
    expect(kept + report.expired).toBe(ids.length);
    // Whatever the race left unclaimed is gone by now; every claimed one survives another pass.
    await expiry(DAY_MS + 60_000).run({ dryRun: false, signal: signal() });
    for (const [i, id] of ids.entries())
      expect(await imageStatus(run, id)).toBe(claims[i]?.status === 200 ? "ready" : "deleted");
  });

  it("a pending image may be claimed and is kept once ready", async () => {
    const created = await alice.createIntent({
      filename: "early.jpg",
      contentType: "image/jpeg",
      size: jpeg.length,
      claim: true,
    });
    expect(created.status).toBe(201);
    const id = created.body.image.id;
    const early = await claim(alice, id, { ref: "posts/7/cover" });
    expect(early.status).toBe(200);
    expect(early.body.image).toMatchObject({ status: "pending", claimed: true, ref: "posts/7/cover" });
    const res = await fetch(created.body.upload.url, {
      method: "PUT",
      headers: created.body.upload.headers,
      body: new Uint8Array(jpeg),
    });
    expect(res.status).toBe(200);
    expect((await alice.settled(id)).status).toBe("ready");
    await expiry(DAY_MS + 60_000).run({ dryRun: false, signal: signal() });
    expect(await imageStatus(run, id)).toBe("ready");
  });

  it("claims are idempotent, refs are searchable and set once, other owners see nothing", async () => {
    const a = await uploadReady(alice, { claim: true });
    const first = await claim(alice, a.id, { ref: "users/42/avatar" });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      image: { id: a.id, claimed: true, ref: "users/42/avatar" },
      replaced: [],
    });
    const again = await claim(alice, a.id, { ref: "users/42/avatar" });
    expect(again.status).toBe(200);
    expect(again.body.image).toMatchObject({ id: a.id, ref: "users/42/avatar" });
    expect((await claim(alice, a.id)).status).toBe(200);
    const other = await claim(alice, a.id, { ref: "users/43/avatar" });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe("already_claimed");

    expect((await claim(bob, a.id, { ref: "users/42/avatar" })).status).toBe(404);
    const b = await uploadReady(alice);
    expect((await claim(alice, b.id, { ref: "users/42/banner" })).status).toBe(200);

    const exact = await alice.request<{ items: ImageJson[] }>("GET", "/v1/images?ref=users%2F42%2Favatar");
    expect(exact.body.items.map((i) => i.id)).toEqual([a.id]);
    const prefix = await alice.request<{ items: ImageJson[] }>("GET", "/v1/images?ref_prefix=users%2F42%2F");
    expect(prefix.body.items.map((i) => i.id).sort()).toEqual([a.id, b.id].sort());
    const bobs = await bob.request<{ items: ImageJson[] }>("GET", "/v1/images?ref=users%2F42%2Favatar");
    expect(bobs.body.items).toEqual([]);

    expect((await claim(alice, a.id, { replace: true })).status).toBe(400);
    expect((await claim(alice, a.id, { ref: "" })).status).toBe(400);
    expect((await claim(alice, "not-an-id")).status).toBe(404);
  });

  it("replace: true deletes the previous images holding the ref", async () => {
    const old1 = await uploadReady(alice, { claim: true });
    const old2 = await uploadReady(alice);
    for (const old of [old1, old2])
      expect((await claim(alice, old.id, { ref: "users/9/avatar" })).status).toBe(200);
    const keep = await uploadReady(bob);
    expect((await claim(bob, keep.id, { ref: "users/9/avatar" })).status).toBe(200);

    const next = await uploadReady(alice, { claim: true });
    const res = await claim(alice, next.id, { ref: "users/9/avatar", replace: true });
    expect(res.status).toBe(200);
    expect(res.body.replaced.sort()).toEqual([old1.id, old2.id].sort());
    for (const old of [old1, old2]) {
      expect((await alice.getImage(old.id)).status).toBe(404);
      await eventually(async () => (await listAll(run, imagePrefix(old.id))).length === 0);
    }
    const listed = await alice.request<{ items: ImageJson[] }>("GET", "/v1/images?ref=users%2F9%2Favatar");
    expect(listed.body.items.map((i) => i.id)).toEqual([next.id]);
    // Another owner's image under the same ref is not the caller's to replace.
    expect((await bob.getImage(keep.id)).body.status).toBe("ready");
    // Repeating the claim (a retry) replaces nothing more and still answers the image.
    const retry = await claim(alice, next.id, { ref: "users/9/avatar", replace: true });
    expect(retry.body).toMatchObject({ image: { id: next.id }, replaced: [] });
  });

  it("a rejected image cannot be claimed, and expires like an unclaimed one", async () => {
    const { intent } = await alice.uploadBytes(await makeImage("png", 10, 10), {
      filename: "lie.jpg",
      contentType: "image/jpeg",
      claim: true,
    });
    expect((await alice.settled(intent.image.id)).status).toBe("rejected");
    const res = await claim(alice, intent.image.id, { ref: "x" });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe("image_not_claimable");
    await expiry(DAY_MS + 60_000).run({ dryRun: false, signal: signal() });
    expect(await imageStatus(run, intent.image.id)).toBe("deleted");
  });

  it("the SDK uploads with claim and claims under a ref", async () => {
    const client = createClient({ baseUrl: run.baseUrl, token: run.alice, pollIntervalMs: 50 });
    const file = new Blob([new Uint8Array(jpeg)], { type: "image/jpeg" });
    const { image, deduplicated } = await client.upload(file, { claim: true });
    expect(deduplicated).toBe(false);
    expect(image).toMatchObject({ claimRequired: true, claimed: false });
    const claimed = await client.claim(image.id, { ref: "sdk/1", replace: true });
    expect(claimed).toMatchObject({ id: image.id, claimed: true, ref: "sdk/1" });
    expect((await client.listImages({ ref: "sdk/1" })).items.map((i) => i.id)).toEqual([image.id]);
    await expect(client.claim(image.id, { ref: "sdk/2" })).rejects.toMatchObject({ code: "already_claimed" });
  });
});
