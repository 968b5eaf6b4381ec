import { constants } from "node:zlib";
import compress from "@fastify/compress";
import type { App } from "../types.ts";

/** Text the API and the demo page send; images and other already-compressed types never match. */
const COMPRESSIBLE =
  /^(application\/(json|problem\+json|javascript)|text\/(html|css|javascript|plain)|image\/svg\+xml)\b/;

/**
 * Compresses JSON and the demo page's assets (br or gzip, from Accept-Encoding; Vary says so).
 * Delivery (/i/) and the storage endpoints are left out whole: their bodies are images streamed
 * from the storage, where compression gains nothing and would drop Content-Length and break byte
 * ranges. Request bodies are never decompressed: uploads are bytes to store as sent, and a
 * compressed body would slip past the body limits. Registered before any route.
 */
export async function registerCompression(app: App): Promise<void> {
  // Added before the plugin's own onRoute hook, so it reads what this one sets.
  app.addHook("onRoute", (route) => {
    route.decompress = false;
    if (route.url.startsWith("/i/") || route.url.startsWith("/storage")) route.compress = false;
  });
  await app.register(compress, {
    global: true,
    threshold: 1024,
    encodings: ["br", "gzip"],
    customTypes: COMPRESSIBLE,
    // Quality 4: most of brotli's gain on JSON for a fraction of the default 11's CPU.
    brotliOptions: { params: { [constants.BROTLI_PARAM_QUALITY]: 4 } },
  });
}
