/**
 * The on-the-fly transform spec (`w_400,h_300,fit_cover,f_auto,q_80,dpr_2`), parsed once into a
 * plain object. Pure. The parser is strict on purpose: one spelling per value means one cache key
 * and one signature per variant, and nothing a client sends can make a transform unbounded.
 *
 * Options, each at most once, in any order:
 *   w_N, h_N     1..limit, integers without leading zeros or signs. Both optional: a spec without a
 *                size re-encodes at the original size (never enlarged).
 *   fit_X        cover | contain | inside | fill; default inside.
 *   f_X          auto | jpeg | png | webp | avif | gif; default auto (negotiated from Accept).
 *   q_N          1..100; default unset = the encoder's default (JPEG 80, WebP 79, AVIF 63). PNG/GIF ignore it.
 *   dpr_D        1..maxDpr, an integer or one non-zero decimal (1.5, 2, 2.5, 3); default 1.
 *                The output is w*dpr x h*dpr, which must stay within maxWidth x maxHeight.
 */
import { ERRORS } from "./errors.ts";

export type OutputFormat = "jpeg" | "png" | "webp" | "avif" | "gif";
export type Fit = "cover" | "contain" | "inside" | "fill";

export interface TransformSpec {
  width?: number;
  height?: number;
  fit: Fit;
  format: "auto" | OutputFormat;
  quality?: number;
  dpr: number;
}

export interface SpecLimits {
  maxWidth: number;
  maxHeight: number;
  maxDpr: number;
}

export const DEFAULT_SPEC_LIMITS: SpecLimits = Object.freeze({ maxWidth: 8192, maxHeight: 8192, maxDpr: 4 });

export const FITS: readonly Fit[] = ["cover", "contain", "inside", "fill"];
export const OUTPUT_FORMATS: readonly OutputFormat[] = ["jpeg", "png", "webp", "avif", "gif"];
export const SPEC_DEFAULTS = Object.freeze({ fit: "inside" as Fit, format: "auto" as const, dpr: 1 });

/** Longer than any valid spec can be; checked first so a 10 KB string costs nothing. */
const MAX_SPEC_LENGTH = 100;
const INTEGER = /^[1-9][0-9]{0,5}$/;
const DPR = /^[1-9](\.[1-9])?$/;
const FORMATS: readonly TransformSpec["format"][] = ["auto", ...OUTPUT_FORMATS];

export function parseSpec(text: string, limits: SpecLimits): TransformSpec {
  if (typeof text !== "string" || text.length === 0) throw invalid("the spec is empty");
  if (text.length > MAX_SPEC_LENGTH) throw invalid(`the spec is longer than ${MAX_SPEC_LENGTH} characters`);
  const spec: TransformSpec = {
    fit: SPEC_DEFAULTS.fit,
    format: SPEC_DEFAULTS.format,
    dpr: SPEC_DEFAULTS.dpr,
  };
  const seen = new Set<string>();
  for (const part of text.split(",")) {
    const sep = part.indexOf("_");
    if (sep <= 0) throw invalid(`"${clip(part)}" is not name_value`);
    const name = part.slice(0, sep);
    const value = part.slice(sep + 1);
    if (seen.has(name)) throw invalid(`${clip(name)} is given twice`);
    seen.add(name);
    switch (name) {
      case "w":
        spec.width = integer(name, value, 1, limits.maxWidth);
        break;
      case "h":
        spec.height = integer(name, value, 1, limits.maxHeight);
        break;
      case "q":
        spec.quality = integer(name, value, 1, 100);
        break;
      case "fit":
        spec.fit = oneOf(name, value, FITS);
        break;
      case "f":
        spec.format = oneOf(name, value, FORMATS);
        break;
      case "dpr":
        spec.dpr = dpr(value, limits.maxDpr);
        break;
      default:
        throw invalid(`unknown option "${clip(name)}"`);
    }
  }
  if (spec.width !== undefined && scaled(spec.width, spec.dpr) > limits.maxWidth) {
    throw invalid(`w x dpr = ${scaled(spec.width, spec.dpr)} is more than ${limits.maxWidth}`);
  }
  if (spec.height !== undefined && scaled(spec.height, spec.dpr) > limits.maxHeight) {
    throw invalid(`h x dpr = ${scaled(spec.height, spec.dpr)} is more than ${limits.maxHeight}`);
  }
  return spec;
}

/**
 * The one spelling of a spec: w, h, fit, f, q, dpr in that order; fit and f always present (so it
 * is never empty), dpr only when not 1, w/h/q only when set. Characters: [a-z0-9_,.] only, safe in
 * an object key `{p}/{id}/v/{canonical}.{ext}`.
 */
export function canonicalSpec(spec: TransformSpec): string {
  const parts: string[] = [];
  if (spec.width !== undefined) parts.push(`w_${spec.width}`);
  if (spec.height !== undefined) parts.push(`h_${spec.height}`);
  parts.push(`fit_${spec.fit}`, `f_${spec.format}`);
  if (spec.quality !== undefined) parts.push(`q_${spec.quality}`);
  if (spec.dpr !== 1) parts.push(`dpr_${spec.dpr}`);
  return parts.join(",");
}

/** Output pixels along one axis: the requested size times the device pixel ratio. */
export function scaled(size: number, dpr: number): number {
  return Math.round(size * dpr);
}

function integer(name: string, value: string, min: number, max: number): number {
  if (!INTEGER.test(value)) throw invalid(`${name} must be a plain integer, got "${clip(value)}"`);
  const n = Number(value);
  if (n < min || n > max) throw invalid(`${name} must be ${min}..${max}, got ${n}`);
  return n;
}

function dpr(value: string, max: number): number {
  if (!DPR.test(value)) throw invalid(`dpr must be like 1, 1.5 or 2, got "${clip(value)}"`);
  const n = Number(value);
  if (n > max) throw invalid(`dpr must be 1..${max}, got ${n}`);
  return n;
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  const found = allowed.find((a) => a === value);
  if (!found) throw invalid(`${name} must be one of ${allowed.join(", ")}, got "${clip(value)}"`);
  return found;
}

/** Details echo client input: keep them short and printable. */
function clip(s: string): string {
  const printable = s.replace(/[^\x20-\x7e]/g, "?");
  return printable.length > 24 ? `${printable.slice(0, 24)}…` : printable;
}

function invalid(detail: string) {
  return ERRORS.invalidSpec(detail);
}
