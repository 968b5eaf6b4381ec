import { timingSafeEqual } from "node:crypto";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { ERRORS } from "../../domain/errors.ts";
import { parseStorageEvents } from "../../events/parse-storage-event.ts";
import { BearerSecurity, ProblemSchema } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

/**
 * POST /v1/events/storage: S3-format notifications pushed by MinIO, Ceph RGW or SNS. Every record
 * becomes a de-duplicated job before the 2xx, so an acknowledged event is never lost.
 * Only registered when IMGUP_EVENTS_TOKEN is set.
 */
export function registerStorageEventsWebhook(app: App, deps: HttpDeps): void {
  const token = deps.config.events.webhookToken;
  if (!token) return;
  const expected = Buffer.from(token);
  const authorized = (given: string | undefined) => {
    const b = Buffer.from(given ?? "");
    return b.length === expected.length && timingSafeEqual(b, expected);
  };
  app.register(async (plain) => {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
    // SNS posts JSON as text/plain; senders differ, the body is JSON either way.
    scope.addContentTypeParser(
      ["text/plain", "application/x-www-form-urlencoded"],
      { parseAs: "string" },
      (_r, body, done) => {
        try {
          done(null, JSON.parse(String(body)));
        } catch {
          done(ERRORS.invalidEvent("the body is not JSON"), undefined);
        }
      },
    );
    scope.post(
      "/v1/events/storage",
      {
        bodyLimit: 4 * 1024 * 1024,
        // Its own credential, checked before the body is read (Ceph RGW's push endpoint cannot send
        // headers, so the token may come in the query).
        config: { public: true },
        onRequest: async (request) => {
          const header = request.headers.authorization?.replace(/^Bearer\s+/i, "");
          const query = new URL(request.url, "http://x").searchParams.get("token") ?? undefined;
          if (!authorized(header) && !authorized(query)) {
            throw ERRORS.invalidToken("the storage event token does not match");
          }
        },
        schema: {
          summary: "Storage event webhook (S3 notification format); bearer token or ?token=",
          security: [...BearerSecurity, {}],
          querystring: Type.Object({ token: Type.Optional(Type.String({ maxLength: 512 })) }),
          body: Type.Object(
            {},
            {
              additionalProperties: true,
              description: "S3 event notification ({Records:[…]}), an SNS envelope of one, or EventBridge",
            },
          ),
          response: {
            200: Type.Object({
              received: Type.Integer(),
              enqueued: Type.Integer(),
              duplicates: Type.Integer(),
              ignored: Type.Integer(),
              skipped: Type.Integer(),
            }),
            "4xx": ProblemSchema,
          },
        },
      },
      async (request) => {
        const { events, skipped } = parseStorageEvents(request.body);
        const counts = { received: events.length, enqueued: 0, duplicates: 0, ignored: 0, skipped };
        const bucket = deps.config.storage.driver === "s3" ? deps.config.storage.s3.bucket : undefined;
        for (const event of events) {
          if (bucket && event.bucket && event.bucket !== bucket) {
            counts.ignored++;
            continue;
          }
          const outcome = await deps.storageEvents.objectCreated(event);
          if (outcome === "enqueued") counts.enqueued++;
          else if (outcome === "duplicate") counts.duplicates++;
          else counts.ignored++;
        }
        request.log.info(counts, "storage events received");
        return counts;
      },
    );
  });
}
