import { timingSafeEqual } from "node:crypto";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { ERRORS } from "../../domain/errors.ts";
import { parseStorageEvents } from "../../events/parse-storage-event.ts";
import { addSharedSchemas, problem, ref } from "../schemas.ts";
import type { App, HttpDeps } from "../types.ts";

const RETRY = { headers: { "Retry-After": "5" } };

export const StorageEventsResultSchema = Type.Object(
  {
    received: Type.Integer({ description: "object-created records in the body" }),
    enqueued: Type.Integer({ description: "records that queued processing" }),
    duplicates: Type.Integer({ description: "records already seen" }),
    buffered: Type.Integer({
      description: "records buffered while the database is unreachable (queued once it answers again)",
    }),
    ignored: Type.Integer({ description: "records of another bucket, or of no upload" }),
    skipped: Type.Integer({ description: "records that are not object-created events" }),
  },
  { $id: "StorageEventsResult", description: "What became of the records" },
);

/**
 * POST /v1/events/storage: S3-format notifications pushed by MinIO, Ceph RGW or SNS. Every record
 * becomes a de-duplicated job, or is buffered while the database is down, before the 2xx, so an
 * acknowledged event is never lost; when neither works the answer is 503 and the sender retries.
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
  addSharedSchemas(app, [StorageEventsResultSchema]);
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
          operationId: "receiveStorageEvents",
          tags: ["Storage events"],
          summary: "Storage event webhook (S3 notification format); bearer token or ?token=",
          description:
            "Where MinIO, Ceph RGW or SNS push object-created notifications, so processing starts the " +
            "moment an upload lands. Authenticated by IMGUP_EVENTS_TOKEN (not an API key), as a bearer " +
            "token or as ?token= for senders that cannot set headers. Every record is queued (or, while the " +
            "database is unreachable, buffered and queued on recovery) before the 2xx: an acknowledged " +
            "event is never lost. When a record can be neither, the answer is 503 with Retry-After and the " +
            "sender should retry the whole body (records are de-duplicated). Only served when " +
            "IMGUP_EVENTS_TOKEN is set.",
          security: [{ eventsBearer: [] }, { eventsToken: [] }],
          querystring: Type.Object({ token: Type.Optional(Type.String({ maxLength: 512 })) }),
          body: Type.Object(
            {},
            {
              additionalProperties: true,
              description: "S3 event notification ({Records:[…]}), an SNS envelope of one, or EventBridge",
            },
          ),
          response: {
            200: ref(StorageEventsResultSchema, { description: "Every record is queued or accounted for" }),
            401: problem("The token does not match IMGUP_EVENTS_TOKEN"),
            "4xx": problem("The body is not a storage event (invalid_event)"),
            503: problem("A record could be neither queued nor buffered: retry after Retry-After seconds"),
          },
        },
      },
      async (request) => {
        const { events, skipped } = parseStorageEvents(request.body);
        const counts = {
          received: events.length,
          enqueued: 0,
          duplicates: 0,
          buffered: 0,
          ignored: 0,
          skipped,
        };
        const bucket = deps.config.storage.driver === "s3" ? deps.config.storage.s3.bucket : undefined;
        for (const event of events) {
          if (bucket && event.bucket && event.bucket !== bucket) {
            counts.ignored++;
            continue;
          }
          const outcome = await deps.storageEvents.objectCreated(event).catch((err: unknown) => {
            // Records before this one are recorded; a retry of the whole body finds them duplicates.
            request.log.warn({ err, ...counts }, "storage event neither queued nor buffered");
            throw ERRORS.unavailable("the event could not be recorded; retry", RETRY);
          });
          if (outcome === "enqueued") counts.enqueued++;
          else if (outcome === "duplicate") counts.duplicates++;
          else if (outcome === "buffered") counts.buffered++;
          else counts.ignored++;
        }
        request.log.info(counts, "storage events received");
        return counts;
      },
    );
  });
}
