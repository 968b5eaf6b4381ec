/**
 * Upload profiles: named policies (avatar, product…) an intent may name. A profile only narrows the
 * deployment's policy, never widens it. Pure: no I/O.
 */
import type { Visibility } from "./image.ts";

/** What an operator or admin writes (JSON), validated. */
export interface UploadProfile {
  name: string;
  maxBytes?: number;
  /** Canonical MIME types (image/jpeg…); written as short names (jpeg) or MIME types. */
  allowedTypes?: string[];
  maxWidth?: number;
  maxHeight?: number;
  maxPixels?: number;
  /** Preset names generated before the image turns ready; replaces the deployment's list. */
  eagerPresets?: string[];
  /** Forced: an intent naming another visibility is refused. */
  visibility?: Visibility;
  claimRequired?: boolean;
  /** How long an unclaimed image of this profile lives; the deployment's default otherwise. */
  claimTtlSeconds?: number;
}

/**
 * The limits the worker applies to one image: the profile merged with the deployment policy at
 * intent time and stored on the row, so an edit or deletion of the profile never changes what an
 * upload that already holds a signed URL is judged by.
 */
export interface ProfileLimits {
  maxBytes: number;
  allowedTypes: string[];
  maxWidth: number | null;
  maxHeight: number | null;
  maxPixels: number;
  eagerPresets: string[] | null;
}

export interface DeploymentPolicy {
  maxBytes: number;
  maxPixels: number;
  allowedTypes: readonly string[];
}

export const PROFILE_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

const SHORT_TYPES: Record<string, string> = {
  jpeg: "image/jpeg",
  jpg: "image/jpeg",
  png: "image/png",
  webp: "image/webp",
  avif: "image/avif",
  gif: "image/gif",
  heic: "image/heic",
  heif: "image/heic",
  "image/jpg": "image/jpeg",
  "image/heif": "image/heic",
};

const FIELDS = new Set([
  "maxBytes",
  "allowedTypes",
  "maxWidth",
  "maxHeight",
  "maxPixels",
  "eagerPresets",
  "visibility",
  "claimRequired",
  "claimTtlSeconds",
]);

export interface ProfileContext {
  /** Types the deployment accepts (IMGUP_ALLOWED_TYPES): a profile may only pick among them. */
  supportedTypes: readonly string[];
  /** Configured preset names: eager presets must be among them. */
  presetNames: readonly string[];
}

/** Validates one profile's JSON; throws an Error whose message names the field at fault. */
export function parseProfile(name: string, raw: unknown, ctx: ProfileContext): UploadProfile {
  if (!PROFILE_NAME.test(name))
    throw new Error(`profile name "${name.slice(0, 70)}" is not [a-z0-9_-]{1,64}`);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new Error(`profile ${name}: expected a JSON object`);
  const o = raw as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!FIELDS.has(key)) throw new Error(`profile ${name}: unknown field "${key}"`);
  }
  const p: UploadProfile = { name };
  const int = (field: keyof UploadProfile, min: number, max: number) => {
    const v = o[field];
    if (v === undefined) return undefined;
    if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max)
      throw new Error(`profile ${name}: ${field} must be an integer ${min}..${max}`);
    return v as number;
  };
  const set = <K extends keyof UploadProfile>(k: K, v: UploadProfile[K] | undefined) => {
    if (v !== undefined) p[k] = v;
  };
  set("maxBytes", int("maxBytes", 1, Number.MAX_SAFE_INTEGER));
  set("maxWidth", int("maxWidth", 1, 1_000_000));
  set("maxHeight", int("maxHeight", 1, 1_000_000));
  set("maxPixels", int("maxPixels", 1, Number.MAX_SAFE_INTEGER));
  set("claimTtlSeconds", int("claimTtlSeconds", 1, 365 * 24 * 3600));
  if (o.allowedTypes !== undefined) {
    const list = stringList(name, "allowedTypes", o.allowedTypes);
    if (list.length === 0) throw new Error(`profile ${name}: allowedTypes must not be empty`);
    p.allowedTypes = [...new Set(list.map((t) => canonicalType(name, t, ctx)))];
  }
  if (o.eagerPresets !== undefined) {
    const list = stringList(name, "eagerPresets", o.eagerPresets);
    for (const preset of list) {
      if (!ctx.presetNames.includes(preset))
        throw new Error(`profile ${name}: eagerPresets: "${preset}" is not a configured preset`);
    }
    p.eagerPresets = [...new Set(list)];
  }
  if (o.visibility !== undefined) {
    if (o.visibility !== "public" && o.visibility !== "private")
      throw new Error(`profile ${name}: visibility must be public or private`);
    p.visibility = o.visibility;
  }
  if (o.claimRequired !== undefined) {
    if (typeof o.claimRequired !== "boolean")
      throw new Error(`profile ${name}: claimRequired must be a boolean`);
    p.claimRequired = o.claimRequired;
  }
  return p;
}

