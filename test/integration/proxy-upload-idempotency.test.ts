import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api, sha256 } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { eventually } from "../support/harness.ts";
import {
  type ProxyRun,
  proxyBytesRead,
  proxyPost,
  proxyRows,
  proxyTargets,
  storageKeys,
} from "../support/proxy-upload.ts";
import { repeated, streamUpload } from "../support/streaming-upload.ts";

const LIMIT = 8 * 1024 * 1024;

/** Idempotency-Key on proxy uploads: the fingerprint is what is known before the body is read. */
describe.each(proxyTargets())("proxy upload idempotency on $name", (target) => {
  let run: ProxyRun;
  let alice: Api;
  let jpeg: Buffer;

  beforeAll(async () => {
    run = await target.start({ IMGUP_MAX_UPLOAD_BYTES: String(LIMIT), IMGUP_RATE_LIMIT_BURST: "500" });
    alice = new Api(run.baseUrl, run.alice);
    jpeg = await makeImage("jpeg", 50, 40);
  });
  afterAll(async () => run?.stop());

  const post = (key: string, body: Buffer, headers: Record<string, string> = {}, query = "") =>
    proxyPost(run, body, {
      headers: { "content-type": "image/jpeg", "idempotency-key": key, ...headers },
      query,
    });
  const originals = async () => (await storageKeys(run)).filter((k) => k.endsWith("/original")).length;
  const rowCount = async () => Object.values(await proxyRows(run, "alice")).reduce((a, b) => a + b, 0);

  it("answers a retry with the first answer and reads, stores and creates nothing again", async () => {
    const first = await post("same-twice", jpeg, {}, "?filename=a.jpg");
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    // Processing promotes the upload to the original in the background: counted once it is done.
    expect((await alice.settled(first.body.image.id)).status).toBe("ready");
    const objects = await originals();
    const read = await proxyBytesRead(run);
    const rows = await rowCount();

    const again = await post("same-twice", jpeg, {}, "?filename=a.jpg");
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.headers.get("location")).toBe(`/v1/images/${first.body.image.id}`);
    expect(again.body.image.id).toBe(first.body.image.id);
    expect(await proxyBytesRead(run)).toBe(read);
    expect(await originals()).toBe(objects);
    expect(await rowCount()).toBe(rows);
  });

  it("re-renders a replay from the image as it is now: its status, freshly signed URLs, gone once deleted", async () => {
    const first = await post("rerendered", jpeg, {}, "?filename=p.jpg&visibility=private");
    expect(first.status).toBe(201);
    const id = first.body.image.id;
    expect((await alice.settled(id)).status).toBe("ready");
    const replay = async () => {
      const r = await post("rerendered", jpeg, {}, "?filename=p.jpg&visibility=private");
      expect(r.status).toBe(201);
      expect(r.headers.get("idempotent-replayed")).toBe("true");
      expect(r.body.image).toMatchObject({ id, status: "ready" });
      const original = r.body.image.urls?.original as string;
      return { original, exp: Number(new URL(original).searchParams.get("exp")) };
    };
    const once = await replay();
    expect((await fetch(once.original)).status).toBe(200);
    // Signed when replayed, not when first answered: a later second gives a later expiry.
    const startedAt = Math.floor(Date.now() / 1000);
    await eventually(async () => Math.floor(Date.now() / 1000) > startedAt, 10_000);
    expect((await replay()).exp).toBeGreaterThan(once.exp);
    expect((await alice.request("DELETE", `/v1/images/${id}`)).status).toBe(204);
    const gone = await post("rerendered", jpeg, {}, "?filename=p.jpg&visibility=private");
    expect(gone.status).toBe(404);
  });

  it("answers 409 to the same key while the first upload is still streaming", async () => {
    const key = "concurrent";
    const pendingBefore = (await proxyRows(run, "alice")).pending ?? 0;
    const answer = new Promise<{ status: number; id: string }>((resolve, reject) => {
      const req = request(`${run.baseUrl}/v1/images`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${run.alice}`,
          "content-type": "image/jpeg",
          "content-length": String(jpeg.length),
          "idempotency-key": key,
        },
      });
      req.on("error", reject);
      req.on("response", (res) => {
        let text = "";
        res.on("data", (d) => {
          text += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, id: JSON.parse(text).image?.id }));
      });
      req.write(jpeg.subarray(0, 100));
      // The first request holds the key once its row exists; then the duplicate arrives.
      void eventually(async () => ((await proxyRows(run, "alice")).pending ?? 0) > pendingBefore).then(
        async () => {
          const duplicate = await post(key, jpeg);
          expect(duplicate.status).toBe(409);
          expect(duplicate.body.code).toBe("idempotency_request_in_progress");
          expect(duplicate.headers.get("retry-after")).toBe("1");
          req.end(jpeg.subarray(100));
        },
        reject,
      );
    });
    const first = await answer;
    expect(first.status).toBe(201);
    const replay = await post(key, jpeg);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.body.image.id).toBe(first.id);
  });

  it("answers 422 to the same key with other headers or query", async () => {
    expect((await post("changed", jpeg, {}, "?filename=one.jpg")).status).toBe(201);
    for (const [headers, query] of [
      [{}, "?filename=two.jpg"],
      [{}, "?filename=one.jpg&visibility=private"],
      [{ "content-type": "image/png" }, "?filename=one.jpg"],
      [{ "x-content-sha256": sha256(jpeg) }, "?filename=one.jpg"],
    ] as const) {
      const r = await post("changed", jpeg, headers, query);
      expect(r.status, JSON.stringify([headers, query])).toBe(422);
      expect(r.body.code).toBe("idempotency_key_reused");
    }
    // Other bytes of another declared length: never answered with the first image.
    const other = await post("changed", Buffer.concat([jpeg, Buffer.alloc(16)]), {}, "?filename=one.jpg");
    expect(other.status).toBe(422);
    expect(other.body.code).toBe("idempotency_key_reused");
  });

  it("lets a refused attempt be retried, fixed, with the same key", async () => {
    const wrong = sha256(Buffer.from("not these bytes"));
    expect((await post("fix-hash", jpeg, {}, `?sha256=${wrong}`)).status).toBe(422);
    const tooBig = await streamUpload(`${run.baseUrl}/v1/images`, {
      headers: {
        authorization: `Bearer ${run.alice}`,
        "content-type": "image/jpeg",
        "idempotency-key": "cut-off",
      },
      chunks: repeated(Buffer.alloc(64 * 1024), 2 * LIMIT),
    });
    expect(tooBig.status).toBe(413);
    const deleted = (await proxyRows(run, "alice")).deleted ?? 0;
    // The refused attempts' rows hold the keys in the database; they must not stand in the way.
    for (const [key, query] of [
      ["fix-hash", `?sha256=${sha256(jpeg)}`],
      ["cut-off", ""],
    ] as const) {
      const fixed = await post(key, jpeg, {}, query);
      expect(fixed.status, key).toBe(201);
      expect(fixed.headers.get("idempotent-replayed")).toBeNull();
      expect((await alice.settled(fixed.body.image.id)).status).toBe("ready");
      const replay = await post(key, jpeg, {}, query);
      expect(replay.body.image.id).toBe(fixed.body.image.id);
    }
    expect((await proxyRows(run, "alice")).deleted).toBe(deleted);
  });

  it("drains a replayed body of a declared length, and closes the connection on one of unknown length", async () => {
    expect((await post("drain", jpeg)).status).toBe(201);
    const small = await post("drain", jpeg);
    expect(small.headers.get("idempotent-replayed")).toBe("true");
    expect(small.headers.get("connection")).not.toBe("close");

    const chunked = (chunks: Iterable<Buffer>) =>
      streamUpload(`${run.baseUrl}/v1/images`, {
        headers: {
          authorization: `Bearer ${run.alice}`,
          "content-type": "image/jpeg",
          "idempotency-key": "chunked",
        },
        chunks,
      });
    expect((await chunked([jpeg])).status).toBe(201);
    const read = await proxyBytesRead(run);
    // Whatever this body is, the answer is the stored one and the server does not read it.
    const big = await chunked(repeated(Buffer.alloc(64 * 1024), 4 * LIMIT));
    expect(big.status).toBe(201);
    expect(big.headers["idempotent-replayed"]).toBe("true");
    expect(big.headers.connection).toBe("close");
    expect(big.completed).toBe(false);
    expect(await proxyBytesRead(run)).toBe(read);
  });

  it.skipIf(target.name.includes("memory"))(
    "still answers with the same image when the KV forgot the key (database backstop)",
    async () => {
      const first = await post("backstop", jpeg);
      expect(first.status).toBe(201);
      await alice.settled(first.body.image.id);
      const read = await proxyBytesRead(run);
      await run.flushKv?.();
      const retry = await post("backstop", jpeg);
      expect(retry.status).toBe(201);
      expect(retry.headers.get("idempotent-replayed")).toBe("true");
      expect(retry.body.image.id).toBe(first.body.image.id);
      // Only the bytes that reached the meter before the row said "duplicate".
      expect((await proxyBytesRead(run)) - read).toBeLessThanOrEqual(jpeg.length);
      await run.flushKv?.();
      const changed = await post("backstop", jpeg, {}, "?filename=other.jpg");
      expect(changed.status).toBe(422);
      await run.flushKv?.();
      const longer = await post("backstop", Buffer.concat([jpeg, Buffer.alloc(16)]));
      expect(longer.status).toBe(422);
    },
  );
});
