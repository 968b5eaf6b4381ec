import { createHash, randomBytes } from "node:crypto";
import { openAsBlob } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { sha256OfBlob } from "./hash.ts";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** A Blob whose stream is not a byte stream (as in runtimes without BYOB readers). */
class PlainStreamBlob extends Blob {
  override stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    const inner = super.stream().getReader();
    return new ReadableStream({
      pull: async (controller) => {
        const { value, done } = await inner.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
    });
  }
}

describe("sha256OfBlob", () => {
  const bytes = new Uint8Array(randomBytes(100_003));

  it.each([
    ["an empty blob", new Uint8Array(0), undefined],
    ["one chunk", bytes, undefined],
    ["chunks that do not divide the size", bytes, 4096],
    ["chunks that divide the size", bytes.subarray(0, 8192 * 3), 8192],
    ["one-byte chunks", bytes.subarray(0, 997), 1],
  ])("hashes %s like node:crypto", async (_name, data, chunkBytes) => {
    const seen: number[] = [];
    const hex = await sha256OfBlob(new Blob([data]), { chunkBytes, onProgress: (n) => seen.push(n) });
    expect(hex).toBe(sha256(data));
    expect(seen.at(-1) ?? 0).toBe(data.length);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
  });

  it("hashes without a byte stream too, slice by slice", async () => {
    const seen: number[] = [];
    const hex = await sha256OfBlob(new PlainStreamBlob([bytes]), {
      chunkBytes: 30_000,
      onProgress: (n) => seen.push(n),
    });
    expect(hex).toBe(sha256(bytes));
    expect(seen).toEqual([30_000, 60_000, 90_000, 100_003]);
  });

  it("hashes a file-backed blob (fs.openAsBlob), whose reads come in small pieces", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "imgup-hash-"));
    try {
      const data = new Uint8Array(randomBytes(3 * 1024 * 1024 + 17));
      await writeFile(path.join(dir, "f"), data);
      const blob = await openAsBlob(path.join(dir, "f"));
      expect(await sha256OfBlob(blob, { chunkBytes: 1024 * 1024 })).toBe(sha256(data));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("stops with an AbortError when the signal fires", async () => {
    const controller = new AbortController();
    const hashing = sha256OfBlob(new Blob([bytes]), {
      chunkBytes: 1000,
      onProgress: (n) => n >= 5000 && controller.abort(),
      signal: controller.signal,
    });
    await expect(hashing).rejects.toMatchObject({ name: "AbortError" });
  });
});
