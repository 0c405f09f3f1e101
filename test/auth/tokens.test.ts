/** Tokens (3.2) and revocation (4.11): forged, expired or revoked tokens are 401, never anonymous (4.1). */
import { createApp } from "citadel";
import { SignJWT, UnsecuredJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";
import { authConfig, bearer, claimsOf, expectError, login, SECRET, signToken, userWithToken } from "./helpers.js";

const now = () => Math.floor(Date.now() / 1000);

describe("tokens (3.2, 4.1, 4.11)", () => {
  let server: TestServer;
  let alice: { id: number; token: string; cookie: string };
  const me = (token: string) => server.request("GET", "/api/auth/me", undefined, bearer(token));

  beforeAll(async () => {
    server = await startServer(authConfig());
    alice = await userWithToken(server, "alice@example.com", "editor");
  });
  afterAll(() => server.close());

  it("a token carries sub, id, email, role, iat, exp (1h), iss and aud, signed HS256 (3.2)", async () => {
    const [header] = alice.token.split(".");
    expect(JSON.parse(Buffer.from(header!, "base64url").toString())).toMatchObject({ alg: "HS256" });
    const claims = claimsOf(alice.token);
    expect(claims).toMatchObject({
      sub: String(alice.id),
      id: alice.id,
      email: "alice@example.com",
      role: "editor",
      iss: "citadel",
      aud: "citadel",
    });
    expect(claims.exp! - claims.iat!).toBe(3600);
    expect(Math.abs(claims.iat! - now())).toBeLessThan(60);
    expect(JSON.stringify(claims)).not.toMatch(/argon2|password/);
  });

  it("a valid token is accepted on the data API and the auth API", async () => {
    expect((await me(alice.token)).status).toBe(200);
    expect((await server.request("GET", "/api/data/posts", undefined, bearer(alice.token))).status).toBe(200);
  });

  it("no token at all is anonymous, not 401 (4.1)", async () => {
    expect((await server.request("GET", "/api/data/posts")).status).toBe(200);
  });

  it("a token signed with the wrong secret is 401 (3.2)", async () => {
    const forged = await signToken(
      { id: alice.id, email: "alice@example.com", role: "editor", ver: 0 },
      { secret: "another-secret-of-sufficient-length-0123456789" },
    );
    expectError(await me(forged), 401, "unauthorized");
    expectError(await server.request("GET", "/api/data/posts", undefined, bearer(forged)), 401, "unauthorized");
  });

  it("an alg:none token is 401 (3.2)", async () => {
    const unsigned = new UnsecuredJWT({ id: alice.id, email: "alice@example.com", role: "admin", ver: 0 })
      .setSubject(String(alice.id))
      .setIssuer("citadel")
      .setAudience("citadel")
      .setIssuedAt()
      .setExpirationTime("1h")
      .encode();
    expectError(await me(unsigned), 401, "unauthorized");
    expectError(await server.request("GET", "/api/data/posts", undefined, bearer(unsigned)), 401, "unauthorized");
    // the same with a signature part left on
    const [, payload, signature] = alice.token.split(".");
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url")}.${payload}.${signature}`;
    expectError(await me(none), 401, "unauthorized");
  });

  it("a token with an algorithm outside the allowlist is 401, even with the right secret (3.2)", async () => {
    const hs512 = await signToken(
      { id: alice.id, email: "alice@example.com", role: "editor", ver: 0 },
      { alg: "HS512" },
    );
    expectError(await me(hs512), 401, "unauthorized");
  });

  it("an expired token is 401 (3.2)", async () => {
    const expired = await signToken(
      { id: alice.id, email: "alice@example.com", role: "editor", ver: 0 },
      { iat: now() - 7200, exp: now() - 3600 },
    );
    expectError(await me(expired), 401, "unauthorized");
  });

  it("clock skew is tolerated within a bound: 10 s late passes, 2 min late does not (3.2)", async () => {
    const claims = { id: alice.id, email: "alice@example.com", role: "editor", ver: 0 };
    expect((await me(await signToken(claims, { iat: now() - 3600, exp: now() - 10 }))).status).toBe(200);
    expectError(await me(await signToken(claims, { iat: now() - 3600, exp: now() - 120 })), 401, "unauthorized");
  });

  it("a tampered payload is 401 (3.2)", async () => {
    const [header, payload, signature] = alice.token.split(".");
    const claims = JSON.parse(Buffer.from(payload!, "base64url").toString());
    const tampered = Buffer.from(JSON.stringify({ ...claims, role: "admin" })).toString("base64url");
    expectError(await me(`${header}.${tampered}.${signature}`), 401, "unauthorized");
    expectError(await me(`${header}.${payload}.${signature}x`), 401, "unauthorized");
  });

  it("garbage, empty and truncated tokens are 401 (4.1)", async () => {
    for (const token of ["garbage", "a.b.c", alice.token.slice(0, 40), ""])
      expectError(
        await server.request("GET", "/api/data/posts", undefined, { authorization: `Bearer ${token}` }),
        401,
        "unauthorized",
      );
    expectError(
      await server.request("GET", "/api/data/posts", undefined, { cookie: "auth=garbage" }),
      401,
      "unauthorized",
    );
  });

  it("a token with the wrong issuer or audience is 401 (3.2)", async () => {
    const claims = { id: alice.id, email: "alice@example.com", role: "editor", ver: 0 };
    const key = new TextEncoder().encode(SECRET);
    const base = () =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(String(alice.id))
        .setIssuedAt()
        .setExpirationTime("1h");
    expectError(await me(await base().setIssuer("evil").setAudience("citadel").sign(key)), 401, "unauthorized");
    expectError(await me(await base().setIssuer("citadel").setAudience("evil").sign(key)), 401, "unauthorized");
    expectError(await me(await base().sign(key)), 401, "unauthorized");
  });

  it("a correctly signed token for another user id than its sub is 401", async () => {
    const token = await signToken({ id: alice.id, email: "alice@example.com", role: "editor", ver: 0 });
    expect((await me(token)).status).toBe(200);
    const mismatched = await new SignJWT({ id: alice.id, email: "alice@example.com", role: "editor", ver: 0 })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("999")
      .setIssuer("citadel")
      .setAudience("citadel")
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(SECRET));
    expectError(await me(mismatched), 401, "unauthorized");
  });

  it("a token for a deleted user is 401 (4.11)", async () => {
    const bob = await userWithToken(server, "bob@example.com");
    const del = await server.request("DELETE", `/api/data/users/${bob.id}`);
    expect(del.status, del.text).toBe(200);
    expectError(await me(bob.token), 401, "unauthorized");
    expectError(await server.request("GET", "/api/data/posts", undefined, bearer(bob.token)), 401, "unauthorized");
  });

  it("a role change makes older tokens 401, even after the role is changed back (4.11)", async () => {
    const carol = await userWithToken(server, "carol@example.com", "user");
    const patch = (role: string) => server.request("PATCH", `/api/data/users/${carol.id}`, { role });
    expect((await patch("editor")).status).toBe(200);
    expectError(await me(carol.token), 401, "unauthorized");
    expect((await patch("user")).status).toBe(200);
    expectError(await me(carol.token), 401, "unauthorized");
    const fresh = await login(server, "carol@example.com");
    expect(claimsOf(fresh.body.token).role).toBe("user");
    expect((await me(fresh.body.token)).status).toBe(200);
  });

  it("changing another field of the user does not revoke its tokens", async () => {
    const dave = await userWithToken(server, "dave@example.com");
    expect((await server.request("PATCH", `/api/data/users/${dave.id}`, { nickname: "d" })).status).toBe(200);
    expect((await me(dave.token)).status).toBe(200);
  });

  it("logout revokes every older token of the user, not only the one used (4.11)", async () => {
    const erin = await userWithToken(server, "erin@example.com");
    const second = (await login(server, "erin@example.com")).body.token;
    expect((await server.request("POST", "/api/auth/logout", undefined, bearer(erin.token))).status).toBe(200);
    expectError(await me(second), 401, "unauthorized");
    expectError(
      await server.request("GET", "/api/data/posts", undefined, { cookie: erin.cookie }),
      401,
      "unauthorized",
    );
  });

  it("a revoked token is 401 on the data API too, never anonymous (4.1, 4.11)", async () => {
    const frank = await userWithToken(server, "frank@example.com");
    await server.request(
      "POST",
      "/api/auth/password/change",
      { password: "correct horse battery", new_password: "another long one" },
      bearer(frank.token),
    );
    expectError(await server.request("GET", "/api/data/posts", undefined, bearer(frank.token)), 401, "unauthorized");
    expectError(
      await server.request("POST", "/api/data/posts", { title: "x" }, bearer(frank.token)),
      401,
      "unauthorized",
    );
  });
});

