import { canonicalSpec, DEFAULT_SPEC_LIMITS, parseSpec } from "../domain/transform-spec.ts";
import { signTransform } from "../domain/url-signature.ts";

/** `{base}/i/{signature}/{canonical spec}/{imageId}`; throws invalid_spec for a bad spec. */
export function transformUrl(publicUrl: string, key: string, specText: string, imageId: string): string {
  const canonical = canonicalSpec(parseSpec(specText, DEFAULT_SPEC_LIMITS));
  return `${publicUrl}/i/${signTransform(key, canonical, imageId)}/${canonical}/${imageId}`;
}
