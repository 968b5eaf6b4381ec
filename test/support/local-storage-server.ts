import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { isAppError } from "../../src/domain/errors.ts";
import type { LocalObjectStore, LocalUploadResponse } from "../../src/storage/local.ts";

/** What the server answered to one request, for tests that look past the status. */
export interface ServedResult {
  method: string;
  status: number;
  code?: string;
}

export interface LocalStorageServer {
  /** http://127.0.0.1:<port>: pass as publicBaseUrl. */
  baseUrl: string;
  /** The server starts before the store (the store needs the URL), so the store is attached after. */
  attach(store: LocalObjectStore): void;
  results: ServedResult[];
  /** Resolves once at least n requests have been answered (or failed). */
  waitForResults(n: number, timeoutMs?: number): Promise<void>;
  /** Requests whose headers reached the handler (to act mid-request on an event, not after a sleep). */
  readonly started: () => number;
  close(): Promise<void>;
}

/**
 * A minimal stand-in for the production Fastify route: `PUT /storage/*` → handleUpload,
 * `POST /storage-post` → handlePostUpload, AppErrors rendered as JSON `{code}` with their status.
 */
export async function startLocalStorageServer(): Promise<LocalStorageServer> {
  let store: LocalObjectStore | undefined;
  const results: ServedResult[] = [];
  let started = 0;

  const route = async (req: IncomingMessage): Promise<LocalUploadResponse> => {
    if (!store) throw new Error("no store attached");
    const url = new URL(req.url ?? "/", "http://localhost");
    if (req.method === "PUT" && url.pathname.startsWith("/storage/")) {
      return store.handleUpload({
        method: "PUT",
        key: decodeURIComponent(url.pathname.slice("/storage/".length)),
        query: Object.fromEntries(url.searchParams),
        headers: req.headers,
        body: req,
      });
    }
    if (req.method === "POST" && url.pathname === "/storage-post") {
      return store.handlePostUpload({ headers: req.headers, body: req });
    }
    return { status: 404, headers: {} };
  };

  const server = createServer((req, res) => {
    started++;
    route(req).then(
      (result) => {
        results.push({ method: req.method ?? "", status: result.status });
        res.writeHead(result.status, result.headers).end();
      },
      async (err: unknown) => {
        const status = isAppError(err) ? err.status : 500;
        const code = isAppError(err) ? err.code : "internal";
        results.push({ method: req.method ?? "", status, code });
        await drain(req);
        respond(res, status, { code });
      },
    );
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    attach: (s) => {
      store = s;
    },
    results,
    started: () => started,
    // Generous: only a request that never finishes should fail it, however loaded the machine.
    async waitForResults(n, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (results.length < n) {
        if (Date.now() > deadline)
          throw new Error(`only ${results.length} of ${n} results after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
}

/**
 * A refused upload may be refused before its body was read. Answering then and closing would make
 * the client see a reset instead of the status, so the rest of the body is read and discarded.
 */
async function drain(req: IncomingMessage): Promise<void> {
  if (req.complete || req.destroyed) return;
  req.resume();
  await Promise.race([once(req, "end"), once(req, "close"), new Promise((r) => setTimeout(r, 5000))]).catch(
    () => {},
  );
}

function respond(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}
