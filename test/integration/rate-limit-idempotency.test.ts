import { afterAll, describe, expect, it } from "vitest";
import { Api } from "../support/api.ts";
import {
  dbTargets,
  eventually,
  type KvEnvTarget,
  kvEnvTargets,
  type Running,
  startImgup,
} from "../support/harness.ts";
import { TestClock } from "../support/test-clock.ts";

const db = dbTargets()[0];
if (!db) throw new Error("no database target");
const LIMITS = { IMGUP_RATE_LIMIT_PER_SEC: "1", IMGUP_RATE_LIMIT_BURST: "2" };
const intent = { filename: "k.jpg", contentType: "image/jpeg", size: 100 };
const SLOW = 300_000;

// POST /v1/uploads takes its Idempotency-Key lock and charges the owner's bucket in one KV call:
// what that call must keep from the two separate steps it replaced.
describe.each(kvEnvTargets())("rate limit and Idempotency-Key together, $name KV", (kvTarget) => {
  const runs: Running[] = [];
  const kvs: KvEnvTarget[] = [];
  afterAll(async () => {
    for (const r of runs) await r.stop();
    for (const k of kvs) await k.flush();
  }, SLOW);

  it(
    "a replay or a reused key costs no token; a refused request leaves its key free for later",
    async () => {
      const kv = kvTarget.make();
      kvs.push(kv);
      const clock = new TestClock();
      const run = await startImgup(
        db.make(),
        { ...kv.env, ...LIMITS },
        { kvClock: clock.now, kvCommandTimeoutMs: SLOW },
      );
      runs.push(run);
      await eventually(() => run.imgup.kv.ping().then(() => true));
      const api = new Api(run.baseUrl, run.alice);
      const key = (k: string) => ({ "idempotency-key": k });

      const first = await api.createIntent(intent, key("a"));
      expect(first.status).toBe(201);
      expect(first.headers.get("ratelimit-remaining")).toBe("1");
      // Replays of an answered key: the same image, no token (the bucket still has one).
      for (let i = 0; i < 3; i++) {
        const again = await api.createIntent(intent, key("a"));
        expect(again.status).toBe(201);
        expect(again.headers.get("idempotent-replayed")).toBe("true");
      }
      // Another body with a used key: 422, no token either.
      expect((await api.createIntent({ ...intent, size: 101 }, key("a"))).status).toBe(422);
      expect((await api.createIntent(intent, key("b"))).status).toBe(201);
      // The bucket is full now: a new key is refused and must not stay locked.
      const refused = await api.createIntent(intent, key("c"));
      expect(refused.status).toBe(429);
      expect((await api.createIntent(intent, key("c"))).status).toBe(429);
      clock.advance(1_000);
      const later = await api.createIntent(intent, key("c"));
      expect(later.status).toBe(201);
      expect(later.headers.get("idempotent-replayed")).toBeNull();
      // Without a key the same bucket is charged.
      expect((await api.createIntent(intent)).status).toBe(429);
    },
    SLOW,
  );
});
