import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatabaseHandle } from "../../src/db/connect.ts";
import { committedBelowXmin, EventsRepository } from "../../src/db/events-repository.ts";
import { KyselyImagesRepository } from "../../src/db/images-repository.ts";
import { WebhookDeliveriesRepository } from "../../src/db/webhook-deliveries-repository.ts";
import { WebhookEndpointsRepository } from "../../src/db/webhook-endpoints-repository.ts";
import { newWebhookSecret } from "../../src/domain/webhook-signature.ts";
import type { SendResult } from "../../src/services/webhook-ports.ts";
import { WebhookWorker } from "../../src/services/webhook-worker.ts";
import { databaseTargets } from "../support/databases.ts";
import { eventually } from "../support/harness.ts";
import { TestClock } from "../support/test-clock.ts";

const urls = {
  publicUrl: "http://imgup.test",
  secret: "s".repeat(32),
  privateUrlTtlSeconds: 60,
  now: Date.now,
  presetNames: [],
};
const SCHEDULE = [60_000, 120_000, 240_000];

/** The delivery worker against the real repositories, with a scripted transport and a test clock. */
describe.each(databaseTargets())("webhook worker on $name", ({ open }) => {
  let handle: DatabaseHandle;
  let cleanup: () => Promise<void>;
  let images: KyselyImagesRepository;
  let endpoints: WebhookEndpointsRepository;
  let deliveries: WebhookDeliveriesRepository;

  beforeAll(async () => {
    ({ handle, cleanup } = await open());
    images = new KyselyImagesRepository(handle.db);
    endpoints = new WebhookEndpointsRepository(handle.db);
    deliveries = new WebhookDeliveriesRepository(handle.db);
  });
  afterAll(async () => cleanup?.());

  /** A fresh owner with one endpoint, and a worker whose transport answers with `answer`. */
  async function setup(answer: (body: { type: string; data: { id: string } }) => SendResult) {
    const owner = `o-${randomUUID()}`;
    const clock = new TestClock();
    const sent: Array<{ type: string; image: string; at: number; id: string }> = [];
    const endpoint = await endpoints.create({
      id: `wh_${randomUUID().replaceAll("-", "")}`,
      ownerId: owner,
      url: "http://receiver.test/",
      events: [],
      description: "",
      source: "api",
      secret: newWebhookSecret(),
    });
    const worker = new WebhookWorker({
      deliveries,
      endpoints,
      events: new EventsRepository(handle.db),
      transport: {
        send: async (req) => {
          const body = JSON.parse(req.body);
          sent.push({
            type: body.type,
            image: body.data.id,
            at: clock.now(),
            id: req.headers["webhook-id"] ?? "",
          });
          return answer(body);
        },
      },
      urls,
      settings: {
        retryScheduleMs: SCHEDULE,
        retryJitter: 0,
        timeoutMs: 1000,
        disableAfterMs: 10 * 60_000,
        disableAfterFailures: 3,
        pollIntervalMs: 10_000,
        concurrency: 4,
        retentionMs: 86_400_000,
      },
      logger: pino({ level: "silent" }),
      now: clock.now,
    });
    /**
     * One pass and every delivery it started. First, every event written so far must be readable:
     * readers stop before the oldest transaction still running anywhere on the server, and another
     * test file's (a migration, say) may be running just then.
     */
    const pass = async () => {
      await eventually(async () => {
        const hidden = await handle.db
          .selectFrom("outbox_events")
          .select((eb) => eb.fn.countAll<string>().as("n"))
          .where(sql<boolean>`not (${committedBelowXmin})`)
          .executeTakeFirstOrThrow();
        return Number(hidden.n) === 0;
      });
      await worker.tick();
      await worker.stop();
    };
    const image = async () => {
      const id = randomUUID();
      await images.insert({
        id,
        ownerId: owner,
        visibility: "public",
        filename: "a.jpg",
        objectKey: `k/${id}`,
        uploadMethod: "put",
        declaredContentType: "image/jpeg",
        declaredSize: 1,
        declaredSha256: null,
        idempotencyKey: null,
        uploadExpiresAt: new Date(Date.now() + 60_000),
        multipartUploadId: null,
        multipartPartSize: null,
      });
      return id;
    };
    return { clock, sent, endpoint, pass, image, log: () => deliveries.list(endpoint.id, 100) };
  }

  it("retries on the schedule with the same webhook-id, then gives up", async () => {
    const t = await setup(() => ({ ok: false, statusCode: 500, error: "HTTP 500" }));
    const id = await t.image();
    await images.transition(id, ["pending"], "rejected");
    const start = t.clock.now();
    await t.pass();
    for (const wait of SCHEDULE) {
      t.clock.advance(wait - 1);
      await t.pass();
      t.clock.advance(1);
      await t.pass();
    }
    expect(t.sent.map((s) => s.at - start)).toEqual([0, 60_000, 180_000, 420_000]);
    expect(new Set(t.sent.map((s) => s.id)).size).toBe(1);
    const [d] = await t.log();
    expect(d).toMatchObject({ status: "failed", attempts: 4, lastStatusCode: 500, nextAttemptAt: null });
  });

  it("never sends an image's later event before its earlier one succeeded", async () => {
    let failFirst = 2;
    const t = await setup((body) =>
      body.type === "image.ready" && failFirst-- > 0
        ? { ok: false, statusCode: 503, error: "HTTP 503" }
        : { ok: true, statusCode: 200, error: null },
    );
    const a = await t.image();
    const b = await t.image();
    await images.transition(a, ["pending"], "ready");
    await images.transition(a, ["ready"], "deleted");
    await images.transition(b, ["pending"], "deleted");
    await t.pass();
    // b is not held up by a; a's deletion waits behind its failing ready.
    expect(t.sent.map((s) => `${s.type} ${s.image === a ? "a" : "b"}`).sort()).toEqual([
      "image.deleted b",
      "image.ready a",
    ]);
    t.clock.advance(60_000);
    await t.pass();
    t.clock.advance(120_000);
    await t.pass();
    await t.pass();
    expect(t.sent.filter((s) => s.image === a).map((s) => s.type)).toEqual([
      "image.ready",
      "image.ready",
      "image.ready",
      "image.deleted",
    ]);
  });

  it("disables an endpoint after sustained failure, with the reason, and resumes on re-enable", async () => {
    let up = false;
    const t = await setup(() =>
      up
        ? { ok: true, statusCode: 200, error: null }
        : { ok: false, statusCode: null, error: "connect ECONNREFUSED" },
    );
    for (let i = 0; i < 3; i++) await images.transition(await t.image(), ["pending"], "rejected");
    await t.pass();
    // Three failures, but not yet for long enough.
    expect((await endpoints.get(t.endpoint.id))?.disabledAt).toBeNull();
    t.clock.advance(10 * 60_000);
    await t.pass();
    const disabled = await endpoints.get(t.endpoint.id);
    expect(disabled?.disabledAt).not.toBeNull();
    expect(disabled?.disabledReason).toContain("consecutive failed attempts");
    expect(disabled?.disabledReason).toContain("ECONNREFUSED");
    const attempts = t.sent.length;
    t.clock.advance(3600_000);
    await t.pass();
    expect(t.sent.length).toBe(attempts);
    up = true;
    await endpoints.update(t.endpoint.id, { enable: true });
    await t.pass();
    expect((await t.log()).map((d) => d.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
    expect((await endpoints.get(t.endpoint.id))?.consecutiveFailures).toBe(0);
  });
});
