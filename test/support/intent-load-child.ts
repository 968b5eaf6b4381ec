/**
 * The outage test's load generator, in a process of its own so that its timers and sockets do not
 * compete with the server's event loop (on a loaded machine they starved it). Fires intents at a
 * steady rate, tagging each with the phase the parent last announced, until told to stop; then
 * waits for every request in flight and sends the outcomes back.
 * Usage (fork with --import tsx): intent-load-child.ts BASE_URL API_KEY RATE BODY_JSON
 * Messages in: { phase: string } | { stop: true }. Out: { progress } every 250 ms, then { outcomes }.
 */
export interface LoadOutcome {
  phase: string;
  status: number;
  /** The problem's code of a refusal, for the report. */
  code?: string;
  id?: string;
  upload?: { url: string; method: string; headers: Record<string, string> };
}

export interface LoadProgress {
  sent: number;
  settled: number;
  byStatus: Record<string, number>;
}

export type LoadMessage = { progress: LoadProgress } | { outcomes: LoadOutcome[] };

const [baseUrl, key, rateArg, bodyJson] = process.argv.slice(2);
if (!baseUrl || !key || !rateArg || !bodyJson) throw new Error("usage: BASE_URL API_KEY RATE BODY_JSON");
const rate = Number(rateArg);
const send = (m: LoadMessage) => process.send?.(m);

let phase = "before";
let stopping = false;
const outcomes: LoadOutcome[] = [];
const byStatus: Record<string, number> = {};
const inflight = new Set<Promise<void>>();

async function fire(tag: string): Promise<void> {
  let outcome: LoadOutcome;
  try {
    const res = await fetch(`${baseUrl}/v1/uploads`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: bodyJson,
    });
    const body = (await res.json().catch(() => ({}))) as {
      image?: { id?: string };
      upload?: LoadOutcome["upload"];
      code?: string;
    };
    outcome = { phase: tag, status: res.status, id: body.image?.id, upload: body.upload, code: body.code };
  } catch {
    outcome = { phase: tag, status: 0 };
  }
  outcomes.push(outcome);
  byStatus[outcome.status] = (byStatus[outcome.status] ?? 0) + 1;
}

const started = performance.now();
let sent = 0;
const ticker = setInterval(() => {
  if (stopping) return;
  const due = Math.floor(((performance.now() - started) / 1000) * rate);
  for (; sent < due; sent++) {
    const p = fire(phase);
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  }
}, 5);
const progress = setInterval(
  () => send({ progress: { sent, settled: outcomes.length, byStatus: { ...byStatus } } }),
  250,
);

process.on("message", (m: { phase?: string; stop?: boolean }) => {
  if (m.phase) phase = m.phase;
  if (m.stop && !stopping) {
    stopping = true;
    clearInterval(ticker);
    void (async () => {
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
      clearInterval(progress);
      // Exit only once the (large) message is flushed to the parent.
      process.send?.({ outcomes } satisfies LoadMessage, undefined, undefined, () => process.disconnect?.());
    })();
  }
});
