import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { ApiKeyRecord, ApiKeysRepository } from "../db/api-keys-repository.ts";
import { isDatabaseUnavailable } from "../db/breaker.ts";
import { ERRORS } from "../domain/errors.ts";
import type { JwtVerifier } from "./jwt-verifier.ts";

export interface Principal {
  ownerId: string;
  scopes: ReadonlySet<string>;
  via: "api_key" | "jwt";
}

export const API_KEY_PREFIX = "imgup_";
const OWNER_ID = /^[A-Za-z0-9._:@|-]{1,200}$/;
const KEY_CACHE_MS = 30_000;
const KEY_STALE_MS = 15 * 60_000;
const KEY_CACHE_SIZE = 10_000;
const RETRY = { headers: { "Retry-After": "5" } };
const CHALLENGE = { headers: { "WWW-Authenticate": 'Bearer realm="imgup"' } };

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** Bearer tokens: imgup API keys (stored hashed) or JWTs whose `sub` is the owner (jwt-verifier.ts). */
export class AuthService {
  private readonly cache = new Map<string, { principal: Principal; at: number; id: string }>();
  private localAdminHash: Buffer | null = null;

  constructor(
    private readonly keys: ApiKeysRepository,
    private readonly jwt: JwtVerifier | null,
  ) {}

  /**
   * Embedded mode: a token in a 0600 file under the data dir lets the `imgup` command on the same
   * machine manage keys through the running server (which holds the database). Reading the file is
   * the authority, as with a Unix socket.
   */
  enableLocalAdmin(token: string): void {
    this.localAdminHash = createHash("sha256").update(token).digest();
  }

  /**
   * `beforeLookup` runs before anything that costs more than a cache hit (a key lookup, a JWT
   * verification): the HTTP layer refuses an address that keeps failing there.
   */
  async authenticate(
    authorization: string | undefined,
    hooks: { beforeLookup?: () => Promise<void> } = {},
  ): Promise<Principal> {
    if (!authorization) throw ERRORS.unauthenticated("send Authorization: Bearer <token>", CHALLENGE);
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match?.[1]) throw ERRORS.invalidToken("expected Authorization: Bearer <token>", CHALLENGE);
    const token = match[1];
    if (
      this.localAdminHash &&
      timingSafeEqual(createHash("sha256").update(token).digest(), this.localAdminHash)
    ) {
      return { ownerId: "local-admin", scopes: new Set(["admin"]), via: "api_key" };
    }
    if (token.startsWith(API_KEY_PREFIX)) return this.apiKey(hashApiKey(token), hooks.beforeLookup);
    if (!this.jwt) throw ERRORS.invalidToken("not an imgup API key (JWTs are not enabled)", CHALLENGE);
    await hooks.beforeLookup?.();
    const identity = await this.jwt.verify(token);
    return { ownerId: identity.ownerId, scopes: new Set(identity.admin ? ["admin"] : []), via: "jwt" };
  }

  /**
   * Keys are cached briefly so that every request does not cost a query, and so that a database
   * outage does not lock every client out while the intent buffer keeps uploads going. A revoked
   * key therefore works for up to KEY_CACHE_MS more.
   */
  private async apiKey(keyHash: string, beforeLookup?: () => Promise<void>): Promise<Principal> {
    const cached = this.cache.get(keyHash);
    const now = Date.now();
    if (cached && now - cached.at < KEY_CACHE_MS) return cached.principal;
    await beforeLookup?.();
    let key: Awaited<ReturnType<ApiKeysRepository["findByHash"]>>;
    try {
      key = await this.keys.findByHash(keyHash);
    } catch (err) {
      if (cached && now - cached.at < KEY_STALE_MS && isDatabaseUnavailable(err)) return cached.principal;
      if (isDatabaseUnavailable(err)) throw ERRORS.unavailable("cannot check the API key right now", RETRY);
      throw err;
    }
    if (!key) {
      this.cache.delete(keyHash);
      throw ERRORS.invalidToken("unknown or revoked API key", CHALLENGE);
    }
    const principal: Principal = { ownerId: key.ownerId, scopes: new Set(key.scopes), via: "api_key" };
    if (this.cache.size >= KEY_CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(keyHash, { principal, at: now, id: key.id });
    return principal;
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

  async listKeys(opts: { ownerId?: string; limit?: number } = {}): Promise<ApiKeyRecord[]> {
    return this.keys.list({ ...opts, limit: Math.min(Math.max(opts.limit ?? 100, 1), 1000) });
  }

  /**
   * Revoked at once on this instance; other instances stop accepting it within KEY_CACHE_MS.
   * Throws not_found when there is no such active key.
   */
  async revokeKey(id: string): Promise<void> {
    if (!(await this.keys.revoke(id))) throw ERRORS.notFound(`no active API key ${id}`);
    for (const [hash, entry] of this.cache) if (entry.id === id) this.cache.delete(hash);
  }

  async hasAnyKey(): Promise<boolean> {
    return (await this.keys.count()) > 0;
  }
}