describe("token settings and the secret at startup (3.2)", () => {
  it("jwt.expires sets the lifetime", async () => {
    const server = await startServer(authConfig({ jwt: { secret: SECRET, expires: "15m" } }));
    try {
      const { token } = await userWithToken(server, "short@example.com");
      const claims = claimsOf(token);
      expect(claims.exp! - claims.iat!).toBe(900);
    } finally {
      await server.close();
    }
  });

  it("a secret shorter than 32 bytes refuses startup, naming config.auth.jwt.secret (3.2)", async () => {
    await expect(
      createApp({ connection: { url: ":memory:" }, config: authConfig({ jwt: { secret: "too-short" } }) }),
    ).rejects.toThrow(/config\.auth\.jwt\.secret.*9 bytes/);
  });

  it("no secret at all refuses startup outside dev mode (3.2)", async () => {
    const saved = process.env.CITADEL_JWT_SECRET;
    delete process.env.CITADEL_JWT_SECRET;
    try {
      await expect(
        createApp({ connection: { url: ":memory:" }, config: authConfig({ jwt: { secret: undefined } }) }),
      ).rejects.toThrow(/config\.auth\.jwt\.secret.*CITADEL_JWT_SECRET/);
    } finally {
      process.env.CITADEL_JWT_SECRET = saved;
    }
  });

  it("CITADEL_JWT_SECRET is used when the config has none (3.2)", async () => {
    const saved = process.env.CITADEL_JWT_SECRET;
    const envSecret = "from-the-environment-0123456789-abcdefghijkl";
    process.env.CITADEL_JWT_SECRET = envSecret;
    try {
      const server = await startServer(authConfig({ jwt: { secret: undefined } }));
      try {
        const forged = await signToken({ id: 1, email: "x@example.com", role: "user", ver: 0 }, { secret: SECRET });
        const u = await userWithToken(server, "env@example.com");
        expect((await server.request("GET", "/api/auth/me", undefined, bearer(u.token))).status).toBe(200);
        const own = await signToken(
          { id: u.id, email: "env@example.com", role: "user", ver: 0 },
          { secret: envSecret },
        );
        expect((await server.request("GET", "/api/auth/me", undefined, bearer(own))).status).toBe(200);
        expectError(await server.request("GET", "/api/auth/me", undefined, bearer(forged)), 401, "unauthorized");
      } finally {
        await server.close();
      }
    } finally {
      process.env.CITADEL_JWT_SECRET = saved;
    }
  });

  it("dev mode starts with a random secret and a loud warning (3.2)", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    try {
      const app = await createApp({
        connection: { url: ":memory:" },
        config: authConfig({ dev: true, jwt: { secret: "short" } }),
      });
      await app.close();
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/WARNING.*random JWT secret/));
    } finally {
      warn.mockRestore();
    }
  });

  it("CITADEL_DEV=1 is dev mode too (3.2)", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    process.env.CITADEL_DEV = "1";
    try {
      const app = await createApp({
        connection: { url: ":memory:" },
        config: authConfig({ jwt: { secret: "short" } }),
      });
      await app.close();
      expect(warn).toHaveBeenCalledOnce();
    } finally {
      delete process.env.CITADEL_DEV;
      warn.mockRestore();
    }
  });

  it("allow_register with a default_role_register that is not a role refuses startup (1.5, 3.3)", async () => {
    await expect(
      createApp({ connection: { url: ":memory:" }, config: authConfig({ default_role_register: "superuser" }) }),
    ).rejects.toThrow(/config\.auth\.default_role_register.*superuser/);
    await expect(
      createApp({ connection: { url: ":memory:" }, config: authConfig({ default_role_register: undefined }) }),
    ).rejects.toThrow(/config\.auth\.default_role_register/);
  });

  it("a default_role_register that is not a role refuses startup with registration off too: it is createUser's default (1.5)", async () => {
    const config = authConfig({ allow_register: false, default_role_register: "membr" });
    await expect(createApp({ connection: { url: ":memory:" }, config })).rejects.toThrow(
      /config\.auth\.default_role_register: unknown role "membr"/,
    );
  });

  it("a JWKS may not list HMAC algorithms or none (3.2)", async () => {
    for (const alg of ["HS256", "none"])
      await expect(
        createApp({
          connection: { url: ":memory:" },
          config: authConfig({
            jwt: {
              secret: SECRET,
              jwks: { url: "http://127.0.0.1:1/jwks", issuer: "i", audience: "a", algorithms: [alg as "RS256"] },
            },
          }),
        }),
      ).rejects.toThrow(/config\.auth\.jwt\.jwks\.algorithms/);
  });
});

describe("on the libsql driver (4.11)", () => {
  it("login, logout and role-change revocation work the same", async () => {
    const server = await startServer(authConfig(), { driver: "libsql" });
    try {
      const u = await userWithToken(server, "libsql@example.com");
      const me = (token: string) => server.request("GET", "/api/auth/me", undefined, bearer(token));
      expect((await me(u.token)).status).toBe(200);
      expect((await server.request("PATCH", `/api/data/users/${u.id}`, { role: "editor" })).status).toBe(200);
      expectError(await me(u.token), 401, "unauthorized");
      const fresh = (await login(server, "libsql@example.com")).body.token;
      expect((await server.request("POST", "/api/auth/logout", undefined, bearer(fresh))).status).toBe(200);
      expectError(await me(fresh), 401, "unauthorized");
    } finally {
      await server.close();
    }
  });
});
