import { check, equal, FAST, Recorder, rejection, type ScenarioContext } from "./support.ts";

/** What a dropped connection looks like to fetch. */
const networkFailure = () => new TypeError("simulated network failure");

export async function aPartFailingOnceIsRetried(ctx: ScenarioContext): Promise<void> {
  const rec = new Recorder(ctx, async (req, _init, attempt) => {
    if (req.partNumber === 2 && attempt === 0) throw networkFailure();
    return undefined;
  });
  const { image } = await rec.client(FAST).upload(await ctx.file("large"));
  equal(image.status, "ready", "status");
  const attempts = (n: number) => rec.parts().filter((r) => r.partNumber === n).length;
  equal([attempts(1), attempts(2), attempts(3), attempts(4)], [1, 2, 1, 1], "attempts per part");
}

export async function aSecondClientResumesWithTheSameKey(ctx: ScenarioContext): Promise<void> {
  const file = await ctx.file("large");
  const idempotencyKey = `resume-${crypto.randomUUID()}`;
  const opts = { idempotencyKey, filename: "resumed.png" };
  // The first client gets parts 1 and 2 in, then its network dies for good.
  const crashed = new Recorder(ctx, async (req) => {
    if ((req.partNumber ?? 0) >= 3) throw networkFailure();
    return undefined;
  });
  const crash = await rejection(
    () => crashed.client({ ...FAST, partConcurrency: 1, retries: 0 }).upload(file, opts),
    "the crashing client",
  );
  equal((crash as { code?: string }).code, "network_error", "the first client's failure");
  equal(
    crashed.parts().map((r) => [r.partNumber, r.status]),
    [
      [1, 200],
      [2, 200],
      [3, null],
    ],
    "the first client's parts",
  );
  const resumed = new Recorder(ctx);
  const { image } = await resumed.client(FAST).upload(file, opts);
  equal(image.status, "ready", "status after the resume");
  equal(
    resumed.parts().map((r) => r.partNumber),
    [3, 4],
    "parts the second client sent",
  );
  const intents = [...crashed.requests, ...resumed.requests].filter(
    (r) => r.method === "POST" && r.url.endsWith("/v1/uploads"),
  );
  equal(
    intents.map((r) => r.idempotencyKey),
    [idempotencyKey, idempotencyKey],
    "both intents carry the key",
  );
}

export async function retriesReuseOneIdempotencyKey(ctx: ScenarioContext): Promise<void> {
  // The first intent reaches imgup but its answer is lost on the way back.
  const rec = new Recorder(ctx, async (req, init, attempt) => {
    if (req.method !== "POST" || !req.url.endsWith("/v1/uploads") || attempt > 0) return undefined;
    await (await ctx.fetch(req.url, init)).arrayBuffer();
    throw networkFailure();
  });
  const filename = `retried-${crypto.randomUUID()}.jpg`;
  const client = rec.client(FAST);
  // A client that never got an answer fails fast instead (CORS or a wrong URL look the same).
  await client.listImages({ limit: 1 });
  const { image } = await client.upload(await ctx.file("jpeg"), { filename });
  equal(image.status, "ready", "status");
  const intents = rec.requests.filter((r) => r.method === "POST" && r.url.endsWith("/v1/uploads"));
  equal(intents.length, 2, "intent attempts");
  check(intents[0]?.idempotencyKey, "the intent carries an Idempotency-Key");
  equal(intents[1]?.idempotencyKey, intents[0]?.idempotencyKey, "the retry's key");
  const mine = (await rec.client().listImages({ limit: 100 })).items.filter((i) => i.filename === filename);
  equal(
    mine.map((i) => i.id),
    [image.id],
    "images with that filename",
  );
}
