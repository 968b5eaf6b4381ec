import { Type } from "typebox";
import type { UploadProfile } from "../../domain/profiles.ts";
import type { ProfileEntry } from "../../services/profiles.ts";
import { ref, VisibilitySchema } from "../schemas.ts";

export const ProfileNameParam = Type.Object({
  name: Type.String({ pattern: "^[a-z0-9][a-z0-9_-]{0,63}$", description: "the profile's name" }),
});

export const UploadProfileSettingsSchema = Type.Object(
  {
    maxBytes: Type.Optional(
      Type.Integer({ minimum: 1, description: "largest upload (never above IMGUP_MAX_UPLOAD_BYTES)" }),
    ),
    allowedTypes: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
        minItems: 1,
        maxItems: 16,
        description:
          "accepted formats: jpeg, png, webp, avif, gif, heic (or their MIME types); answered as MIME types",
      }),
    ),
    maxWidth: Type.Optional(
      Type.Integer({ minimum: 1, description: "widest accepted image, pixels (checked by the worker)" }),
    ),
    maxHeight: Type.Optional(Type.Integer({ minimum: 1, description: "tallest accepted image, pixels" })),
    maxPixels: Type.Optional(
      Type.Integer({ minimum: 1, description: "width × height limit, checked before decoding" }),
    ),
    eagerPresets: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 32 }), {
        maxItems: 32,
        description: "presets made before the image turns ready, instead of IMGUP_EAGER_PRESETS",
      }),
    ),
    visibility: Type.Optional(
      ref(VisibilitySchema, { description: "forced: an intent asking for the other is 400" }),
    ),
    claimRequired: Type.Optional(Type.Boolean({ description: "uploads are deleted unless claimed in time" })),
    claimTtlSeconds: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: "how long an unclaimed upload lives (default IMGUP_CLAIM_TTL_SECONDS)",
      }),
    ),
  },
  {
    $id: "UploadProfileSettings",
    additionalProperties: false,
    description: "An upload profile's rules; all optional",
  },
);

export const UploadProfileSchema = Type.Object(
  {
    name: Type.String(),
    source: Type.Unsafe<"config" | "api">({
      type: "string",
      enum: ["config", "api"],
      description: "config: IMGUP_PROFILES (read-only here); api: stored through this API",
    }),
    settings: ref(UploadProfileSettingsSchema),
  },
  { $id: "UploadProfile", description: "A named upload policy an intent may apply with `profile`" },
);

export const UploadProfileListSchema = Type.Object(
  { items: Type.Array(ref(UploadProfileSchema)) },
  { $id: "UploadProfileList", description: "Every upload profile, by name" },
);

export const PROFILE_SCHEMAS = [UploadProfileSettingsSchema, UploadProfileSchema, UploadProfileListSchema];

export function profileView(entry: ProfileEntry) {
  const { name, ...settings } = entry.profile satisfies UploadProfile;
  return { name, source: entry.source, settings };
}
