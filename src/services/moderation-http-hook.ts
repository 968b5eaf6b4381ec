import { randomUUID } from "node:crypto";
import { signatureHeader } from "../domain/webhook-signature.ts";
import {
  type ModerationDecision,
  type ModerationHook,
  type ModerationRequest,
  ModerationUnavailableError,
  parseDecision,
} from "./moderation.ts";

/** A decision is a few bytes; more is not read. */
const MAX_ANSWER_BYTES = 64 * 1024;

export interface HttpModerationHookOptions {
  url: string;
  /** whsec_ secret: the call carries Standard Webhooks headers, like imgup's outgoing webhooks. */
  secret: string;
  /** Hard deadline of the whole exchange, answer included. */
  timeoutMs: number;
  now?: () => number;
}

/**
 * The hook over HTTP: POST of the JSON request, signed (webhook-id, webhook-timestamp,
 * webhook-signature), under one deadline. Anything but a 2xx answer holding a decision is
 * ModerationUnavailableError; redirects are not followed. The secret never reaches an error text.
 */
export class HttpModerationHook implements ModerationHook {
  private readonly now: () => number;

  constructor(private readonly opts: HttpModerationHookOptions) {
    this.now = opts.now ?? Date.now;
  }

  async review(request: ModerationRequest, signal?: AbortSignal): Promise<ModerationDecision> {
    const body = JSON.stringify(request);
    const id = `msg_${randomUUID()}`;
    const ts = Math.floor(this.now() / 1000);
    const deadline = AbortSignal.timeout(this.opts.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, deadline]) : deadline;
    let text: string;
    let status: number;
    try {
      const res = await fetch(this.opts.url, {
        method: "POST",
        redirect: "manual",
        signal: combined,
        headers: {
          "content-type": "application/json",
          "user-agent": "imgup-moderation",
          "webhook-id": id,
          "webhook-timestamp": String(ts),
          "webhook-signature": signatureHeader([this.opts.secret], id, ts, body),
        },
        body,
      });
      status = res.status;
      text = await readBounded(res);
    } catch (err) {
      // The job's own abort (lease lost, shutdown) is not the hook's failure.
      signal?.throwIfAborted();
      const why = deadline.aborted ? `no answer within ${this.opts.timeoutMs} ms` : describe(err);
      throw new ModerationUnavailableError(`moderation hook: ${why}`);
    }
    if (status < 200 || status > 299) throw new ModerationUnavailableError(`moderation hook: HTTP ${status}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ModerationUnavailableError("moderation hook: the answer is not JSON");
    }
    const decision = parseDecision(parsed);
    if (!decision) throw new ModerationUnavailableError("moderation hook: the answer is not a decision");
    return decision;
  }
}

async function readBounded(res: Response): Promise<string> {
  if (!res.body) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.length;
    if (total > MAX_ANSWER_BYTES) throw new Error(`the answer is over ${MAX_ANSWER_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}
