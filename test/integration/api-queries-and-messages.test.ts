import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api, type ImageJson } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";
import { fetchDocument, operations } from "../support/openapi.ts";

const db = dbTargets()[0];
if (!db) throw new Error("no database target");

interface Page {
  items: ImageJson[];
  nextCursor: string | null;
}
interface Problem {
  code: string;
  detail: string;
  field?: string;
}

/** Issue 14 item 6: the status filter, cache-busters, declared type and size, validation in words. */
describe("listing, query parameters, pending images and validation messages", () => {
  let run: Running;
  let alice: Api;
  let ready: ImageJson;
  let rejected: ImageJson;
  let pending: ImageJson;
  let bytes: Buffer;

  beforeAll(async () => {
    run = await startImgup(db.make(), {
      IMGUP_URL_SIGNING_KEYS: "queries-test-signing-key-0123456789abcdef",
      // A webhook endpoint on loopback, for the GET routes under /v1/webhooks/{id}.
      IMGUP_WEBHOOK_ALLOW_PRIVATE: "true",
    });
    alice = new Api(run.baseUrl, run.alice);
    bytes = await makeImage("jpeg", 90, 60);
    const first = await alice.uploadBytes(bytes, { filename: "ready.jpg", contentType: "image/jpeg" });
    await alice.request("POST", `/v1/uploads/${first.intent.image.id}/complete`);
    ready = await alice.settled(first.intent.image.id);
    const junk = Buffer.from("plain text, declared as a JPEG");
    const second = await alice.uploadBytes(junk, { filename: "junk.jpg", contentType: "image/jpeg" });
    await alice.request("POST", `/v1/uploads/${second.intent.image.id}/complete`);
    rejected = await alice.settled(second.intent.image.id);
    const intent = await alice.createIntent({ filename: "later.png", contentType: "image/png", size: 4321 });
    expect(intent.status).toBe(201);
    pending = intent.body.image;
  });
  afterAll(async () => run?.stop());

  const ids = (page: Page) => page.items.map((i) => i.id);

  it("lists everything not deleted by default, and filters on one or several statuses", async () => {
    expect([ready.status, rejected.status, pending.status]).toEqual(["ready", "rejected", "pending"]);
    const all = await alice.request<Page>("GET", "/v1/images");
    expect(ids(all.body)).toEqual([pending.id, rejected.id, ready.id]);
    const onlyReady = await alice.request<Page>("GET", "/v1/images?status=ready");
    expect(ids(onlyReady.body)).toEqual([ready.id]);
    const two = await alice.request<Page>("GET", "/v1/images?status=pending&status=rejected");
    expect(ids(two.body)).toEqual([pending.id, rejected.id]);
    // The filter holds across pages.
    const first = await alice.request<Page>("GET", "/v1/images?status=ready&status=pending&limit=1");
    expect(ids(first.body)).toEqual([pending.id]);
    const next = await alice.request<Page>(
      "GET",
      `/v1/images?status=ready&status=pending&limit=1&cursor=${first.body.nextCursor}`,
    );
    expect(ids(next.body)).toEqual([ready.id]);
    expect(next.body.nextCursor).toBeNull();
    // Nobody else's images, and deleted ones are never listed (asking for them is an error).
    expect(
      (await new Api(run.baseUrl, run.bob).request<Page>("GET", "/v1/images?status=ready")).body.items,
    ).toEqual([]);
    const deleted = await alice.request<Problem>("GET", "/v1/images?status=deleted");
    expect(deleted.status).toBe(400);
    expect(deleted.body).toMatchObject({ code: "validation_failed", field: "status" });
    expect(deleted.body.detail).toBe(
      'query parameter "status" must be one of "pending", "processing", "ready", "rejected", "expired", "held"',
    );
  });

  it("shows a pending image's declared contentType and size, then what the bytes are", async () => {
    expect(pending).toMatchObject({ status: "pending", contentType: "image/png", size: 4321 });
    expect((await alice.getImage(pending.id)).body).toMatchObject({ contentType: "image/png", size: 4321 });
    const listed = await alice.request<Page>("GET", "/v1/images?status=pending");
    expect(listed.body.items[0]).toMatchObject({ id: pending.id, contentType: "image/png", size: 4321 });
    expect(ready).toMatchObject({ status: "ready", contentType: "image/jpeg", size: bytes.length });
  });

  it("ignores unknown query parameters on every GET route the document lists, API and delivery alike", async () => {
    const doc = await fetchDocument(run.baseUrl);
    const signed = await alice.request<{ url: string }>("POST", `/v1/images/${ready.id}/urls`, {
      json: { spec: "w_30" },
    });
    const [signature, spec] = new URL(signed.body.url).pathname.split("/").slice(2, 4) as [string, string];
    // Every GET answers its happy path here: a multipart upload for its parts, an admin for the keys.
    const multipart = await alice.createIntent({
      filename: "big.jpg",
      contentType: "image/jpeg",
      size: 6 * 1024 * 1024,
      method: "multipart",
    });
    expect(multipart.status).toBe(201);
    const admin = alice.as((await run.imgup.auth.createKey({ ownerId: "alice", scopes: ["admin"] })).key);
    expect((await admin.request("PUT", "/v1/admin/profiles/p1", { json: { maxWidth: 100 } })).status).toBe(
      201,
    );
    const webhook = await alice.request<{ endpoint: { id: string } }>("POST", "/v1/webhooks", {
      json: { url: "http://127.0.0.1:9/hook" },
    });
    expect(webhook.status).toBe(201);
    const values: Record<string, string> = {
      name: "p1",
      id: ready.id,
      imageId: ready.id,
      preset: "thumb",
      signature,
      spec,
    };
    const checked: string[] = [];
    for (const { path } of operations(doc).filter((o) => o.method === "get")) {
      const given = path.startsWith("/v1/uploads/")
        ? { ...values, id: multipart.body.image.id }
        : path.startsWith("/v1/webhooks/")
          ? { ...values, id: webhook.body.endpoint.id }
          : values;
      const url = `${run.baseUrl}${path.replace(/\{([^}]+)\}/g, (_, name: string) => given[name] ?? "x")}`;
      const plain = await admin.request("GET", url);
      const busted = await admin.request("GET", `${url}?_=1735689600123&utm_source=newsletter`);
      expect(plain.status, path).toBeLessThan(400);
      expect(busted.status, `${path} with a cache-buster`).toBe(plain.status);
      checked.push(path);
    }
    expect(checked).toEqual(
      expect.arrayContaining(["/v1/images", "/i/{imageId}/original", "/i/{imageId}/{preset}"]),
    );
    expect(checked).toContain("/i/{signature}/{spec}/{imageId}");
    // A signed private URL keeps working with one added, and so do the page and the JSON posts.
    await alice.request("PATCH", `/v1/images/${ready.id}`, { json: { visibility: "private" } });
    const privateUrl = (await alice.getImage(ready.id)).body.urls?.presets.thumb ?? "";
    expect(privateUrl).toContain("sig=");
    expect((await fetch(`${privateUrl}&_=1`)).status).toBe(200);
    expect((await fetch(`${run.baseUrl}/docs?_=1`)).status).toBe(200);
    const busted = await alice.request("POST", "/v1/uploads?_=1", {
      json: { filename: "a.png", contentType: "image/png", size: 10 },
    });
    expect(busted.status).toBe(201);
  });

  it("explains invalid requests in words that name the field, with the stable code", async () => {
    const cases: Array<[string, Promise<{ status: number; body: unknown }>, string, string | undefined]> = [
      [
        "an enum",
        alice.request("PATCH", `/v1/images/${ready.id}`, { json: { visibility: "secret" } }),
        'field "visibility" must be one of "public", "private"',
        "visibility",
      ],
      [
        "a missing field",
        alice.createIntent({ filename: "a.jpg", size: 10 }),
        'field "contentType" is required',
        "contentType",
      ],
      [
        "a wrong type",
        alice.createIntent({ filename: "a.jpg", contentType: "image/jpeg", size: "ten" }),
        'field "size" must be an integer',
        "size",
      ],
      [
        "an unknown field",
        alice.createIntent({ filename: "a.jpg", contentType: "image/jpeg", size: 10, owner: "bob" }),
        'field "owner" is not accepted here (unknown field)',
        "owner",
      ],
      [
        "an empty string",
        alice.createIntent({ filename: "", contentType: "image/jpeg", size: 10 }),
        'field "filename" must not be empty',
        "filename",
      ],
      [
        "a nested field",
        alice.request("POST", `/v1/uploads/${pending.id}/complete`, { json: { parts: [{ partNumber: 1 }] } }),
        'field "parts[0].etag" is required',
        "parts[0].etag",
      ],
      [
        "a number out of range",
        alice.request("GET", "/v1/images?limit=1000"),
        'query parameter "limit" must be at most 100',
        "limit",
      ],
      [
        "a body that is not an object",
        alice.request("POST", "/v1/uploads", { json: [1, 2] }),
        "the body must be a JSON object",
        undefined,
      ],
    ];
    for (const [what, request, detail, field] of cases) {
      const res = await request;
      expect(res.status, what).toBe(400);
      const problem = res.body as Problem;
      expect(problem.code, what).toBe("validation_failed");
      expect(problem.detail, what).toBe(detail);
      expect(problem.field, what).toBe(field);
      // Nothing of Ajv's own vocabulary or JSON pointers.
      expect(problem.detail, what).not.toMatch(
        /must be equal to|must NOT|must have required|allowed values|\/body|#\//,
      );
    }
  });
});
