import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api, putTo } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";
import {
  documentValidator,
  fetchDocument,
  type OpenApiDocument,
  responseSchema,
} from "../support/openapi.ts";

/**
 * The document against what the server really answers: every response below is validated with
 * Ajv against the schema the document declares for its operation, status and content type, the
 * way a generated client would read it (enums, nullability, required fields, formats).
 */
describe("OpenAPI conformance of real responses", () => {
  let run: Running;
  let alice: Api;
  let doc: OpenApiDocument;
  let validate: ReturnType<typeof documentValidator>;

  beforeAll(async () => {
    const target = dbTargets()[0];
    if (!target) throw new Error("no database target");
    run = await startImgup(target.make());
    alice = new Api(run.baseUrl, run.alice);
    doc = await fetchDocument(run.baseUrl);
    validate = documentValidator(doc);
  });
  afterAll(async () => run?.stop());

  /** Validates a response against the document's schema for `METHOD /template`; returns its body. */
  async function conforms(
    template: string,
    res: Response | { status: number; headers: Headers; body: unknown },
  ): Promise<unknown> {
    const [method, path] = template.split(" ") as [string, string];
    const body = res instanceof Response ? await res.json() : res.body;
    const responses = doc.paths[path]?.[method.toLowerCase()]?.responses ?? {};
    const status = String(res.status);
    const key = status in responses ? status : `${status[0]}XX`;
    const type = (res.headers.get("content-type") ?? "").split(";")[0] ?? "";
    expect(Object.keys(responses[key]?.content ?? {}), `${template} ${status}: declared types`).toContain(
      type,
    );
    expect(
      validate(responseSchema(path, method.toLowerCase(), key, type), body),
      `${template} ${status}`,
    ).toEqual([]);
    return body;
  }

  it("holds its own examples valid", () => {
    for (const name of ["Image", "Problem"]) {
      const schema = doc.components?.schemas?.[name] as { examples?: unknown[] };
      expect(schema.examples?.length, name).toBeGreaterThan(0);
      for (const example of schema.examples ?? []) {
        expect(validate(`#/components/schemas/${name}`, example), name).toEqual([]);
      }
    }
  });

  it("describes an upload from intent to ready, the list, a change and a signed URL as they are", async () => {
    const bytes = await makeImage("jpeg", 120, 80);
    const intent = await alice.createIntent({
      filename: "c.jpg",
      contentType: "image/jpeg",
      size: bytes.length,
    });
    expect(intent.status).toBe(201);
    await conforms("POST /v1/uploads", intent);
    const id = intent.body.image.id;
    await conforms("GET /v1/images/{id}", await alice.getImage(id));
    expect((await putTo(intent.body.upload, bytes)).status).toBe(200);
    await conforms(
      "POST /v1/uploads/{id}/complete",
      await alice.request("POST", `/v1/uploads/${id}/complete`),
    );
    const ready = await alice.settled(id);
    expect(ready.status).toBe("ready");
    const got = await alice.getImage(id);
    await conforms("GET /v1/images/{id}", got);
    const listed = await alice.request("GET", "/v1/images?limit=5");
    await conforms("GET /v1/images", listed);
    await conforms(
      "PATCH /v1/images/{id}",
      await alice.request("PATCH", `/v1/images/${id}`, { json: { visibility: "private" } }),
    );
    await conforms(
      "POST /v1/images/{id}/urls",
      await alice.request("POST", `/v1/images/${id}/urls`, { json: { spec: "w_40" } }),
    );
    // Deduplicated: the same bytes again, with their hash.
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    const again = await alice.createIntent({
      filename: "again.jpg",
      contentType: "image/jpeg",
      size: bytes.length,
      sha256,
      visibility: "private",
    });
    expect(again.status).toBe(200);
    await conforms("POST /v1/uploads", again);
  });

  it("describes a rejected image with its rejectReason from the enum, and a proxy upload", async () => {
    const junk = Buffer.from("this is not a picture at all, only text pretending to be one");
    const { intent } = await alice.uploadBytes(junk, { filename: "x.jpg", contentType: "image/jpeg" });
    await alice.request("POST", `/v1/uploads/${intent.image.id}/complete`);
    const rejected = await alice.settled(intent.image.id);
    expect(rejected.status).toBe("rejected");
    const body = (await conforms("GET /v1/images/{id}", await alice.getImage(intent.image.id))) as {
      rejectReason: string;
    };
    expect(doc.components?.schemas?.RejectReason?.enum).toContain(body.rejectReason);

    const proxied = await alice.request("POST", "/v1/images?filename=p.png", {
      body: new Uint8Array(await makeImage("png", 40, 30)),
      headers: { "content-type": "image/png" },
    });
    expect(proxied.status).toBe(201);
    await conforms("POST /v1/images", proxied);
  });

  it("describes problems as the problem+json the server sends", async () => {
    const missing = await alice.getImage("01890a5d-ac96-774b-bcce-b302099a8057");
    expect(missing.status).toBe(404);
    await conforms("GET /v1/images/{id}", missing);
    const invalid = await alice.createIntent({ filename: "a.jpg", contentType: "image/jpeg", size: "ten" });
    expect(invalid.status).toBe(400);
    await conforms("POST /v1/uploads", invalid);
    const anonymous = await fetch(`${run.baseUrl}/v1/images`);
    expect(anonymous.status).toBe(401);
    await conforms("GET /v1/images", anonymous);
    const tooBig = await alice.createIntent({ filename: "a.jpg", contentType: "image/jpeg", size: 1e12 });
    expect(tooBig.status).toBe(413);
    await conforms("POST /v1/uploads", tooBig);
    const delivery = await fetch(`${run.baseUrl}/i/01890a5d-ac96-774b-bcce-b302099a8057/thumb`);
    expect(delivery.status).toBe(404);
    await conforms("GET /i/{imageId}/{preset}", delivery);
  });

  it("describes the admin and operations answers", async () => {
    const admin = new Api(
      run.baseUrl,
      (await run.imgup.auth.createKey({ ownerId: "ops", scopes: ["admin"] })).key,
    );
    const created = await admin.request("POST", "/v1/admin/keys", { json: { ownerId: "carol", name: "ci" } });
    expect(created.status).toBe(201);
    await conforms("POST /v1/admin/keys", created);
    await conforms("GET /v1/admin/keys", await admin.request("GET", "/v1/admin/keys?owner=carol"));
    const forbidden = await alice.request("GET", "/v1/admin/keys");
    expect(forbidden.status).toBe(403);
    await conforms("GET /v1/admin/keys", forbidden);
    await conforms(
      "DELETE /v1/owners/{ownerId}/images",
      await admin.request("DELETE", "/v1/owners/carol/images"),
    );
    await conforms("GET /readyz", await fetch(`${run.baseUrl}/readyz`));
    await conforms("GET /healthz", await fetch(`${run.baseUrl}/healthz`));
  });
});
