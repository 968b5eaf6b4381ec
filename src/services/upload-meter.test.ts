import { createHash } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { UploadMeter } from "./upload-meter.ts";

const hex = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Runs chunks through a meter into a sink; returns what the sink received and how it ended. */
async function run(meter: UploadMeter, chunks: Buffer[]) {
  const received: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      received.push(chunk);
      done();
    },
  });
  const error = await pipeline(Readable.from(chunks), meter, sink).then(
    () => null,
    (err: Error & { code?: string; status?: number }) => err,
  );
  return { received: Buffer.concat(received), error };
}

describe("UploadMeter", () => {
  const chunks = [Buffer.from("abc"), Buffer.from("defg"), Buffer.from("hij")];
  const whole = Buffer.concat(chunks);

  it("passes every byte through, counting and hashing them", async () => {
    const meter = new UploadMeter({ limit: 10 });
    const { received, error } = await run(meter, chunks);
    expect(error).toBeNull();
    expect(received.equals(whole)).toBe(true);
    expect(meter.size).toBe(10);
    expect(meter.sha256).toBe(hex(whole));
  });

  it("fails with 413 on the byte past the limit and counts what it read", async () => {
    let read = 0;
    const meter = new UploadMeter({ limit: 6, onBytes: (n) => (read += n) });
    const { received, error } = await run(meter, chunks);
    expect(error).toMatchObject({ status: 413, code: "payload_too_large" });
    expect(meter.failure).toBe(error);
    expect(read).toBe(7);
    expect(received.length).toBeLessThanOrEqual(3);
  });

  it("never lets the last chunk through when the declared SHA-256 does not match", async () => {
    const meter = new UploadMeter({ limit: 100 });
    meter.expectSha256(hex(Buffer.from("other")));
    const { received, error } = await run(meter, chunks);
    expect(error).toMatchObject({ status: 422, code: "hash_mismatch" });
    expect(received.equals(whole.subarray(0, 7))).toBe(true);
  });

  it("checks a hash declared after a short body already ended, before anyone read it", async () => {
    const meter = new UploadMeter({ limit: 100 });
    Readable.from([whole]).pipe(meter);
    await new Promise((r) => meter.once("prefinish", r));
    await new Promise((r) => setImmediate(r));
    expect(() => meter.expectSha256(hex(Buffer.from("other")))).toThrow(/declared/);
    expect(() => meter.expectSha256(hex(whole))).not.toThrow();
  });

  it("collects the first bytes for sniffing, and fewer when the body is shorter", async () => {
    const meter = new UploadMeter({ limit: 100, headBytes: 5 });
    const done = run(meter, chunks);
    expect((await meter.head).toString()).toBe("abcde");
    await done;
    const short = new UploadMeter({ limit: 100, headBytes: 64 });
    await run(short, chunks);
    expect((await short.head).toString()).toBe("abcdefghij");
  });

  it("refuses an empty body", async () => {
    const { error } = await run(new UploadMeter({ limit: 100 }), []);
    expect(error).toMatchObject({ status: 400, code: "validation_failed" });
  });
});
