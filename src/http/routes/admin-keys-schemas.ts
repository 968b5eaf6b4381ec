import { Type } from "typebox";
import { ref } from "../schemas.ts";

export const OwnerIdSchema = Type.String({ pattern: "^[A-Za-z0-9._:@|-]{1,200}$" });

export const ApiKeySchema = Type.Object(
  {
    id: Type.String({ description: "key_…: names the key (to revoke it); not the secret" }),
    ownerId: Type.String(),
    name: Type.String(),
    scopes: Type.Array(Type.String(), { description: '"admin", or none' }),
    createdAt: Type.String({ format: "date-time" }),
  },
  { $id: "ApiKey", description: "An API key, without its secret" },
);

export const ApiKeyListSchema = Type.Object(
  { items: Type.Array(ref(ApiKeySchema)) },
  { $id: "ApiKeyList", description: "Active API keys, newest first" },
);

export const CreateApiKeyRequestSchema = Type.Object(
  {
    ownerId: OwnerIdSchema,
    name: Type.Optional(Type.String({ maxLength: 200 })),
    scopes: Type.Optional(Type.Array(Type.Literal("admin"), { maxItems: 1 })),
  },
  { $id: "CreateApiKeyRequest", additionalProperties: false },
);

export const CreatedApiKeySchema = Type.Object(
  {
    id: Type.String(),
    ownerId: Type.String(),
    key: Type.String({ description: "the secret: shown this once, never stored in clear" }),
  },
  { $id: "CreatedApiKey", description: "A new key" },
);

/** Added once for the three key routes. */
export const API_KEY_SCHEMAS = [
  ApiKeySchema,
  ApiKeyListSchema,
  CreateApiKeyRequestSchema,
  CreatedApiKeySchema,
];

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
