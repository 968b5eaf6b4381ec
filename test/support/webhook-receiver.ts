import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  /** On the clock given to startReceiver (the sender's clock, for the timestamp tolerance). */
  receivedAt: number;
}

/** A webhook receiver on 127.0.0.1: records what arrives; while `down`, answers 503 and records nothing. */
export async function startReceiver(now: () => number = Date.now) {
  const received: Received[] = [];
  const state = { down: false, refused: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (state.down) {
        state.refused++;
        res.writeHead(503).end("down");
        return;
      }
      received.push({
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        receivedAt: now(),
      });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
