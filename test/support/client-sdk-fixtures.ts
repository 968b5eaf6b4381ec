import { execFile } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { promisify } from "node:util";
import sharp from "sharp";
import { FIXTURES, type FixtureKind } from "../../client/test-scenarios/index.ts";

const run = promisify(execFile);

/** Server settings the scenarios assume: 5 MiB parts (PART_SIZE), and no rate limit in the way. */
export const SCENARIO_ENV = {
  IMGUP_MULTIPART_PART_SIZE: String(5 * 1024 * 1024),
  IMGUP_RATE_LIMIT_PER_SEC: "1000",
  IMGUP_RATE_LIMIT_BURST: "1000",
};

/**
 * Fresh bytes for the SDK scenarios' fixtures, different on every call (noise), so no scenario
 * deduplicates against another's upload. Sizes and types are FIXTURES'.
 */
export async function fixtureBytes(kind: FixtureKind): Promise<Buffer> {
  const { width, height } = FIXTURES[kind];
  switch (kind) {
    case "jpeg":
      return sharp(randomBytes(width * height * 3), { raw: { width, height, channels: 3 } })
        .jpeg()
        .toBuffer();
    case "png":
      return sharp(randomBytes(width * height * 3), { raw: { width, height, channels: 3 } })
        .png()
        .toBuffer();
    case "large":
      // Uncompressed noise: a real, decodable PNG of 16 MB.
      return sharp(randomBytes(width * height * 4), { raw: { width, height, channels: 4 } })
        .png({ compressionLevel: 0 })
        .toBuffer();
    case "notAnImage":
      return Buffer.from(`this is text, not a PNG ${randomUUID()}\n`.repeat(20));
  }
}

export async function fixtureBlob(kind: FixtureKind): Promise<Blob> {
  return new Blob([new Uint8Array(await fixtureBytes(kind))], { type: FIXTURES[kind].type });
}

export async function probeBlob(blob: Blob): Promise<{ width: number; height: number }> {
  const meta = await sharp(new Uint8Array(await blob.arrayBuffer())).metadata();
  return { width: meta.width ?? 0, height: meta.height ?? 0 };
}

/**
 * A ~200 MB valid PNG (7000×7000 RGBA noise, stored uncompressed) written to `path`: big enough
 * that holding it in memory would show, within the default pixel limit (49 MP). Made in a child
 * process, so the 200 MB of noise never inflates the memory of the process that measures.
 */
export async function writeHugePng(path: string): Promise<number> {
  const script = `
    import { randomBytes } from "node:crypto";
    import sharp from "sharp";
    const [width, height] = [7000, 7000];
    const info = await sharp(randomBytes(width * height * 4), { raw: { width, height, channels: 4 } })
      .png({ compressionLevel: 0 })
      .toFile(process.argv[1]);
    console.log(info.size);`;
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script, path], {
    cwd: process.cwd(),
  });
  return Number(stdout.trim());
}
