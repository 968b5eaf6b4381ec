import { lookup as dnsLookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { isPrivateAddress } from "../domain/ip-ranges.ts";
import type { SendResult, WebhookTransport } from "../services/webhook-ports.ts";

export type Resolver = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

const defaultResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/** An address the URL must not reach, found while resolving it. */
export class PrivateAddressError extends Error {
  override name = "PrivateAddressError";
}

/**
 * Resolves the host and refuses it when any address is private (unless allowed). Returns the
 * addresses to connect to, so the connection goes to exactly what was checked (no DNS rebinding
 * between the check and the connect).
 */
export async function checkedAddresses(
  hostname: string,
  opts: { allowPrivate: boolean; resolve?: Resolver },
): Promise<Array<{ address: string; family: number }>> {
  const host = hostname.replace(/^\[|\]$/g, "");
  const family = isIP(host);
  const found = family ? [{ address: host, family }] : await (opts.resolve ?? defaultResolver)(host);
  if (found.length === 0) throw new Error(`${host} does not resolve`);
  if (!opts.allowPrivate) {
    const bad = found.find((a) => isPrivateAddress(a.address));
    if (bad)
      throw new PrivateAddressError(`${host} resolves to ${bad.address}, a private or reserved address`);
  }
  return found;
}

/**
 * POSTs webhooks with Node's http client: the DNS answer is checked and pinned, redirects are not
 * followed (a 3xx is a failure), the whole exchange has a deadline and at most `maxResponseBytes` of
 * the answer are read.
 */
export class HttpWebhookTransport implements WebhookTransport {
  constructor(
    private readonly opts: {
      allowPrivate: boolean;
      timeoutMs: number;
      maxResponseBytes?: number;
      resolve?: Resolver;
      userAgent?: string;
    },
  ) {}

  async send(req: { url: string; headers: Record<string, string>; body: string }): Promise<SendResult> {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      return { ok: false, statusCode: null, error: "invalid URL" };
    }
    let addresses: Array<{ address: string; family: number }>;
    try {
      addresses = await checkedAddresses(url.hostname, this.opts);
    } catch (err) {
      return { ok: false, statusCode: null, error: (err as Error).message };
    }
    const first = addresses[0] as { address: string; family: number };
    // Node calls lookup only for host names; IP literals were checked above and connect as they are.
    const lookup: LookupFunction = (_host, options, cb) => {
      if ((options as { all?: boolean }).all) (cb as (e: null, a: typeof addresses) => void)(null, addresses);
      else cb(null, first.address, first.family);
    };
    const lib = url.protocol === "https:" ? https : http;
    const body = Buffer.from(req.body);
    return new Promise<SendResult>((resolve) => {
      let settled = false;
      const done = (r: SendResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const request = lib.request(url, {
        method: "POST",
        agent: false,
        lookup,
        headers: {
          ...req.headers,
          "content-type": "application/json",
          "content-length": String(body.length),
          "user-agent": this.opts.userAgent ?? "imgup-webhooks",
        },
      });
      const timer = setTimeout(() => {
        request.destroy();
        done({ ok: false, statusCode: null, error: `no answer within ${this.opts.timeoutMs} ms` });
      }, this.opts.timeoutMs);
      request.on("error", (err) => done({ ok: false, statusCode: null, error: err.message }));
      request.on("response", (res) => {
        const status = res.statusCode ?? 0;
        let read = 0;
        const cap = this.opts.maxResponseBytes ?? 4096;
        const finish = () => {
          request.destroy();
          const ok = status >= 200 && status < 300;
          const error = ok
            ? null
            : status >= 300 && status < 400
              ? `HTTP ${status}: redirects are not followed`
              : `HTTP ${status}`;
          done({ ok, statusCode: status, error });
        };
        res.on("data", (chunk: Buffer) => {
          read += chunk.length;
          if (read >= cap) finish();
        });
        res.on("end", finish);
        res.on("error", finish);
      });
      request.end(body);
    });
  }
}
