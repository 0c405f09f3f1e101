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

export class TokenService {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

  constructor(
    private readonly settings: AuthSettings,
    private readonly log: (message: string, error?: unknown) => void,
  ) {
    const jwks = settings.jwks;
    this.jwks = jwks ? createRemoteJWKSet(new URL(jwks.url)) : undefined;
  }

  get expiresSeconds(): number {
    return this.settings.expiresSeconds;
  }

  /** Sign a session token for a user. */
  async sign(user: TokenUser): Promise<string> {
    const s = this.settings;
    return new SignJWT({ id: user.id, email: user.email, role: user.role, ver: user.version })
      .setProtectedHeader({ alg: s.alg, typ: "JWT" })
      .setSubject(String(user.id))
      .setIssuer(s.issuer)
      .setAudience(s.audience)
      .setIssuedAt()
      .setExpirationTime(`${s.expiresSeconds}s`)
      .sign(s.secret);
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
    const s = this.settings;
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, s.secret, {
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
