/** What sending one webhook came to. */
export interface SendResult {
  /** A 2xx answer. */
  ok: boolean;
  /** null: no HTTP answer (refused address, DNS, connect, timeout). */
  statusCode: number | null;
  error: string | null;
}

/** The outbound HTTP of webhooks (webhooks/http-transport.ts; tests may record instead). */
export interface WebhookTransport {
  send(req: { url: string; headers: Record<string, string>; body: string }): Promise<SendResult>;
}

/** Checks a URL an owner registers: scheme, and (unless allowed) no private address. Throws AppError. */
export type WebhookUrlCheck = (url: string) => Promise<void>;
