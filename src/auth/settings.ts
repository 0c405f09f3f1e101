/**
 * Auth settings derived once at startup from the validated config and the environment: the JWT secret
 * (refused when short outside dev mode, §3.2), token lifetime, cookie, password and rate-limit parameters.
 */
import { randomBytes } from "node:crypto";
import type { ValidatedConfig } from "../config/schema.js";
import { ConfigError, fieldError } from "../errors.js";

type AuthConfig = ValidatedConfig["auth"];

export const MIN_SECRET_BYTES = 32;

export interface AuthSettings {
  secret: Uint8Array;
  alg: AuthConfig["jwt"]["alg"];
  expiresSeconds: number;
  issuer: string;
  audience: string;
  clockToleranceSeconds: number;
  jwks: AuthConfig["jwt"]["jwks"];
  cookie: AuthConfig["cookie"];
  password: AuthConfig["password"];
  /** `max_per_email_total` filled in (10 × `max_per_email` unless configured) */
  rateLimit: AuthConfig["rate_limit"] & { max_per_email_total: number };
  allowRegister: boolean;
  defaultRoleRegister: string | undefined;
  /** configured role names; empty when the app declares no roles (then any role is accepted) */
  roles: ReadonlySet<string>;
  trustProxy: boolean;
  corsOrigins: readonly string[];
  apiKeys: ApiKeySettings;
}

/** `auth.api_keys` (§5), its roles checked against the configured ones. */
export interface ApiKeySettings {
  enabled: boolean;
  require: boolean;
  publishableRole: string;
  secretRole: string | undefined;
  env: string;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };
const DURATION = /^(\d+)\s*(s|m|h|d|w)?$/;

/** `3600`, `"3600"`, `"15m"`, `"1h"`, `"7d"` → seconds. */
export function parseDuration(value: string | number, path: string): number {
  const match = typeof value === "number" ? [String(value), String(value), "s"] : DURATION.exec(value.trim());
  const seconds = match ? Number(match[1]) * UNITS[match[2] ?? "s"]! : Number.NaN;
  if (!Number.isSafeInteger(seconds) || seconds <= 0)
    throw new ConfigError(
      path,
      `expected a positive duration like 3600, "15m", "1h" or "7d", got ${JSON.stringify(value)}`,
    );
  return seconds;
}

function isDev(auth: AuthConfig, env: NodeJS.ProcessEnv): boolean {
  return auth.dev || env.CITADEL_DEV === "1" || env.CITADEL_DEV === "true";
}

function resolveSecret(auth: AuthConfig, env: NodeJS.ProcessEnv, warn: (message: string) => void): Uint8Array {
  const configured = auth.jwt.secret || env.CITADEL_JWT_SECRET;
  const bytes = new TextEncoder().encode(configured ?? "");
  if (bytes.byteLength >= MIN_SECRET_BYTES) return bytes;
  const problem = configured
    ? `the JWT secret is ${bytes.byteLength} bytes; at least ${MIN_SECRET_BYTES} are required`
    : "no JWT secret is set";
  if (!isDev(auth, env))
    throw new ConfigError(
      "config.auth.jwt.secret",
      `${problem} (set config.auth.jwt.secret or CITADEL_JWT_SECRET, e.g. \`openssl rand -base64 48\`; ` +
        "or set config.auth.dev: true / CITADEL_DEV=1 for a throwaway random secret)",
    );
  warn(
    `WARNING: dev mode: ${problem}; using a random JWT secret for this process only. ` +
      "Tokens will not survive a restart. Never run like this in production.",
  );
  return new Uint8Array(randomBytes(48));
}

function checkRegisterRole(auth: AuthConfig, roles: ReadonlySet<string>) {
  if (roles.size === 0) return;
  const role = auth.default_role_register;
  // named, it is also the role of users created without one (createUser, `citadel user create`): checked either way
  if (role === undefined && auth.allow_register)
    throw new ConfigError(
      "config.auth.default_role_register",
      "allow_register is true, so default_role_register must name one of the configured roles",
    );
  if (role !== undefined && !roles.has(role))
    throw new ConfigError(
      "config.auth.default_role_register",
      `unknown role "${role}" (configured roles: ${[...roles].join(", ")})`,
    );
}

function apiKeySettings(auth: AuthConfig, roles: ReadonlySet<string>): ApiKeySettings {
  const keys = auth.api_keys;
  if (keys.enabled && roles.size > 0)
    for (const name of ["publishable_role", "secret_role"] as const) {
      const role = keys[name];
      if (role !== undefined && !roles.has(role))
        throw new ConfigError(
          `config.auth.api_keys.${name}`,
          `unknown role "${role}" (configured roles: ${[...roles].join(", ")})`,
        );
    }
  return {
    enabled: keys.enabled,
    require: keys.require,
    publishableRole: keys.publishable_role,
    secretRole: keys.secret_role,
    env: keys.env,
  };
}

/** Throws a 400 naming the configured roles unless `role` is one of them (any role goes when none are configured). */
export function requireKnownRole(settings: Pick<AuthSettings, "roles">, role: string): string {
  if (settings.roles.size === 0 || settings.roles.has(role)) return role;
  throw fieldError("role", `unknown role "${role}" (configured roles: ${[...settings.roles].join(", ")})`);
}

/** Derive the auth settings; throws ConfigError naming the config path when the auth config cannot work. */
export function authSettings(
  config: ValidatedConfig,
  env: NodeJS.ProcessEnv = process.env,
  warn: (message: string) => void = (message) => console.warn(`citadel: ${message}`),
): AuthSettings {
  const auth = config.auth;
  const roles = new Set(Object.keys(auth.roles));
  checkRegisterRole(auth, roles);
  if (auth.password.min_length > auth.password.max_length)
    throw new ConfigError("config.auth.password.min_length", "is larger than config.auth.password.max_length");
  const origin = config.server.cors.origin;
  return {
    secret: resolveSecret(auth, env, warn),
    alg: auth.jwt.alg,
    expiresSeconds: parseDuration(auth.jwt.expires, "config.auth.jwt.expires"),
    issuer: auth.jwt.issuer,
    audience: auth.jwt.audience,
    clockToleranceSeconds: auth.jwt.clock_tolerance,
    jwks: auth.jwt.jwks,
    cookie: auth.cookie,
    password: auth.password,
    rateLimit: {
      ...auth.rate_limit,
      max_per_email_total: auth.rate_limit.max_per_email_total ?? auth.rate_limit.max_per_email * 10,
    },
    allowRegister: auth.allow_register,
    defaultRoleRegister: auth.default_role_register,
    roles,
    trustProxy: config.server.trust_proxy,
    corsOrigins: origin === undefined ? [] : Array.isArray(origin) ? origin : [origin],
    apiKeys: apiKeySettings(auth, roles),
  };
}
