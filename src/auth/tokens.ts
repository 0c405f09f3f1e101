/**
 * JWT sessions with jose (§3.2): our own tokens are HMAC-signed with an algorithm allowlist of one, issuer,
 * audience, expiry and a bounded clock skew; tokens from an external identity provider are verified against
 * its JWKS (asymmetric algorithms only). Anything that does not verify is an UnauthorizedError (401).
 */
import { createRemoteJWKSet, decodeProtectedHeader, type JWTPayload, jwtVerify, SignJWT } from "jose";
import { UnauthorizedError } from "../errors.js";
import type { AuthSettings } from "./settings.js";

/** What our own tokens say about a user, beside the registered claims. */
export interface TokenUser {
  id: number;
  email: string;
  role: string | null;
  /** the user's token_version when the token was issued (§4.11) */
  version: number;
  /** the user's tenant as its claim (`account_id`, §6.1), when the user has one */
  tenant?: { claim: string; id: number } | undefined;
  /** more claims, as an identity provider adds them (trusted code only); never the ones above */
  claims?: Record<string, unknown>;
}

export type VerifiedToken =
  | { kind: "local"; id: number; role: string | null; version: number; claims: JWTPayload }
  | { kind: "external"; role: string | undefined; claims: JWTPayload };

const REGISTERED = ["iss", "aud", "exp", "iat", "nbf", "jti", "ver"];

/** The claims a subject exposes to policies (`@user.<claim>`): everything but the registered ones. */
export function publicClaims(claims: JWTPayload): Record<string, unknown> {
  return Object.fromEntries(Object.entries(claims).filter(([k]) => !REGISTERED.includes(k)));
}

const invalid = () => new UnauthorizedError("invalid or expired token");

/** Read a possibly dotted claim (`realm_access.role`); arrays give their first configured role. */
function roleFrom(claims: JWTPayload, path: string, roles: ReadonlySet<string>): string | undefined {
  let value: unknown = claims;
  for (const key of path.split(".")) value = (value as Record<string, unknown> | undefined)?.[key];
  if (Array.isArray(value)) value = value.find((r) => typeof r === "string" && (roles.size === 0 || roles.has(r)));
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || (roles.size > 0 && !roles.has(value)))
    throw new UnauthorizedError("the token's role is not a configured role");
  return value;
}

const HASHES = { HS256: "SHA-256", HS384: "SHA-384", HS512: "SHA-512" } as const;
const VERIFIED_CACHE_SIZE = 10_000;

export class TokenService {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  /** imported once: jose would import a raw secret again for every signature */
  private readonly key: Promise<CryptoKey>;
  /**
   * A token string verifies the same way every time until it expires, so a verified local token is
   * remembered (bounded, oldest out first); revocation is checked against the user row on every request.
   */
  private readonly verified = new Map<string, VerifiedToken & { kind: "local" }>();

  constructor(
    private readonly settings: AuthSettings,
    private readonly log: (message: string, error?: unknown) => void,
  ) {
    const jwks = settings.jwks;
    this.jwks = jwks ? createRemoteJWKSet(new URL(jwks.url)) : undefined;
    this.key = crypto.subtle.importKey(
      "raw",
      new Uint8Array(settings.secret),
      { name: "HMAC", hash: HASHES[settings.alg] },
      false,
      ["sign", "verify"],
    );
  }

  get expiresSeconds(): number {
    return this.settings.expiresSeconds;
  }

  /** Sign a session token for a user. */
  async sign(user: TokenUser): Promise<string> {
    const s = this.settings;
    const tenant = user.tenant ? { [user.tenant.claim]: user.tenant.id } : {};
    return new SignJWT({
      ...user.claims,
      id: user.id,
      email: user.email,
      role: user.role,
      ...tenant,
      ver: user.version,
    })
      .setProtectedHeader({ alg: s.alg, typ: "JWT" })
      .setSubject(String(user.id))
      .setIssuer(s.issuer)
      .setAudience(s.audience)
      .setIssuedAt()
      .setExpirationTime(`${s.expiresSeconds}s`)
      .sign(await this.key);
  }

  /** Verify a token; throws UnauthorizedError for anything forged, expired, malformed or of another algorithm. */
  async verify(token: string): Promise<VerifiedToken> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw invalid();
    }
    if (alg === this.settings.alg) return this.verifyLocal(token);
    const jwks = this.settings.jwks;
    if (this.jwks && jwks && (jwks.algorithms as string[]).includes(alg ?? "")) return this.verifyExternal(token);
    throw invalid();
  }

  private async verifyLocal(token: string): Promise<VerifiedToken> {
    const cached = this.verified.get(token);
    if (cached) {
      const expires = (cached.claims.exp ?? 0) + this.settings.clockToleranceSeconds;
      if (Date.now() / 1000 <= expires) return cached;
      this.verified.delete(token);
      throw invalid();
    }
    const result = await this.verifySignature(token);
    if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(token, result);
    return result;
  }

  private async verifySignature(token: string): Promise<VerifiedToken & { kind: "local" }> {
    const s = this.settings;
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, await this.key, {
        algorithms: [s.alg],
        issuer: s.issuer,
        audience: s.audience,
        clockTolerance: s.clockToleranceSeconds,
        requiredClaims: ["sub", "iat", "exp"],
      }));
    } catch {
      throw invalid();
    }
    const { id, role, ver } = claims as { id?: unknown; role?: unknown; ver?: unknown };
    if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 1 || claims.sub !== String(id)) throw invalid();
    if (typeof ver !== "number" || !Number.isSafeInteger(ver)) throw invalid();
    if (role !== null && typeof role !== "string") throw invalid();
    return { kind: "local", id, role, version: ver, claims };
  }

  private async verifyExternal(token: string): Promise<VerifiedToken> {
    const jwks = this.settings.jwks!;
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, this.jwks!, {
        algorithms: jwks.algorithms,
        issuer: jwks.issuer,
        audience: jwks.audience,
        clockTolerance: this.settings.clockToleranceSeconds,
        requiredClaims: ["sub", "exp"],
      }));
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "ERR_JWKS_TIMEOUT" || !code) this.log("cannot fetch the JWKS to verify a token", error);
      throw invalid();
    }
    return { kind: "external", role: roleFrom(claims, jwks.role_claim, this.settings.roles), claims };
  }
}
