import { Type } from "typebox";

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

export const ImageId = Type.String({ minLength: 1, maxLength: 64, description: "image id (UUIDv7)" });

export const ImageViewSchema = Type.Object({
  id: Type.String(),
  status: Type.String({ enum: ["pending", "processing", "ready", "rejected", "expired", "deleted"] }),
  visibility: Type.String({ enum: ["public", "private"] }),
  filename: Type.String(),
  contentType: Nullable(Type.String()),
  size: Nullable(Type.Integer()),
  width: Nullable(Type.Integer()),
  height: Nullable(Type.Integer()),
  format: Nullable(Type.String()),
  sha256: Nullable(Type.String()),
  placeholder: Nullable(Type.String({ description: "ThumbHash, base64" })),
  rejectReason: Nullable(Type.String()),
  rejectDetail: Nullable(Type.String()),
  createdAt: Type.String({ format: "date-time" }),
  readyAt: Nullable(Type.String({ format: "date-time" })),
  urls: Nullable(
    Type.Object({ original: Type.String(), presets: Type.Record(Type.String(), Type.String()) }),
  ),
});

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
  },
  { additionalProperties: true },
);

export const BearerSecurity = [{ bearer: [] }];

export const SignedPart = Type.Object({ partNumber: Type.Integer(), url: Type.String() });
