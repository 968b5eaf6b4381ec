import { Type } from "typebox";
import type { UsageView } from "../../services/quotas.ts";
import { AUTH_ERRORS, problem, ref } from "../schemas.ts";
import { OwnerIdSchema } from "./admin-keys-schemas.ts";

const Limit = (description: string) =>
  // Null first: with type coercion on, an integer branch tried first would turn null into 0.
  Type.Union([Type.Null(), Type.Integer({ minimum: 0 })], { description: `${description}; null: unlimited` });

export const QuotaLimitsSchema = Type.Object(
  {
    bytes: Limit("bytes the owner may hold (stored and reserved)"),
    images: Limit("images the owner may have (stored and in flight)"),
    source: Type.Union([Type.Literal("default"), Type.Literal("override")], {
      description: "default: the deployment's IMGUP_QUOTA_*; override: set for this owner by an admin",
    }),
  },
  { $id: "QuotaLimits", description: "The limits that apply to an owner" },
);

export const UsageSchema = Type.Object(
  {
    ownerId: Type.String(),
    bytes: Type.Object({
      originals: Type.Integer({
        description: "originals of stored images, with their metadata-stripped public copies",
      }),
      variants: Type.Integer({ description: "stored variants (presets and on-the-fly sizes)" }),
      reserved: Type.Integer({
        description: "declared sizes of uploads still in flight (pending or processing)",
      }),
      total: Type.Integer({
        description: "originals + variants + reserved: what the bytes limit is checked against",
      }),
    }),
    images: Type.Object({
      stored: Type.Integer({ description: "ready images" }),
      pending: Type.Integer({ description: "uploads in flight" }),
      total: Type.Integer({ description: "stored + pending: what the images limit is checked against" }),
    }),
    limits: ref(QuotaLimitsSchema),
  },
  {
    $id: "Usage",
    description: "An owner's storage and image count against their quota",
    examples: [
      {
        ownerId: "user-42",
        bytes: { originals: 1_572_864, variants: 204_800, reserved: 0, total: 1_777_664 },
        images: { stored: 3, pending: 0, total: 3 },
        limits: { bytes: 104_857_600, images: null, source: "default" },
      },
    ],
  },
);

export const QuotaOverrideRequestSchema = Type.Object(
  {
    maxBytes: Limit("bytes the owner may hold"),
    maxImages: Limit("images the owner may have"),
  },
  { $id: "QuotaOverrideRequest", additionalProperties: false, description: "An owner's own limits" },
);

export const QUOTA_SCHEMAS = [QuotaLimitsSchema, UsageSchema, QuotaOverrideRequestSchema];

export function toUsageJson(ownerId: string, view: UsageView) {
  const { usage, limits, source } = view;
  const stored = usage.originalBytes + usage.variantBytes;
  return {
    ownerId,
    bytes: {
      originals: usage.originalBytes,
      variants: usage.variantBytes,
      reserved: usage.reservedBytes,
      total: stored + usage.reservedBytes,
    },
    images: { stored: usage.images, pending: usage.pendingImages, total: usage.images + usage.pendingImages },
    limits: { bytes: limits.maxBytes, images: limits.maxImages, source },
  };
}

export const OwnerParams = Type.Object({ ownerId: OwnerIdSchema });

export const ADMIN_ERRORS = {
  ...AUTH_ERRORS,
  403: problem("The key does not have the admin scope"),
  "4xx": problem("The request is not valid"),
};
