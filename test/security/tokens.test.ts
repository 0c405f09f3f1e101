/**
 * Token and session attacks (§3.2, §3.7, §4.1, §4.11): forged and confused tokens, claims that disagree with the
 * user row, revocation after logout / password change / role change / deletion, cookie vs Bearer, CSRF.
 */
import { generateKeyPairSync } from "node:crypto";
import { exportJWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Booted, boot, PASSWORD, TEST_SECRET } from "../guard/helpers.js";
import { bearer } from "../helpers/auth.js";
import type { TestResponse } from "../helpers/server.js";
import { BOOT, ID, securityApp } from "./fixture.js";

let b: Booted<void>;
beforeAll(async () => {
  b = await boot(securityApp, BOOT);
});
afterAll(() => b.server.close());

const key = new TextEncoder().encode(TEST_SECRET);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);
const rootClaims = () => ({ id: ID.root, email: "root@test.com", role: "admin", ver: 0 });

/** A token signed with the real secret, with any claims and header. */
async function signed(claims: Record<string, unknown>, opts: { alg?: string; iss?: string; aud?: string } = {}) {
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: opts.alg ?? "HS256", typ: "JWT" })
    .setIssuer(opts.iss ?? "citadel")
    .setAudience(opts.aud ?? "citadel")
    .setIssuedAt();
  if (claims.sub === undefined && claims.id !== undefined) jwt = jwt.setSubject(String(claims.id));
  if (claims.exp === undefined) jwt = jwt.setExpirationTime("1h");
  return jwt.sign(key);
}

/** The notes of admins only: 200 for the admin, 403 for a member, 401 for a bad token. */
const probe = (token: string) => b.server.request("GET", "/api/data/notes", undefined, bearer(token));

const me = (token: string, headers: Record<string, string> = bearer(token)) =>
  b.server.request("GET", "/api/auth/me", undefined, headers);

function expect401(res: TestResponse) {
  expect(res.status, res.text).toBe(401);
  expect(res.body.error.code).toBe("unauthorized");
  expect(res.text).not.toContain("note");
}

describe("forged tokens are 401, never anonymous and never admin (§3.2, §4.1)", () => {
  it("the real admin token works (control)", async () => {
    expect((await probe(b.tokens.root!)).status).toBe(200);
  });

  it('alg "none" is refused', async () => {
    const payload = {
      ...rootClaims(),
      sub: String(ID.root),
      iss: "citadel",
      aud: "citadel",
      iat: now(),
      exp: now() + 600,
    };
    for (const alg of ["none", "None", "NONE"]) {
      const token = `${b64({ alg, typ: "JWT" })}.${b64(payload)}.`;
      expect401(await probe(token));
      expect401(await b.server.request("GET", "/api/auth/me", undefined, bearer(token)));
    }
  });

  it("another HMAC algorithm with the same secret is refused (algorithm allowlist)", async () => {
    for (const alg of ["HS384", "HS512"]) expect401(await probe(await signed(rootClaims(), { alg })));
  });

  it("an RS256 token carrying its own key (jwk / jku / kid headers) is refused", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const jwk = await exportJWK(publicKey);
    const token = await new SignJWT(rootClaims())
      .setProtectedHeader({ alg: "RS256", jwk, kid: "../../etc/passwd", jku: "http://127.0.0.1:1/jwks" })
      .setSubject(String(ID.root))
      .setIssuer("citadel")
      .setAudience("citadel")
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(privateKey);
    expect401(await probe(token));
  });

  it("a token signed with another secret, or with its payload edited, is refused", async () => {
    const other = await new SignJWT(rootClaims())
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(String(ID.root))
      .setIssuer("citadel")
      .setAudience("citadel")
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("another-secret-that-is-long-enough-0123456789"));
    expect401(await probe(other));
    const [h, p, s] = b.tokens.alice!.split(".");
    const claims = JSON.parse(Buffer.from(p!, "base64url").toString());
    const edited = `${h}.${b64({ ...claims, role: "admin" })}.${s}`;
    expect401(await probe(edited));
    const swapped = `${h}.${b64({ ...claims, id: ID.root, sub: String(ID.root) })}.${s}`;
    expect401(await probe(swapped));
  });

  it.each([
    ["a role the user does not have", { id: ID.alice, email: "alice@test.com", role: "admin", ver: 0 }],
    ["another token version", { id: ID.root, email: "root@test.com", role: "admin", ver: 7 }],
    ["no version", { id: ID.root, email: "root@test.com", role: "admin" }],
    ["a string id", { id: String(ID.root), email: "root@test.com", role: "admin", ver: 0 }],
    ["sub and id that disagree", { ...rootClaims(), sub: String(ID.alice) }],
    ["a user that does not exist", { id: 999, email: "x@test.com", role: "admin", ver: 0 }],
    ["an expiry in the past", { ...rootClaims(), exp: now() - 3600 }],
  ])("a correctly signed token with %s is refused", async (_, claims) => {
    expect401(await probe(await signed(claims)));
  });

  it("a correctly signed token for another issuer or audience is refused", async () => {
    expect401(await probe(await signed(rootClaims(), { iss: "evil" })));
    expect401(await probe(await signed(rootClaims(), { aud: "evil" })));
  });

  it.each(["Bearer", "Bearer ", "Bearer a.b.c", "Basic cm9vdDpyb290", "Bearer x y"])(
    "Authorization %j is 401, even on routes anonymous callers may use",
    async (header) => {
      const res = await b.server.request("GET", "/api/data/tags", undefined, { authorization: header });
      expect401(res);
    },
  );
});

