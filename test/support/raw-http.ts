import { connect, type Socket } from "node:net";

/** A hand-written HTTP/1.1 exchange on one socket: what a slow or hostile client sends. */
export interface RawExchange {
  socket: Socket;
  /** Everything the server sent, as text. */
  received: () => string;
  /** Resolves when the socket is closed (by either side). */
  closed: Promise<void>;
  /** The status of the server's answer, if one came. */
  status: () => number | null;
}

/** allowHalfOpen: keep sending after the server's FIN (what a client mid-upload does). */
export async function rawConnect(
  baseUrl: string,
  opts: { allowHalfOpen?: boolean } = {},
): Promise<RawExchange> {
  const { hostname, port } = new URL(baseUrl);
  const socket = connect({ host: hostname, port: Number(port), allowHalfOpen: opts.allowHalfOpen ?? false });
  let text = "";
  socket.on("data", (d: Buffer) => {
    text += d.toString("latin1");
  });
  // A reset by the server is one way of closing; the test only cares that it is closed.
  socket.on("error", () => undefined);
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return {
    socket,
    received: () => text,
    closed,
    status: () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      return m ? Number(m[1]) : null;
    },
  };
}

/** Waits for the close, failing after boundMs (only a real hang reaches it). */
export async function closedWithin(ex: RawExchange, boundMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`socket still open after ${boundMs} ms`)), boundMs);
  });
  try {
    await Promise.race([ex.closed, bound]);
  } finally {
    clearTimeout(timer);
  }
}
