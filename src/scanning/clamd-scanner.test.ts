import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseClamdAddress } from "./clamd-address.ts";
import { ClamdScanner, parseReply } from "./clamd-scanner.ts";
import { ScannerFailedError, ScannerTimeoutError, ScannerUnavailableError } from "./malware-scanner.ts";

/** What the fake clamd read from one connection. */
interface Received {
  command: string;
  chunkLengths: number[];
  data: Buffer;
  terminated: boolean;
}

type Behaviour =
  /** Answer this once the zero-length chunk arrived. */
  | { kind: "reply"; reply: (r: Received) => string }
  /** clamd's StreamMaxLength: past `limit` bytes, the error reply and a close. */
  | { kind: "limit"; limit: number }
  | { kind: "silent" }
  | { kind: "close" };

/** A tiny clamd speaking INSTREAM, parsing the framing strictly so the test sees what was sent. */
async function fakeClamd(behaviour: Behaviour, listen: { path?: string } = {}) {
  const received: Received[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    if (behaviour.kind === "close") {
      socket.destroy();
      return;
    }
    const r: Received = { command: "", chunkLengths: [], data: Buffer.alloc(0), terminated: false };
    received.push(r);
    let buf = Buffer.alloc(0);
    let commandDone = false;
    socket.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!commandDone) {
        const nul = buf.indexOf(0);
        if (nul < 0) return;
        r.command = buf.subarray(0, nul + 1).toString("latin1");
        buf = buf.subarray(nul + 1);
        commandDone = true;
      }
      while (!r.terminated && buf.length >= 4) {
        const len = buf.readUInt32BE(0);
        if (len === 0) {
          r.terminated = true;
          buf = buf.subarray(4);
          break;
        }
        if (behaviour.kind === "limit" && r.data.length + len > behaviour.limit) {
          socket.end("INSTREAM size limit exceeded. ERROR\0");
          return;
        }
        if (buf.length < 4 + len) return;
        r.chunkLengths.push(len);
        r.data = Buffer.concat([r.data, buf.subarray(4, 4 + len)]);
        buf = buf.subarray(4 + len);
      }
      if (r.terminated && behaviour.kind === "reply") socket.end(`${behaviour.reply(r)}\0`);
    });
  });
  await new Promise<void>((resolve) => {
    if (listen.path) server.listen(listen.path, resolve);
    else server.listen(0, "127.0.0.1", resolve);
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  const close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  cleanups.push(close);
  return { port, received, close };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const scannerAt = (port: number, opts: { timeoutMs?: number; chunkBytes?: number } = {}) =>
  new ClamdScanner({
    address: { kind: "tcp", host: "127.0.0.1", port },
    timeoutMs: opts.timeoutMs ?? 10_000,
    chunkBytes: opts.chunkBytes,
  });

describe("ClamdScanner (INSTREAM against a fake clamd)", () => {
  it("sends zINSTREAM, the bytes in length-prefixed chunks and a zero-length chunk; OK is clean", async () => {
    const clamd = await fakeClamd({ kind: "reply", reply: () => "stream: OK" });
    const bytes = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251));
    const verdict = await scannerAt(clamd.port, { chunkBytes: 4096 }).scan(bytes);
    expect(verdict).toEqual({ infected: false });
    const [r] = clamd.received;
    expect(r?.command).toBe("zINSTREAM\0");
    expect(r?.chunkLengths).toEqual([4096, 4096, 1808]);
    expect(r?.terminated).toBe(true);
    expect(r?.data.equals(bytes)).toBe(true);
  });

  it("an empty upload is just the terminating chunk", async () => {
    const clamd = await fakeClamd({ kind: "reply", reply: () => "stream: OK" });
    expect(await scannerAt(clamd.port).scan(Buffer.alloc(0))).toEqual({ infected: false });
    expect(clamd.received[0]?.chunkLengths).toEqual([]);
    expect(clamd.received[0]?.terminated).toBe(true);
  });

  it("FOUND gives the signature name", async () => {
    const clamd = await fakeClamd({
      kind: "reply",
      reply: (r) => (r.data.includes("EVIL") ? "stream: Imgup.Test.Marker.UNOFFICIAL FOUND" : "stream: OK"),
    });
    const scanner = scannerAt(clamd.port);
    expect(await scanner.scan(Buffer.from("a picture with EVIL inside"))).toEqual({
      infected: true,
      signature: "Imgup.Test.Marker.UNOFFICIAL",
    });
    expect(await scanner.scan(Buffer.from("a harmless picture"))).toEqual({ infected: false });
  });

  it("a size-limit error is an error, never clean, though clamd answers while bytes are still being sent", async () => {
    const clamd = await fakeClamd({ kind: "limit", limit: 100_000 });
    const err = await scannerAt(clamd.port, { chunkBytes: 16_384 })
      .scan(Buffer.alloc(2_000_000, 1))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScannerFailedError);
    expect((err as Error).message).toMatch(/size limit exceeded/);
  });

  it("a clamd that never answers hits the hard timeout", async () => {
    const clamd = await fakeClamd({ kind: "silent" });
    const err = await scannerAt(clamd.port, { timeoutMs: 200 })
      .scan(Buffer.from("x"))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScannerTimeoutError);
  });

  it("nobody listening, or a close without a reply, is unavailable", async () => {
    const gone = await fakeClamd({ kind: "silent" });
    await gone.close();
    const refused = await scannerAt(gone.port)
      .scan(Buffer.from("x"))
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ScannerUnavailableError);

    const closing = await fakeClamd({ kind: "close" });
    const closed = await scannerAt(closing.port)
      .scan(Buffer.from("x"))
      .catch((e: unknown) => e);
    expect(closed).toBeInstanceOf(ScannerUnavailableError);
  });

  it("an abort stops the scan with the abort's reason", async () => {
    const clamd = await fakeClamd({ kind: "silent" });
    const controller = new AbortController();
    const pending = scannerAt(clamd.port).scan(Buffer.from("x"), controller.signal);
    controller.abort(new Error("lease lost"));
    await expect(pending).rejects.toThrow("lease lost");
  });

  it("speaks over a Unix socket too", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "imgup-clamd-sock-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const socketPath = path.join(dir, "clamd.ctl");
    await fakeClamd({ kind: "reply", reply: () => "stream: Eicar FOUND" }, { path: socketPath });
    const scanner = new ClamdScanner({ address: parseClamdAddress(`unix:${socketPath}`), timeoutMs: 5000 });
    expect(await scanner.scan(Buffer.from("x"))).toEqual({ infected: true, signature: "Eicar" });
  });
});

