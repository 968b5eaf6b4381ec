import type { CdnPurgeSettings } from "../config.ts";

/** One HTTP call the purge job makes. Headers may carry a CDN API token: never log them. */
export interface PurgeRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** What one purge is about: the images, and a reference unique to this attempt (CloudFront's CallerReference). */
export interface PurgeTarget {
  imageIds: readonly string[];
  reference: string;
}

/**
 * The surrogate key every public delivery response of an image carries (Surrogate-Key and
 * Cache-Tag): one ban/purge by key covers its presets, its on-the-fly variants and its original,
 * whatever their URLs look like. The id is already in every URL, so the key reveals nothing new.
 */
export function surrogateKey(imageId: string): string {
  return `img-${imageId}`;
}

/** The header the VCL's BAN reads: space-separated surrogate keys (see deploy/varnish/imgup.vcl). */
export const VARNISH_BAN_HEADER = "X-Purge-Keys";

/** Placeholders an `http` template may use; anything else in braces is refused at startup. */
export const TEMPLATE_PLACEHOLDERS = [
  "imageId",
  "surrogateKey",
  "path",
  "publicUrl",
  "host",
  "reference",
] as const;
type Placeholder = (typeof TEMPLATE_PLACEHOLDERS)[number];

const PLACEHOLDER = /\{([A-Za-z]+)\}/g;

/** The placeholders a template names that are not known: a config typo must fail at startup. */
export function unknownPlaceholders(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)]
    .map((m) => m[1] ?? "")
    .filter((name) => !(TEMPLATE_PLACEHOLDERS as readonly string[]).includes(name));
}

/**
 * The calls that purge these images. `varnish`: one BAN per Varnish with every key in one header
 * (the VCL turns it into one ban expression). `http`: one call per image, rendered from the
 * templates, because CDN APIs differ in how (and whether) they batch.
 */
export function renderPurgeRequests(
  settings: CdnPurgeSettings,
  publicUrl: string,
  target: PurgeTarget,
): PurgeRequest[] {
  if (settings.kind === "off" || target.imageIds.length === 0) return [];
  if (settings.kind === "varnish") {
    const keys = target.imageIds.map(surrogateKey).join(" ");
    return settings.varnishUrls.map((url) => ({
      method: "BAN",
      url,
      headers: { [VARNISH_BAN_HEADER]: keys },
      body: undefined,
    }));
  }
  const { http } = settings;
  return target.imageIds.map((imageId, i) => {
    const values: Record<Placeholder, string> = {
      imageId,
      surrogateKey: surrogateKey(imageId),
      path: `/i/${imageId}/`,
      publicUrl,
      host: new URL(publicUrl).host,
      reference: target.imageIds.length === 1 ? target.reference : `${target.reference}-${i}`,
    };
    return {
      method: http.method,
      url: fill(http.url, values, encodeURI),
      headers: Object.fromEntries(Object.entries(http.headers).map(([k, v]) => [k, fill(v, values)])),
      body: http.body === undefined ? undefined : fill(http.body, values),
    };
  });
}

/**
 * Values go in as they are (ids, keys and references are [A-Za-z0-9_-], the public URL a URL),
 * so a JSON or XML body template needs no escaping; the URL is still encoded for safety.
 */
function fill(template: string, values: Record<Placeholder, string>, encode = (s: string) => s): string {
  return template.replace(PLACEHOLDER, (whole, name: string) =>
    Object.hasOwn(values, name) ? encode(values[name as Placeholder]) : whole,
  );
}