describe("tokens follow the user (§4.11)", () => {
  async function fresh(name: string) {
    const res = await b.server.request("POST", "/api/auth/password/register", {
      email: `${name}@rev.test`,
      password: PASSWORD,
    });
    expect(res.status, res.text).toBe(201);
    return { id: res.body.user.id as number, token: res.body.token as string };
  }
  it("after logout (POST and GET), the token fails as Bearer and as cookie", async () => {
    for (const method of ["POST", "GET"]) {
      const u = await fresh(`logout-${method.toLowerCase()}`);
      expect((await me(u.token)).status).toBe(200);
      const out = await b.server.request(method, "/api/auth/logout", undefined, bearer(u.token));
      expect(out.status).toBe(200);
      expect401(await me(u.token));
      expect401(await me(u.token, { cookie: `auth=${u.token}` }));
      expect401(await b.server.request("GET", "/api/data/tasks", undefined, bearer(u.token)));
    }
  });

  it("after a password change, older tokens fail and the new one works", async () => {
    const u = await fresh("pwchange");
    const res = await b.server.request(
      "POST",
      "/api/auth/password/change",
      { password: PASSWORD, new_password: "another-pass-1" },
      bearer(u.token),
    );
    expect(res.status, res.text).toBe(200);
    expect401(await me(u.token));
    expect((await me(res.body.token)).status).toBe(200);
  });

  it("after an admin changes the role (one row or many), older tokens fail", async () => {
    const u = await fresh("rolechange");
    const one = await b.as("root", "PATCH", `/api/data/users/${u.id}`, { role: "viewer" });
    expect(one.status, one.text).toBe(200);
    expect401(await me(u.token));
    const again = await b.server.request("POST", "/api/auth/password/login", {
      email: "rolechange@rev.test",
      password: PASSWORD,
    });
    expect(again.body.user.role).toBe("viewer");
    const many = await b.as("root", "PATCH", "/api/data/users", { update: { role: "member" }, where: { id: u.id } });
    expect(many.status).toBe(200);
    expect401(await me(again.body.token));
  });

  it("after the user is deleted, the token fails, even once a new user registers", async () => {
    const u = await fresh("deleted");
    const del = await b.as("root", "DELETE", `/api/data/users/${u.id}`);
    expect(del.status, del.text).toBe(200);
    expect401(await me(u.token));
    const next = await fresh("deleted-next");
    expect(next.id).not.toBe(u.id);
    expect401(await probe(u.token));
  });
});

describe("register never takes privileged or hidden fields (§3.3)", () => {
  it.each([
    ["role", { role: "admin" }],
    ["a null role", { role: null }],
    ["Role", { Role: "admin" }],
    ["password_hash", { password_hash: "$argon2id$v=19$m=1024,t=1,p=1$x$y" }],
    ["token_version", { token_version: 99 }],
    ["id", { id: 1 }],
    ["created_at", { created_at: "2000-01-01T00:00:00Z" }],
    ["__proto__", JSON.parse('{"__proto__":{"role":"admin"}}')],
    ["constructor", { constructor: { prototype: { role: "admin" } } }],
  ])("a register body with %s is 400 and creates nobody", async (_, extra) => {
    const email = `mass-${Math.random().toString(36).slice(2)}@test.com`;
    const res = await b.server.request("POST", "/api/auth/password/register", { email, password: PASSWORD, ...extra });
    expect(res.status, res.text).toBe(400);
    const login = await b.server.request("POST", "/api/auth/password/login", { email, password: PASSWORD });
    expect(login.status).toBe(401);
    expect(({} as Record<string, unknown>).role).toBeUndefined();
  });

  it("the registered user gets the default role, and no answer carries the hash", async () => {
    const res = await b.server.request("POST", "/api/auth/password/register", {
      email: "  Plain@Test.COM ",
      password: PASSWORD,
      nickname: "p",
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body.user).toMatchObject({ email: "plain@test.com", role: "member" });
    for (const r of [res, await me(res.body.token)]) {
      expect(r.text).not.toContain("password_hash");
      expect(r.text).not.toContain("$argon2");
      expect(r.text).not.toContain("token_version");
    }
    const dup = await b.server.request("POST", "/api/auth/password/register", {
      email: "PLAIN@test.com",
      password: "wrong-password-x",
    });
    expect(dup.status).toBe(409);
    expect(dup.text).not.toMatch(/password/i);
  });
});
