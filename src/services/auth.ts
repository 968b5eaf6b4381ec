import { createHash, randomBytes } from "node:crypto";
import { errors as joseErrors, jwtVerify } from "jose";
import type { ApiKeysRepository } from "../db/api-keys-repository.ts";
import { ERRORS } from "../domain/errors.ts";

export interface Principal {
  ownerId: string;
  scopes: ReadonlySet<string>;
  via: "api_key" | "jwt";
}

export const API_KEY_PREFIX = "imgup_";
const OWNER_ID = /^[A-Za-z0-9._:@|-]{1,200}$/;
const CHALLENGE = { headers: { "WWW-Authenticate": 'Bearer realm="imgup"' } };

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** Bearer tokens: imgup API keys (stored hashed) or HS256 JWTs whose `sub` is the owner. */
export class AuthService {
  private readonly jwtKey: Uint8Array | undefined;

  constructor(
    private readonly keys: ApiKeysRepository,
    jwtSecret: string | undefined,
  ) {
    this.jwtKey = jwtSecret ? new TextEncoder().encode(jwtSecret) : undefined;
  }

  async authenticate(authorization: string | undefined): Promise<Principal> {
    if (!authorization) throw ERRORS.unauthenticated("send Authorization: Bearer <token>", CHALLENGE);
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match?.[1]) throw ERRORS.invalidToken("expected Authorization: Bearer <token>", CHALLENGE);
    const token = match[1];
    if (token.startsWith(API_KEY_PREFIX)) {
      const key = await this.keys.findByHash(hashApiKey(token));
      if (!key) throw ERRORS.invalidToken("unknown or revoked API key", CHALLENGE);
      return { ownerId: key.ownerId, scopes: new Set(key.scopes), via: "api_key" };
    }
    if (!this.jwtKey) throw ERRORS.invalidToken("not an imgup API key (JWTs are not enabled)", CHALLENGE);
    try {
      const { payload } = await jwtVerify(token, this.jwtKey, { algorithms: ["HS256"] });
      if (typeof payload.sub !== "string" || !OWNER_ID.test(payload.sub)) {
        throw ERRORS.invalidToken("the JWT has no valid sub", CHALLENGE);
      }
      const scope = typeof payload.scope === "string" ? payload.scope.split(" ").filter(Boolean) : [];
      return { ownerId: payload.sub, scopes: new Set(scope), via: "jwt" };
    } catch (err) {
      if (err instanceof joseErrors.JOSEError) {
        throw ERRORS.invalidToken(
          err instanceof joseErrors.JWTExpired ? "the JWT has expired" : "invalid JWT",
          CHALLENGE,
        );
      }
      throw err;
    }
  }

  /** Creates an API key; the plain key is returned once and only its hash is kept. */
  async createKey(opts: {
    ownerId: string;
    name?: string;
    scopes?: string[];
  }): Promise<{ id: string; key: string }> {
    if (!OWNER_ID.test(opts.ownerId))
      throw ERRORS.validation("owner id must be 1-200 of A-Z a-z 0-9 . _ : @ | -");
    const key = `${API_KEY_PREFIX}${randomBytes(32).toString("base64url")}`;
    const id = `key_${randomBytes(8).toString("hex")}`;
    await this.keys.insert({
      id,
      ownerId: opts.ownerId,
      keyHash: hashApiKey(key),
      name: opts.name ?? "",
      scopes: opts.scopes ?? [],
    });
    return { id, key };
  }

  async hasAnyKey(): Promise<boolean> {
    return (await this.keys.count()) > 0;
  }
}
