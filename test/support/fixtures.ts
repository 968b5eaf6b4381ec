import sharp from "sharp";

/** A small photo-like image (a gradient, so encoders do real work) in the given format. */
export async function makeImage(
  format: "jpeg" | "png" | "webp" | "gif" | "avif",
  width = 64,
  height = 48,
): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      raw[i] = (x * 255) / width;
      raw[i + 1] = (y * 255) / height;
      raw[i + 2] = 128;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .toFormat(format)
    .toBuffer();
}

/** A valid little JPEG whose SOF header claims huge dimensions: the pixel limit must trip before decoding. */
export async function jpegClaimingDimensions(width: number, height: number): Promise<Buffer> {
  const jpeg = Buffer.from(await makeImage("jpeg", 16, 16));
  for (let i = 2; i < jpeg.length - 9; i++) {
    if (jpeg[i] === 0xff && (jpeg[i + 1] === 0xc0 || jpeg[i + 1] === 0xc2)) {
      jpeg.writeUInt16BE(height, i + 5);
      jpeg.writeUInt16BE(width, i + 7);
      return jpeg;
    }
  }
  throw new Error("no SOF marker");
}
