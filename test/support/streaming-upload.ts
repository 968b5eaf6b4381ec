import http from "node:http";

export interface StreamedAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON when the answer is JSON, else the text. */
  body: Record<string, unknown> & { code?: string };
  /** Bytes this client had written to the socket when the answer arrived (or the socket closed). */
  bytesWritten: number;
  /** Whether the whole body was sent before the answer. */
  completed: boolean;
}

/** `total` bytes as repeats of one chunk: a 200 MB body costs the client one 64 KiB buffer. */
export function* repeated(chunk: Buffer, total: number): Generator<Buffer> {
  for (let sent = 0; sent < total; sent += chunk.length) {
    yield chunk.length <= total - sent ? chunk : chunk.subarray(0, total - sent);
  }
}

/**
 * POSTs a body chunk by chunk over node:http (chunked transfer unless Content-Length is given),
 * like a client streaming a file. It stops sending the moment the server answers or closes, as
 * curl does, and reports how much it had written by then.
 */
export function streamUpload(
  url: string,
  opts: { headers: Record<string, string>; chunks: Iterable<Buffer> | AsyncIterable<Buffer> },
): Promise<StreamedAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", headers: opts.headers, agent: false });
    let answered = false;
    let completed = false;
    let bytesWritten = 0;
    const written = () => req.socket?.bytesWritten ?? 0;
    req.on("response", (res) => {
      answered = true;
      bytesWritten = written();
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("error", () => undefined);
      res.on("close", () => {
        const text = Buffer.concat(parts).toString();
        const json = String(res.headers["content-type"] ?? "").includes("json") && text;
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: json ? JSON.parse(text) : { text },
          bytesWritten,
          completed,
        });
      });
    });
    // Writing after the server answered and closed fails (EPIPE, ECONNRESET): the answer counts.
    req.on("error", (err) => {
      if (!answered) reject(err);
    });
    const settled = () =>
      new Promise<void>((done) => {
        const finish = () => {
          req.off("drain", finish);
          req.off("response", finish);
          req.off("close", finish);
          done();
        };
        req.once("drain", finish);
        req.once("response", finish);
        req.once("close", finish);
      });
    void (async () => {
      for await (const chunk of opts.chunks) {
        if (answered || req.destroyed) return;
        if (!req.write(chunk)) await settled();
      }
      if (answered || req.destroyed) return;
      completed = true;
      req.end();
    })().catch(reject);
  });
}
