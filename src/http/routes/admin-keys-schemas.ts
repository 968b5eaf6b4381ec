import { Type } from "typebox";

export const OwnerIdSchema = Type.String({ pattern: "^[A-Za-z0-9._:@|-]{1,200}$" });

export const ApiKeySchema = Type.Object({
  id: Type.String(),
  ownerId: Type.String(),
  name: Type.String(),
  scopes: Type.Array(Type.String()),
  createdAt: Type.String({ format: "date-time" }),
});

export const toApiKeyView = (k: {
  id: string;
  ownerId: string;
  name: string;
  scopes: string[];
  createdAt: Date;
}) => ({
  id: k.id,
  ownerId: k.ownerId,
  name: k.name,
  scopes: k.scopes,
  createdAt: k.createdAt.toISOString(),
});
