import { createPublicKey, type KeyObject } from "node:crypto";
import {
  createRemoteJWKSet,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  errors as joseErrors,
  jwtVerify,
} from "jose";
import type { JwtSettings } from "../config.ts";
import { ERRORS } from "../domain/errors.ts";

export interface JwtIdentity {
  ownerId: string;
  admin: boolean;
}

const OWNER_ID = /^[A-Za-z0-9._:@|-]{1,200}$/;
const ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];
const CHALLENGE = { headers: { "WWW-Authenticate": 'Bearer realm="imgup"' } };

/**
 * Verifies Bearer JWTs whose `sub` is the owner. `exp` is required (a token that never expires is
 * a password that cannot be rotated), `aud`/`iss` are checked when configured, and admin comes only
 * from the claim the operator named: a `scope: "admin"` any token holder could mint is ignored.
 */
export class JwtVerifier {
  private readonly keys: Array<{ key: Uint8Array | KeyObject | JWTVerifyGetKey; algorithms: string[] }>;
  private readonly options: JWTVerifyOptions;

  private constructor(private readonly settings: JwtSettings) {
    this.keys = [];
    if (settings.secret)
      this.keys.push({ key: new TextEncoder().encode(settings.secret), algorithms: ["HS256"] });
    if (settings.publicKeyPem) {
      this.keys.push({ key: createPublicKey(settings.publicKeyPem), algorithms: ASYMMETRIC });
    }
    if (settings.jwksUrl) {
      this.keys.push({
        key: createRemoteJWKSet(new URL(settings.jwksUrl), {
          timeoutDuration: 5000,
          cooldownDuration: 30_000,
        }),
        algorithms: ASYMMETRIC,
      });
    }
    this.options = {
      requiredClaims: ["exp", "sub"],
      ...(settings.audience ? { audience: settings.audience } : {}),
      ...(settings.issuer ? { issuer: settings.issuer } : {}),
      clockTolerance: 30,
    };
  }

  /** null when no JWT key is configured (tokens other than API keys are then refused). */
  static create(settings: JwtSettings): JwtVerifier | null {
    if (!settings.secret && !settings.publicKeyPem && !settings.jwksUrl) return null;
    return new JwtVerifier(settings);
  }

  async verify(token: string): Promise<JwtIdentity> {
    const alg = headerAlg(token);
    const candidate = this.keys.find((k) => k.algorithms.includes(alg));
    if (!candidate)
      throw ERRORS.invalidToken(`JWTs signed with ${alg || "no algorithm"} are not accepted`, CHALLENGE);
    let payload: JWTPayload;
    try {
      const verified =
        typeof candidate.key === "function"
          ? await jwtVerify(token, candidate.key, { ...this.options, algorithms: candidate.algorithms })
          : await jwtVerify(token, candidate.key, { ...this.options, algorithms: candidate.algorithms });
      payload = verified.payload;
    } catch (err) {
      if (err instanceof joseErrors.JWKSTimeout) {
        throw ERRORS.unavailable("the identity provider's keys could not be fetched", {
          headers: { "Retry-After": "5" },
        });
      }
      throw ERRORS.invalidToken(describe(err), CHALLENGE);
    }
    if (typeof payload.sub !== "string" || !OWNER_ID.test(payload.sub)) {
      throw ERRORS.invalidToken("the JWT has no valid sub", CHALLENGE);
    }
    return { ownerId: payload.sub, admin: this.grantsAdmin(payload) };
  }

  private grantsAdmin(payload: JWTPayload): boolean {
    const claim = this.settings.adminClaim;
    if (!claim) return false;
    const value = payload[claim.name];
    if (typeof value === "string") return value.split(" ").includes(claim.value);
    return Array.isArray(value) && value.includes(claim.value);
  }
}

function headerAlg(token: string): string {
  try {
    const header = JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString("utf8"));
    return typeof header?.alg === "string" ? header.alg : "";
  } catch {
    return "";
  }
}

function describe(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "the JWT has expired";
  if (err instanceof joseErrors.JWTClaimValidationFailed)
    return `the JWT's ${err.claim} claim is missing or wrong`;
  if (err instanceof joseErrors.JOSEError) return "invalid JWT";
  return "invalid JWT";
}
