import { createHash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { type AppError, ERRORS } from "../domain/errors.ts";

export interface UploadMeterOptions {
  /** More bytes than this fail the stream (413) the moment they arrive. */
  limit: number;
  /** How many leading bytes `head` collects (magic-byte sniffing); 0 for none. */
  headBytes?: number;
  /** Called with each chunk's length as it is read (the bytes-read metric). */
  onBytes?: (bytes: number) => void;
}

/**
 * Counts, caps and hashes the bytes of a proxy upload on their way to the storage, holding at most
 * one chunk. The latest chunk is held back until the next one arrives or the body ends, so a
 * declared SHA-256 is checked before the storage has seen every byte: a mismatch fails the write
 * and never becomes an object (S3 only commits a PUT once it has the declared length).
 */
export class UploadMeter extends Transform {
  size = 0;
  /** Lower-case hex, once the body ended. */
  sha256: string | null = null;
  /** The first error this stream failed with: the limit, a hash mismatch, or the client's body. */
  failure: Error | null = null;
  /** The first `headBytes` bytes (fewer if the body is shorter). */
  readonly head: Promise<Buffer>;

  private readonly hash = createHash("sha256");
  private held: Buffer | null = null;
  private expected: string | null = null;
  private headChunks: Buffer[] | null = [];
  private headLength = 0;
  private settleHead!: { resolve: (head: Buffer) => void; reject: (err: Error) => void };

  constructor(private readonly opts: UploadMeterOptions) {
    super();
    this.head = new Promise<Buffer>((resolve, reject) => {
      this.settleHead = { resolve, reject };
    });
    // Nobody may be waiting for the head when the stream fails.
    this.head.catch(() => undefined);
    if (!opts.headBytes) this.resolveHead();
  }

  /**
   * The SHA-256 the client declared (lower-case hex). When the body already ended (a short body
   * buffered before anyone read it) the check happens here, before the storage reads anything.
   */
  expectSha256(sha256: string): void {
    this.expected = sha256;
    if (this.sha256 !== null && this.sha256 !== sha256) throw this.mismatch();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    this.opts.onBytes?.(chunk.length);
    if (this.size > this.opts.limit) {
      const { limit } = this.opts;
      done(
        ERRORS.payloadTooLarge(`the body is larger than the limit of ${limit} bytes`, {
          extra: { maxBytes: limit },
        }),
      );
      return;
    }
    this.hash.update(chunk);
    if (this.headChunks) {
      this.headChunks.push(chunk);
      this.headLength += chunk.length;
      if (this.headLength >= (this.opts.headBytes ?? 0)) this.resolveHead();
    }
    const previous = this.held;
    this.held = chunk;
    done(null, previous ?? undefined);
  }

  override _flush(done: TransformCallback): void {
    this.resolveHead();
    if (this.size === 0) {
      done(ERRORS.validation("the body is empty: send the image bytes"));
      return;
    }
    this.sha256 = this.hash.digest("hex");
    if (this.expected !== null && this.expected !== this.sha256) {
      done(this.mismatch());
      return;
    }
    done(null, this.held ?? undefined);
    this.held = null;
  }

  override _destroy(err: Error | null, done: (error?: Error | null) => void): void {
    if (err) {
      this.failure ??= err;
      this.settleHead.reject(err);
    }
    this.held = null;
    this.headChunks = null;
    done(err);
  }

  private resolveHead(): void {
    if (!this.headChunks) return;
    const head = Buffer.concat(this.headChunks, this.headLength);
    this.headChunks = null;
    this.settleHead.resolve(head.subarray(0, this.opts.headBytes ?? 0));
  }

  private mismatch(): AppError {
    return ERRORS.hashMismatch(`declared ${this.expected}, the body's is ${this.sha256}`);
  }
}
