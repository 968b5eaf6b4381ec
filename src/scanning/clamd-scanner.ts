import net from "node:net";
import { type ClamdAddress, describeClamdAddress } from "./clamd-address.ts";
import {
  type MalwareScanner,
  ScannerFailedError,
  ScannerTimeoutError,
  ScannerUnavailableError,
  type ScanVerdict,
} from "./malware-scanner.ts";

export interface ClamdScannerOptions {
  address: ClamdAddress;
  /** Hard bound on one scan: connect, send, clamd's work and its reply. */
  timeoutMs: number;
  /** Bytes per INSTREAM chunk (clamd reads each whole; small chunks let it refuse early). */
  chunkBytes?: number;
}

/** clamd answers a few dozen bytes; anything much longer is not clamd. */
const MAX_REPLY_BYTES = 4096;
const DEFAULT_CHUNK_BYTES = 64 * 1024;

/**
 * A small clamd client: one connection per scan, `zINSTREAM` with the bytes in chunks of a 4-byte
 * big-endian length and the data, ended by a zero-length chunk; clamd replies `stream: OK`,
 * `stream: <signature> FOUND` or `<message> ERROR`, NUL-terminated, and closes. Written here
 * rather than taken from npm: the maintained choices wrap clamscan binaries and files, the small
 * INSTREAM ones (clamdjs and forks) are unmaintained since 2018, untyped, and answer a timeout
 * or size-limit error as a reply string the caller must parse.
 */
export class ClamdScanner implements MalwareScanner {
  readonly #opts: Required<ClamdScannerOptions>;

  constructor(opts: ClamdScannerOptions) {
    const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isInteger(chunkBytes) || chunkBytes < 1)
      throw new Error("chunkBytes must be a positive integer");
    this.#opts = { ...opts, chunkBytes };
  }

  get target(): string {
    return describeClamdAddress(this.#opts.address);
  }

  async scan(bytes: Buffer, signal?: AbortSignal): Promise<ScanVerdict> {
    return parseReply(await this.#exchange(bytes, signal));
  }

  /** Sends the bytes and resolves with clamd's reply (without its NUL); rejects with a ScannerError. */
  #exchange(bytes: Buffer, signal?: AbortSignal): Promise<string> {
    signal?.throwIfAborted();
    const { address, timeoutMs, chunkBytes } = this.#opts;
    return new Promise<string>((resolve, reject) => {
      const socket =
        address.kind === "unix" ? net.connect(address.path) : net.connect(address.port, address.host);
      const replies: Buffer[] = [];
      let replyBytes = 0;
      let settled = false;
      const finish = (err: Error | null, reply?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        socket.destroy();
        if (err) reject(err);
        else resolve(reply ?? "");
      };
      const timer = setTimeout(
        () =>
          finish(new ScannerTimeoutError(`clamd (${this.target}) gave no verdict within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onAbort = () => finish(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
      signal?.addEventListener("abort", onAbort, { once: true });

      socket.on("data", (chunk: Buffer) => {
        replies.push(chunk);
        replyBytes += chunk.length;
        const all = Buffer.concat(replies, replyBytes);
        const end = all.indexOf(0);
        if (end >= 0) finish(null, all.subarray(0, end).toString("utf8"));
        else if (replyBytes > MAX_REPLY_BYTES)
          finish(new ScannerFailedError(`clamd (${this.target}) sent an overlong reply`));
      });
      // clamd closes after its reply; a close without one (or a reset mid-upload) is no verdict.
      socket.on("close", () => {
        if (replyBytes > 0) {
          finish(null, Buffer.concat(replies, replyBytes).toString("utf8").replace(/\0$/, ""));
          return;
        }
        finish(new ScannerUnavailableError(`clamd (${this.target}) closed the connection without a verdict`));
      });
      socket.on("error", (err: NodeJS.ErrnoException) => {
        // A reply already received wins over the write error of clamd closing after it (EPIPE).
        if (replyBytes > 0) return;
        finish(
          new ScannerUnavailableError(`clamd (${this.target}): ${err.code ?? err.message}`, { cause: err }),
        );
      });
      socket.once("connect", () => {
        void sendStream(socket, bytes, chunkBytes).catch(() => {
          // Reported by the socket's error/close handlers above.
        });
      });
    });
  }
}

/** Writes the INSTREAM command and the framed chunks, waiting for drain (bounded memory). */
async function sendStream(socket: net.Socket, bytes: Buffer, chunkBytes: number): Promise<void> {
  const write = (data: Buffer | string) =>
    new Promise<void>((resolve, reject) => {
      if (socket.destroyed || !socket.writable) {
        reject(new Error("socket closed"));
        return;
      }
      if (socket.write(data)) resolve();
      else {
        const onDrain = () => {
          socket.off("close", onClose);
          resolve();
        };
        const onClose = () => {
          socket.off("drain", onDrain);
          reject(new Error("socket closed"));
        };
        socket.once("drain", onDrain);
        socket.once("close", onClose);
      }
    });
  await write("zINSTREAM\0");
  for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
    const chunk = bytes.subarray(offset, Math.min(offset + chunkBytes, bytes.length));
    await write(frameLength(chunk.length));
    await write(chunk);
  }
  await write(frameLength(0));
}

function frameLength(length: number): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(length);
  return header;
}

/** `stream: OK`, `stream: <signature> FOUND`, or an error (`... ERROR`, anything else). */
export function parseReply(reply: string): ScanVerdict {
  const text = reply.trim();
  if (text === "stream: OK") return { infected: false };
  const found = /^stream: (.+) FOUND$/.exec(text);
  if (found?.[1]) return { infected: true, signature: cleanSignature(found[1]) };
  if (text.endsWith("ERROR")) throw new ScannerFailedError(`clamd: ${printable(text)}`);
  throw new ScannerFailedError(`clamd: unexpected reply ${JSON.stringify(printable(text))}`);
}

/** The signature name as shown to the owner: printable and short (it comes from a database we do not control). */
function cleanSignature(name: string): string {
  return printable(name).slice(0, 200);
}

function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  return text.replace(/[\u0000-\u001f\u007f]/g, "?").slice(0, 500);
}
