import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type JwtSettings, parseAdminClaim } from "../config.ts";
import { memoryApiKeys } from "../db/memory-api-keys.test-support.ts";
import { isAppError } from "../domain/errors.ts";
import { AuthService } from "./auth.ts";
import { JwtVerifier } from "./jwt-verifier.ts";

const SECRET = "a-test-jwt-secret-that-is-long-enough-0123456789";
const NONE: JwtSettings = {
  secret: undefined,
  publicKeyPem: undefined,
  jwksUrl: undefined,
  audience: undefined,
  issuer: undefined,
  adminClaim: undefined,
};
const noKeys = memoryApiKeys();
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

function hs256(claims: JWTPayload, opts: { exp?: number | null } = {}) {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject("alice");
  if (opts.exp !== null) jwt.setExpirationTime(opts.exp ?? inAnHour());
  return jwt.sign(new TextEncoder().encode(SECRET));
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; detail: string }> {
  try {
    await p;
  } catch (err) {
    if (isAppError(err)) return { code: err.code, detail: err.message };
    throw err;
  }
  throw new Error("expected a refusal");
}

describe("JWT authentication", () => {
  const auth = (settings: Partial<JwtSettings>) =>
    new AuthService(noKeys, JwtVerifier.create({ ...NONE, secret: SECRET, ...settings }));

  it("accepts an HS256 token with sub and exp as that owner, without admin", async () => {
    const principal = await auth({}).authenticate(`Bearer ${await hs256({})}`);
    expect(principal).toMatchObject({ ownerId: "alice", via: "jwt" });
    expect(principal.scopes.has("admin")).toBe(false);
  });

  it("refuses a token without exp: it would never expire", async () => {
    const r = await refusal(auth({}).authenticate(`Bearer ${await hs256({}, { exp: null })}`));
    expect(r.code).toBe("invalid_token");
    expect(r.detail).toContain("exp");
  });

  it("never grants admin from a scope claim anyone with the secret could mint", async () => {
    const principal = await auth({}).authenticate(`Bearer ${await hs256({ scope: "admin" })}`);
    expect(principal.scopes.has("admin")).toBe(false);
  });

  it("grants admin only through the claim and value the operator configured", async () => {
    const a = auth({ adminClaim: parseAdminClaim("roles=imgup-admin") });
    expect(
      (await a.authenticate(`Bearer ${await hs256({ roles: ["imgup-admin"] })}`)).scopes.has("admin"),
    ).toBe(true);
    expect(
      (await a.authenticate(`Bearer ${await hs256({ roles: "viewer imgup-admin" })}`)).scopes.has("admin"),
    ).toBe(true);
    expect(
      (await a.authenticate(`Bearer ${await hs256({ roles: ["viewer"], scope: "admin" })}`)).scopes.has(
        "admin",
      ),
    ).toBe(false);
  });

  it("checks aud and iss when configured", async () => {
    const a = auth({ audience: "imgup", issuer: "https://idp.example" });
    const good = await hs256({ aud: "imgup", iss: "https://idp.example" });
    expect((await a.authenticate(`Bearer ${good}`)).ownerId).toBe("alice");
    expect(
      (await refusal(a.authenticate(`Bearer ${await hs256({ aud: "other", iss: "https://idp.example" })}`)))
        .code,
    ).toBe("invalid_token");
    expect((await refusal(a.authenticate(`Bearer ${await hs256({ aud: "imgup" })}`))).code).toBe(
      "invalid_token",
    );
  });

  it("refuses an expired token and one signed with another secret", async () => {
    expect(
      (await refusal(auth({}).authenticate(`Bearer ${await hs256({}, { exp: 1_000_000 })}`))).detail,
    ).toContain("expired");
    const foreign = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("alice")
      .setExpirationTime(inAnHour())
      .sign(new TextEncoder().encode("x".repeat(48)));
    expect((await refusal(auth({}).authenticate(`Bearer ${foreign}`))).code).toBe("invalid_token");
  });

  it("accepts RS256 tokens verified with an identity provider's PEM public key, and refuses HS256 then", async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256");
    const a = new AuthService(
      noKeys,
      JwtVerifier.create({ ...NONE, publicKeyPem: await exportSPKI(publicKey) }),
    );
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "RS256" })
      .setSubject("carol")
      .setExpirationTime(inAnHour())
      .sign(privateKey);
    expect((await a.authenticate(`Bearer ${token}`)).ownerId).toBe("carol");
    // With only a public key configured, an HS256 token (e.g. one "signed" with the PEM text) is refused.
    expect((await refusal(a.authenticate(`Bearer ${await hs256({})}`))).code).toBe("invalid_token");
  });

  describe("with a JWKS URL", () => {
    let server: Server;
    let url: string;
    let privateKey: CryptoKey;
    beforeAll(async () => {
      const pair = await generateKeyPair("ES256");
      privateKey = pair.privateKey;
      const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" };
      server = createServer((_req, res) => {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ keys: [jwk] }));
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it("verifies ES256 tokens by kid", async () => {
      const a = new AuthService(noKeys, JwtVerifier.create({ ...NONE, jwksUrl: url }));
      const sign = (kid: string) =>
        new SignJWT({})
          .setProtectedHeader({ alg: "ES256", kid })
          .setSubject("dave")
          .setExpirationTime(inAnHour())
          .sign(privateKey);
      expect((await a.authenticate(`Bearer ${await sign("k1")}`)).ownerId).toBe("dave");
      expect((await refusal(a.authenticate(`Bearer ${await sign("unknown")}`))).code).toBe("invalid_token");
    });
  });

  it("refuses JWTs when none is configured", async () => {
    const a = new AuthService(noKeys, JwtVerifier.create(NONE));
    expect((await refusal(a.authenticate(`Bearer ${await hs256({})}`))).detail).toContain("not enabled");
  });

  it("parses IMGUP_JWT_ADMIN_CLAIM", () => {
    expect(parseAdminClaim(undefined)).toBeUndefined();
    expect(parseAdminClaim("groups=admins")).toEqual({ name: "groups", value: "admins" });
    expect(() => parseAdminClaim("admin")).toThrow(/name=value/);
  });
});
