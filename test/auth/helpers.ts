/** Shared config and helpers for the auth tests (§3). Not a test file itself. */
import { type CitadelConfig, em, entity, relation, text } from "citadel";
import { decodeJwt, SignJWT } from "jose";
import { expect } from "vitest";
import type { TestResponse, TestServer } from "../helpers/server.js";

export const SECRET = "auth-tests-secret-0123456789-abcdefghijklmnop";
/** Cheap argon2 parameters so the tests stay fast; the defaults are checked in passwords.test.ts. */
export const FAST_ARGON2 = { memory_cost: 1024, time_cost: 1, parallelism: 1 };
export const PASSWORD = "correct horse battery";

export const schema = em(
  {
    posts: entity("posts", { title: text().required() }),
    users: entity("users", { nickname: text().maxLength(40), secret_note: text().hidden() }),
  },
  ({ posts, users }) => [relation(posts, "author").manyToOne(users)],
);

type AuthConfig = NonNullable<CitadelConfig["auth"]>;

/** An app with auth on, the guard off (data routes open), cheap hashing and generous rate limits. */
export function authConfig(auth: Partial<AuthConfig> = {}, server: CitadelConfig["server"] = {}): CitadelConfig {
  return {
    data: schema.toJSON(),
    auth: {
      enabled: true,
      allow_register: true,
      default_role_register: "user",
      roles: { user: {}, editor: {}, admin: { implicit_allow: true } },
      // these tests are about auth: the data routes stay open, which must be said in so many words (1.9)
      guard: { enabled: false },
      ...auth,
      jwt: { secret: SECRET, ...auth.jwt },
      password: { argon2: FAST_ARGON2, ...auth.password },
      rate_limit: { max_per_email: 1000, max_per_address: 1000, ...auth.rate_limit },
    },
    server,
  };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** The `name=value` pair of a Set-Cookie header, to send back as a Cookie header. */
export function cookieOf(res: TestResponse, name = "auth"): string {
  const header = res.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
  expect(header, `a ${name} cookie is set`).toBeDefined();
  return header!.split(";")[0]!;
}

export async function register(server: TestServer, email: string, password = PASSWORD): Promise<TestResponse> {
  return server.request("POST", "/api/auth/password/register", { email, password });
}

/** Log in and return the response; fails the test unless it is 200. */
export async function login(server: TestServer, email: string, password = PASSWORD): Promise<TestResponse> {
  const res = await server.request("POST", "/api/auth/password/login", { email, password });
  expect(res.status, res.text).toBe(200);
  return res;
}

/** Create a user from code and log in: `{ id, token, cookie }`. */
export async function userWithToken(server: TestServer, email: string, role = "user") {
  const user = await server.app.module.auth.createUser({ email, password: PASSWORD, role });
  const res = await login(server, email);
  return { id: user.id as number, token: res.body.token as string, cookie: cookieOf(res) };
}

/** Sign a token with arbitrary claims and key, to forge one. */
export async function signToken(
  claims: Record<string, unknown>,
  opts: { secret?: string; alg?: string; iat?: number; exp?: number | string } = {},
): Promise<string> {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: opts.alg ?? "HS256" })
    .setIssuedAt(opts.iat)
    .setIssuer("citadel")
    .setAudience("citadel")
    .setExpirationTime(opts.exp ?? "1h");
  if (claims.id !== undefined) jwt.setSubject(String(claims.id));
  return jwt.sign(new TextEncoder().encode(opts.secret ?? SECRET));
}

export const claimsOf = (token: string) => decodeJwt(token);

/** The `{ error: { code, message } }` envelope (§2.1). */
export function expectError(res: TestResponse, status: number, code: string) {
  expect({ status: res.status, code: res.body?.error?.code }, res.text).toEqual({ status, code });
}

/** No hidden field, hash or secret ever appears in a response (§3.1). */
export function expectNoSecrets(res: TestResponse) {
  expect(res.text).not.toContain("password_hash");
  expect(res.text).not.toContain("$argon2");
  expect(res.text).not.toContain("token_version");
  expect(res.text).not.toContain("secret_note");
  expect(res.text).not.toContain(SECRET);
}