describe("parseReply", () => {
  it("reads OK, FOUND and ERROR; anything else is no verdict", () => {
    expect(parseReply("stream: OK")).toEqual({ infected: false });
    expect(parseReply("stream: Win.Test.EICAR_HDB-1 FOUND")).toEqual({
      infected: true,
      signature: "Win.Test.EICAR_HDB-1",
    });
    expect(() => parseReply("INSTREAM size limit exceeded. ERROR")).toThrow(ScannerFailedError);
    expect(() => parseReply("stream: Can't allocate memory ERROR")).toThrow(ScannerFailedError);
    expect(() => parseReply("PONG")).toThrow(ScannerFailedError);
    expect(() => parseReply("")).toThrow(ScannerFailedError);
  });

  it("keeps a signature name printable and short", () => {
    const v = parseReply(`stream: Bad\u001b[31mName${"x".repeat(400)} FOUND`);
    expect(v.infected && v.signature).toMatch(/^Bad\?\[31mNamex+$/);
    expect(v.infected && v.signature.length).toBe(200);
  });
});

describe("parseClamdAddress", () => {
  it("accepts tcp://host:port and unix:/path", () => {
    expect(parseClamdAddress("tcp://127.0.0.1:3310")).toEqual({ kind: "tcp", host: "127.0.0.1", port: 3310 });
    expect(parseClamdAddress("tcp://[::1]:3310")).toEqual({ kind: "tcp", host: "::1", port: 3310 });
    expect(parseClamdAddress("unix:/run/clamav/clamd.ctl")).toEqual({
      kind: "unix",
      path: "/run/clamav/clamd.ctl",
    });
    expect(parseClamdAddress("unix:///run/clamav/clamd.ctl")).toEqual({
      kind: "unix",
      path: "/run/clamav/clamd.ctl",
    });
  });

  it("refuses what is not one of them", () => {
    for (const bad of [
      "clamd:3310",
      "tcp://host",
      "tcp://host:0",
      "tcp://host:3310/x",
      "unix:relative",
      "http://h:1",
    ]) {
      expect(() => parseClamdAddress(bad), bad).toThrow();
    }
  });
});
