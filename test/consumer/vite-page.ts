/**
 * The throwaway Vite app's own glue (src/main.ts there): it drives the docs' snippets, which sit
 * next to it as src/sdk-browser.ts and src/uppy-dashboard.ts, and hands results to the test.
 * Kept as a string: it is compiled by the consumer project's tsconfig, not this repository's.
 */
export const MAIN_TS = `import type { ImageView, UploadProgress } from "@imgup/client";
import { connect, showThumb, uploadPicked } from "./sdk-browser.ts";
import { mountUploader } from "./uppy-dashboard.ts";

const params = new URLSearchParams(location.hash.slice(1));
const baseUrl = params.get("imgup") ?? "";
const token = params.get("key") ?? "";
const client = connect(baseUrl, token);
const bar = document.querySelector<HTMLProgressElement>("#bar");
const target = document.querySelector<HTMLElement>("#uppy");
if (!bar || !target) throw new Error("page markup missing");
const progressBar = bar;

const ready: ImageView[] = [];
const uppy = mountUploader(target, baseUrl, token, (image) => ready.push(image));

/** A PNG of random pixels: no two calls dedup against each other. */
function randomPng(name: string): Promise<File> {
  const canvas = document.createElement("canvas");
  canvas.width = 48;
  canvas.height = 32;
  const ctx = canvas.getContext("2d");
  if (!ctx) throw new Error("no 2d context");
  const pixels = ctx.createImageData(48, 32);
  crypto.getRandomValues(pixels.data);
  for (let i = 3; i < pixels.data.length; i += 4) pixels.data[i] = 255;
  ctx.putImageData(pixels, 0, 0);
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(new File([b], name, { type: "image/png" })) : reject(new Error("toBlob"))), "image/png"),
  );
}

const api = {
  async dedup() {
    const file = await randomPng("same.png");
    const events: UploadProgress[] = [];
    const first = await client.upload(file, { onProgress: (p) => events.push(p) });
    const again = await uploadPicked(client, file, progressBar);
    const separate = await uploadPicked(client, file, progressBar, true);
    return {
      phases: [...new Set(events.map((e) => e.phase))],
      uploadingEvents: events.filter((e) => e.phase === "uploading").length,
      bar: progressBar.value,
      ids: [first.image.id, again.image.id, separate.image.id],
      deduplicated: [first.deduplicated, again.deduplicated, separate.deduplicated],
    };
  },
  async privateLink() {
    const { image } = await client.upload(await randomPng("private.png"), { visibility: "private" });
    const url = await client.url(image);
    const res = await fetch(url);
    return { url, status: res.status, type: res.headers.get("content-type"), bytes: (await res.arrayBuffer()).byteLength };
  },
  async canvas() {
    const result = await client.upload(await randomPng("public.png"), { visibility: "public" });
    const img = await showThumb(client, result);
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext("2d");
    if (!ctx) throw new Error("no 2d context");
    ctx.drawImage(img, 0, 0);
    try {
      const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      return { src: img.src, width: canvas.width, opaque: data.filter((_, i) => i % 4 === 3 && data[i] === 255).length };
    } catch (err) {
      return { src: img.src, width: canvas.width, error: String(err) };
    }
  },
  async uppyUpload() {
    const data = await randomPng("uppy.png");
    uppy.addFile({ name: data.name, type: data.type, data });
    const result = await uppy.upload();
    for (let i = 0; i < 600 && ready.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    const image = ready[0];
    return { successful: result?.successful?.length ?? 0, status: image?.status, width: image?.width, styled: getComputedStyle(document.querySelector(".uppy-Dashboard-inner") ?? document.body).position };
  },
  async refused(otherBaseUrl: string) {
    const started = Date.now();
    try {
      await connect(otherBaseUrl, token).listImages();
      return { code: "none", ms: Date.now() - started };
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return { code: e.code ?? "?", message: e.message ?? "", ms: Date.now() - started };
    }
  },
};

declare global {
  interface Window {
    imgupTest: typeof api;
  }
}
window.imgupTest = api;
`;

export const INDEX_HTML = `<!doctype html>
<html lang="en">
  <head><meta charset="UTF-8" /><title>imgup consumer</title></head>
  <body>
    <progress id="bar" max="1" value="0"></progress>
    <div id="uppy"></div>
    <script type="module" src="/src/main.ts"></script>
  </body>
</html>
`;

/** create-vite's vanilla-ts template tsconfig.json, as it ships. */
export const VITE_TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    useDefineForClassFields: true,
    module: "ESNext",
    lib: ["ES2022", "DOM", "DOM.Iterable"],
    types: ["vite/client"],
    skipLibCheck: true,
    moduleResolution: "bundler",
    allowImportingTsExtensions: true,
    verbatimModuleSyntax: true,
    moduleDetection: "force",
    noEmit: true,
    strict: true,
    noUnusedLocals: true,
    noUnusedParameters: true,
    erasableSyntaxOnly: true,
    noFallthroughCasesInSwitch: true,
    noUncheckedSideEffectImports: true,
  },
  include: ["src"],
};
