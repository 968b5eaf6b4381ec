import { Type } from "typebox";
import type { ImageRecord } from "../../domain/image.ts";
import { ImageStatusSchema, RejectReasonSchema, ref } from "../schemas.ts";

/** What a moderation decision (admin or callback) answers: the image's state after it. */
export const ModerationResultSchema = Type.Object(
  {
    imageId: Type.String(),
    status: ref(ImageStatusSchema),
    rejectReason: Type.Union([ref(RejectReasonSchema), Type.Null()]),
    rejectDetail: Type.Union([Type.String(), Type.Null()]),
  },
  { $id: "ModerationResult", description: "The image after the decision" },
);

export function toModerationResult(image: ImageRecord) {
  return {
    imageId: image.id,
    status: image.status,
    rejectReason: image.rejectReason,
    rejectDetail: image.rejectDetail,
  };
}

export const RejectBodySchema = Type.Object(
  {
    reason: Type.Optional(
      Type.String({ maxLength: 500, description: "kept as the image's rejectDetail (shown to its owner)" }),
    ),
  },
  { additionalProperties: false },
);
