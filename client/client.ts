import { ImgupError } from "./errors.ts";
import { Api, seg } from "./http.ts";
import type { FetchInit } from "./platform.ts";
import { UploadProtocol, type WaitOptions } from "./protocol.ts";
import { chooseTransfer, type Transfer } from "./transfer.ts";
import type { ImageView, ImgupClient, ImgupClientOptions, Visibility } from "./types.ts";
import { runUpload, type UploadSettings } from "./upload.ts";

const MiB = 1024 * 1024;

/** What the Uppy adapter needs beyond the public client: the upload protocol itself. */
export interface ClientInternals {
  protocol: UploadProtocol;
  settings: UploadSettings;
  wait: (signal?: AbortSignal) => WaitOptions;
}

const internals = new WeakMap<ImgupClient, ClientInternals>();

export function internalsOf(client: ImgupClient): ClientInternals {
  const found = internals.get(client);
  if (!found) throw new TypeError("not a client made by createClient()");
  return found;
}

export function createClient(opts: ImgupClientOptions): ImgupClient {
  // Called as a plain function: a browser's fetch throws "Illegal invocation" when called as a
  // method of the options object.
  const userFetch = opts.fetch;
  const customFetch = userFetch
    ? (((input: string, init?: RequestInit) =>
        userFetch(input, init as FetchInit)) as unknown as typeof fetch)
    : undefined;
  const fetchFn = customFetch ?? globalThis.fetch.bind(globalThis);
  const settings: UploadSettings = {
    multipartThresholdBytes: opts.multipartThresholdBytes ?? 32 * MiB,
    partConcurrency: Math.max(1, opts.partConcurrency ?? 4),
    retries: Math.max(0, opts.retries ?? 4),
    pollIntervalMs: opts.pollIntervalMs ?? 400,
    readyTimeoutMs: opts.readyTimeoutMs ?? 5 * 60_000,
  };
  const api = new Api({
    baseUrl: opts.baseUrl,
    token: opts.token,
    fetch: fetchFn,
    retries: settings.retries,
  });
  const protocol = new UploadProtocol(api);
  const transfer: Transfer = chooseTransfer(customFetch);

  const getImage = (id: string) => protocol.getImage(id);
  const readyImage = async (image: ImageView) => {
    // A private image's URLs carry an expiring signature: ask for fresh ones.
    const fresh = image.visibility === "private" || !image.urls ? await getImage(image.id) : image;
    if (!fresh.urls) throw new ImgupError(409, "image_not_ready", `image ${image.id} is ${fresh.status}`);
    return fresh.urls;
  };

  const client: ImgupClient = {
    upload: (file, uploadOpts = {}) => runUpload(protocol, transfer, settings, file, uploadOpts),
    getImage,
    async listImages(page = {}) {
      const query = new URLSearchParams();
      if (page.limit !== undefined) query.set("limit", String(page.limit));
      if (page.cursor !== undefined) query.set("cursor", page.cursor);
      if (page.ref !== undefined) query.set("ref", page.ref);
      const qs = query.toString() ? `?${query}` : "";
      return (await api.request<{ items: ImageView[]; nextCursor: string | null }>("GET", `/v1/images${qs}`))
        .body;
    },
    async claim(id, claimOpts = {}) {
      const body = {
        ...(claimOpts.ref === undefined ? {} : { ref: claimOpts.ref }),
        ...(claimOpts.replace === undefined ? {} : { replace: claimOpts.replace }),
      };
      return (await api.request<{ image: ImageView }>("POST", `/v1/images/${seg(id)}/claim`, { body })).body
        .image;
    },
    async deleteImage(id) {
      await api.request("DELETE", `/v1/images/${seg(id)}`, { doneOnRetry: [404] });
    },
    async setVisibility(id: string, visibility: Visibility) {
      return (await api.request<ImageView>("PATCH", `/v1/images/${seg(id)}`, { body: { visibility } })).body;
    },
    async url(image, presetOrSpec = "original") {
      if (presetOrSpec === "original") return (await readyImage(image)).original;
      const knownPreset = image.urls
        ? Object.hasOwn(image.urls.presets, presetOrSpec)
        : !presetOrSpec.includes("_");
      if (knownPreset) {
        const preset = (await readyImage(image)).presets[presetOrSpec];
        if (preset) return preset;
      }
      const res = await api.request<{ url: string }>("POST", `/v1/images/${seg(image.id)}/urls`, {
        body: { spec: presetOrSpec },
      });
      return res.body.url;
    },
  };
  internals.set(client, {
    protocol,
    settings,
    wait: (signal) => ({
      pollIntervalMs: settings.pollIntervalMs,
      timeoutMs: settings.readyTimeoutMs,
      signal,
    }),
  });
  return client;
}
