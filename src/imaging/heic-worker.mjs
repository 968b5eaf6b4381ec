// HEIC decoding in a worker thread (plain JS: workers get no TypeScript loader under vitest or tsx).
// libheif-js is libheif + libde265 compiled to WASM; a decode is synchronous and takes ~0.7 s for
// 12 MP, so it must not run on the event loop that serves requests. Protocol: see heic.ts.
import { parentPort } from "node:worker_threads";
import libheif from "libheif-js/wasm-bundle.js";

const OK = libheif.heif_error_code.heif_error_Ok;

function decode({ input, maxPixels }) {
  const ctx = libheif.heif_context_alloc();
  let handle = null;
  let image = null;
  try {
    const read = libheif.heif_context_read_from_memory(ctx, input);
    if (read.code !== OK) return { error: `not a readable HEIF: ${read.message}` };
    handle = libheif.heif_js_context_get_primary_image_handle(ctx);
    if (!handle || handle.code !== undefined) {
      const msg = handle?.message ?? "no primary image";
      handle = null;
      return { error: `no primary image: ${msg}` };
    }
    // Dimensions after the container's rotation/mirror, from the header: nothing decoded yet.
    const width = libheif.heif_image_handle_get_width(handle);
    const height = libheif.heif_image_handle_get_height(handle);
    const hasAlpha = Boolean(libheif.heif_image_handle_has_alpha_channel(handle));
    if (!(width > 0 && height > 0)) return { error: `no dimensions (${width}x${height})` };
    if (width * height > maxPixels) return { tooManyPixels: true, width, height };
    image = libheif.heif_js_decode_image2(
      handle,
      libheif.heif_colorspace.heif_colorspace_RGB,
      libheif.heif_chroma.heif_chroma_interleaved_RGBA,
    );
    if (!image || image.code !== undefined || !Array.isArray(image.channels)) {
      const msg = image?.message ?? "decoder returned nothing";
      image = null;
      return { error: `does not decode: ${msg}` };
    }
    const plane = image.channels.find((c) => c.id === libheif.heif_channel.heif_channel_interleaved);
    if (!plane || plane.width !== width || plane.height !== height) {
      return { error: "decoded planes do not match the header" };
    }
    // The plane is a view into the WASM heap, freed below: copy it out (packing rows if padded).
    const rowBytes = width * 4;
    let data;
    if (plane.stride === rowBytes) {
      data = plane.data.slice(0, rowBytes * height);
    } else {
      data = new Uint8Array(rowBytes * height);
      for (let y = 0; y < height; y++) {
        data.set(plane.data.subarray(y * plane.stride, y * plane.stride + rowBytes), y * rowBytes);
      }
    }
    return { width, height, hasAlpha, data };
  } finally {
    if (image?.image) libheif.heif_image_release(image.image);
    if (handle) libheif.heif_image_handle_release(handle);
    libheif.heif_context_free(ctx);
  }
}

parentPort.on("message", (msg) => {
  let reply;
  try {
    reply = decode(msg);
  } catch (err) {
    // A WASM trap leaves the module in an unknown state: the host replaces this worker.
    reply = { error: `decoder crashed: ${err instanceof Error ? err.message : String(err)}`, fatal: true };
  }
  const transfer = reply.data ? [reply.data.buffer] : [];
  parentPort.postMessage({ id: msg.id, ...reply }, transfer);
});
