/**
 * The browser side of the SDK's Chromium tests, bundled by esbuild (platform browser, ESM) and
 * served on imgup's own origin: the shared scenarios, a real Uppy (@uppy/core + @uppy/aws-s3 with
 * the adapter), and an upload of whatever file the test put into the page's <input>.
 */
import AwsS3 from "@uppy/aws-s3";
import Uppy from "@uppy/core";
import { createClient, type ImageView, type UploadProgress, uppyAwsS3Options } from "../../client/index.ts";
import {
  FIXTURES,
  type FixtureKind,
  PART_SIZE,
  SCENARIOS,
  type ScenarioContext,
  type ScenarioName,
} from "../../client/test-scenarios/index.ts";

export interface Tokens {
  token: string;
  otherToken: string;
}

let fixtureCount = 0;

function contextFor(tokens: Tokens): ScenarioContext {
  return {
    baseUrl: "",
    ...tokens,
    async file(kind: FixtureKind) {
      const res = await fetch(`/__sdk-test/fixtures/${kind}?n=${fixtureCount++}`);
      if (!res.ok) throw new Error(`fixture ${kind}: ${res.status}`);
      return new Blob([await res.arrayBuffer()], { type: FIXTURES[kind].type });
    },
    async probe(blob: Blob) {
      const bitmap = await createImageBitmap(blob);
      const size = { width: bitmap.width, height: bitmap.height };
      bitmap.close();
      return size;
    },
    fetch: window.fetch.bind(window),
  };
}

/** Runs one shared scenario; resolves with its error message, or null when it passed. */
async function run(name: ScenarioName, tokens: Tokens): Promise<string | null> {
  try {
    await SCENARIOS[name](contextFor(tokens));
    return null;
  } catch (err) {
    return err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ""}` : String(err);
  }
}

/** A real Uppy uploads one fixture through the adapter; imgup must then have it ready. */
async function uppyUpload(tokens: Tokens, kind: "jpeg" | "large") {
  const client = createClient({
    baseUrl: "",
    token: tokens.token,
    pollIntervalMs: 50,
    multipartThresholdBytes: PART_SIZE,
  });
  const adapter = uppyAwsS3Options(client);
  const uppy = new Uppy({ id: `uppy-${kind}-${fixtureCount}` }).use(AwsS3, adapter);
  const data = await contextFor(tokens).file(kind);
  const fileId = uppy.addFile({ name: `uppy-${kind}`, type: data.type, data, source: "test" });
  const progress: number[] = [];
  uppy.on("upload-progress", (_file, p) => progress.push(p.bytesUploaded));
  const result = await uppy.upload();
  const failed = result?.failed?.map((f) => String(f.error)) ?? [];
  const file = uppy.getFile(fileId);
  const image = failed.length === 0 ? await adapter.waitForReady(file) : null;
  const key = (file.response?.body as { key?: string } | undefined)?.key ?? null;
  uppy.destroy();
  return {
    failed,
    image,
    key,
    multipart: adapter.shouldUseMultipart(file),
    size: data.size,
    progress: progress.at(-1) ?? 0,
  };
}

/** Uploads the file chosen in #file (Chromium's disk-backed File) with the SDK. */
async function uploadChosenFile(token: string): Promise<{ image: ImageView; log: UploadProgress[] }> {
  const input = document.querySelector<HTMLInputElement>("#file");
  const file = input?.files?.[0];
  if (!file) throw new Error("no file chosen");
  const log: UploadProgress[] = [];
  let last = "";
  const client = createClient({ baseUrl: "", token, pollIntervalMs: 200 });
  const { image } = await client.upload(file, {
    onProgress: (p) => {
      // One entry per phase and per whole MiB (the log itself must not cost memory), each the
      // latest of its MiB, so the final figure is never dropped.
      const mark = `${p.phase}:${Math.floor(p.loaded / 1048576)}`;
      if (mark === last) log[log.length - 1] = p;
      else log.push(p);
      last = mark;
    },
  });
  return { image, log };
}

const api = { run, uppyUpload, uploadChosenFile };
export type SdkTestApi = typeof api;
(window as unknown as { sdkTest: SdkTestApi }).sdkTest = api;
