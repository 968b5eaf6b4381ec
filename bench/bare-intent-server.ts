/**
 * The baseline of bench/intents.ts: the least an "intent" endpoint could be on this machine, a
 * Fastify route doing one INSERT into a table of its own in the same PostgreSQL, through a pg Pool
 * of imgup's size, answering 201 JSON. Run as a child process by the benchmark:
 *   DATABASE_URL=… BENCH_SCHEMA=… DATABASE_POOL_SIZE=10 PORT=… node --import tsx bench/bare-intent-server.ts
 */
import { randomUUID } from "node:crypto";
import Fastify from "fastify";
import pg from "pg";

const { DATABASE_URL, BENCH_SCHEMA, DATABASE_POOL_SIZE, PORT } = process.env;
if (!DATABASE_URL || !BENCH_SCHEMA || !PORT || !/^[a-z_][a-z0-9_]*$/.test(BENCH_SCHEMA)) {
  console.error("DATABASE_URL, BENCH_SCHEMA (an SQL identifier) and PORT are required");
  process.exit(2);
}

const pool = new pg.Pool({
  connectionString: DATABASE_URL,
  max: Number(DATABASE_POOL_SIZE ?? 10),
  options: `-c search_path=${BENCH_SCHEMA}`,
});
await pool.query(`create schema if not exists ${BENCH_SCHEMA}`);
await pool.query(`create table if not exists bare_intents (
  id uuid primary key,
  owner_id text not null,
  filename text not null,
  content_type text not null,
  size bigint not null,
  sha256 text,
  idempotency_key text,
  created_at timestamptz not null default now()
)`);

const app = Fastify({ logger: false });

interface Body {
  filename: string;
  contentType: string;
  size: number;
  sha256?: string;
}

app.get("/healthz", async () => ({ status: "ok" }));

app.post<{ Body: Body }>(
  "/v1/uploads",
  {
    schema: {
      body: {
        type: "object",
        required: ["filename", "contentType", "size"],
        additionalProperties: false,
        properties: {
          filename: { type: "string", minLength: 1, maxLength: 1024 },
          contentType: { type: "string", minLength: 1, maxLength: 255 },
          size: { type: "integer", minimum: 0 },
          sha256: { type: "string", minLength: 64, maxLength: 64 },
        },
      },
    },
  },
  async (request, reply) => {
    const { filename, contentType, size, sha256 } = request.body;
    const key = request.headers["idempotency-key"];
    const { rows } = await pool.query<{ id: string; created_at: Date }>(
      `insert into bare_intents (id, owner_id, filename, content_type, size, sha256, idempotency_key)
       values ($1, $2, $3, $4, $5, $6, $7) returning id, created_at`,
      [
        randomUUID(),
        "bench",
        filename,
        contentType,
        size,
        sha256 ?? null,
        typeof key === "string" ? key : null,
      ],
    );
    const row = rows[0] as { id: string; created_at: Date };
    return reply.code(201).send({ image: { id: row.id, status: "pending", createdAt: row.created_at } });
  },
);

await app.listen({ host: "127.0.0.1", port: Number(PORT) });
const close = async () => {
  await app.close();
  await pool.end();
  process.exit(0);
};
process.once("SIGTERM", close);
process.once("SIGINT", close);