/** A profile as JSON (what the admin API answers; what parseProfile reads back). */
export function profileJson(p: UploadProfile): Record<string, unknown> {
  const { name: _name, ...rest } = p;
  return rest;
}

/** The limits an intent under this profile (or none) is held to, from intent to worker. */
export function limitsFor(policy: DeploymentPolicy, profile: UploadProfile | null): ProfileLimits {
  const allowed = profile?.allowedTypes
    ? profile.allowedTypes.filter((t) => policy.allowedTypes.includes(t))
    : [...policy.allowedTypes];
  return {
    maxBytes: Math.min(policy.maxBytes, profile?.maxBytes ?? Number.MAX_SAFE_INTEGER),
    allowedTypes: allowed,
    maxWidth: profile?.maxWidth ?? null,
    maxHeight: profile?.maxHeight ?? null,
    maxPixels: Math.min(policy.maxPixels, profile?.maxPixels ?? Number.MAX_SAFE_INTEGER),
    eagerPresets: profile?.eagerPresets ?? null,
  };
}

/** The worker's check of decoded dimensions against a row's limits; null when they fit. */
export function dimensionsExceeded(
  limits: Pick<ProfileLimits, "maxWidth" | "maxHeight">,
  width: number,
  height: number,
): string | null {
  if (limits.maxWidth !== null && width > limits.maxWidth)
    return `${width}x${height}: wider than ${limits.maxWidth} px`;
  if (limits.maxHeight !== null && height > limits.maxHeight)
    return `${width}x${height}: taller than ${limits.maxHeight} px`;
  return null;
}

/** Reads a stored snapshot back; null for rows without one (or one this code cannot read). */
export function parseLimits(text: string | null): ProfileLimits | null {
  if (!text) return null;
  try {
    const o = JSON.parse(text) as ProfileLimits;
    if (typeof o.maxBytes !== "number" || !Array.isArray(o.allowedTypes)) return null;
    return o;
  } catch {
    return null;
  }
}

function stringList(name: string, field: string, v: unknown): string[] {
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string"))
    throw new Error(`profile ${name}: ${field} must be a list of strings`);
  return v as string[];
}

function canonicalType(name: string, t: string, ctx: ProfileContext): string {
  const lower = t.trim().toLowerCase();
  const mime = SHORT_TYPES[lower] ?? lower;
  if (!ctx.supportedTypes.includes(mime))
    throw new Error(
      `profile ${name}: allowedTypes: "${t}" is not one of the accepted types (${ctx.supportedTypes.join(", ")})`,
    );
  return mime;
}

/** Claim references: an app's own key for what an image belongs to, e.g. users/42/avatar. */
export const REF_MAX_LENGTH = 256;

export function validRef(ref: string): boolean {
  // Printable, no control characters: refs end up in logs, URLs and webhook payloads.
  if (ref.length < 1 || ref.length > REF_MAX_LENGTH) return false;
  for (let i = 0; i < ref.length; i++) {
    const c = ref.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  return true;
}
