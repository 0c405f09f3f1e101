/** The `/api/auth` routes over HTTP (§3): register, login, me, logout, password change, strategies. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";
import {
  authConfig,
  bearer,
  claimsOf,
  cookieOf,
  expectError,
  expectNoSecrets,
  login,
  PASSWORD,
  register,
  userWithToken,
} from "./helpers.js";

describe("auth routes (§3)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(authConfig());
  });
  afterAll(() => server.close());

  it("register answers 201 { user, token } with the default role and sets the cookie (§3, 3.3)", async () => {
    const res = await register(server, "  New.User@Example.COM ");
    expect(res.status, res.text).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(["token", "user"]);
    expect(res.body.user).toMatchObject({ email: "new.user@example.com", role: "user", nickname: null });
    expect(typeof res.body.user.id).toBe("number");
    expect(claimsOf(res.body.token)).toMatchObject({ id: res.body.user.id, role: "user" });
    expect(cookieOf(res)).toBe(`auth=${res.body.token}`);
    expectNoSecrets(res);
  });

  it("register accepts fields the app added to users (3.3)", async () => {
    const res = await server.request("POST", "/api/auth/password/register", {
      email: "nick@example.com",
      password: PASSWORD,
      nickname: "nick",
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body.user.nickname).toBe("nick");
  });

  it("register refuses role in the body, naming it (3.3)", async () => {
    const res = await server.request("POST", "/api/auth/password/register", {
      email: "mallory@example.com",
      password: PASSWORD,
      role: "admin",
    });
    expectError(res, 400, "validation_failed");
    expect(res.body.error.message).toContain("role");
    expect(Object.keys(res.body.error.fields)).toEqual(["role"]);
    expect(
      (await server.request("POST", "/api/auth/password/login", { email: "mallory@example.com", password: PASSWORD }))
        .status,
    ).toBe(401);
  });

  for (const field of [
    "id",
    "created_at",
    "updated_at",
    "password_hash",
    "token_version",
    "secret_note",
    "author_id",
    "is_admin",
  ])
    it(`register refuses the system, hidden or unknown field "${field}" (3.3)`, async () => {
      const res = await server.request("POST", "/api/auth/password/register", {
        email: `f-${field}@example.com`,
        password: PASSWORD,
        [field]: field === "id" ? 1 : "x",
      });
      expectError(res, 400, "validation_failed");
      expect(Object.keys(res.body.error.fields)).toEqual([field]);
      expect(res.body.error.message).toContain(field);
    });

  it("a duplicate email is 409, case-insensitively, whatever the password (3.3)", async () => {
    expect((await register(server, "dup@example.com")).status).toBe(201);
    const same = await register(server, "DUP@example.com");
    expectError(same, 409, "conflict");
    const other = await register(server, "dup@example.com", "another password!");
    expectError(other, 409, "conflict");
    expect(other.text).toBe(same.text);
    expect(same.body.error.message).not.toMatch(/password/i);
  });

  it("register enforces the password length at both ends, with per-field errors like the data API (3.1, 3.3, 2.4)", async () => {
    const short = await register(server, "short@example.com", "1234567");
    expectError(short, 400, "validation_failed");
    expect(short.body.error.fields).toEqual({ password: ["must be at least 8 characters"] });
    expect(short.body.error.field).toBeUndefined();
    expectError(await register(server, "long@example.com", "x".repeat(257)), 400, "validation_failed");
    expect((await register(server, "exact@example.com", "12345678")).status).toBe(201);
  });

  // a body that is not an object is a bad request; an object with a bad field names the field (2.4)
  const malformed: [string, unknown, string][] = [
    ["not JSON", "{ email: ", "bad_request"],
    ["an array", [{ email: "a@example.com", password: PASSWORD }], "bad_request"],
    ["a string", JSON.stringify("hello"), "bad_request"],
    ["no email", { password: PASSWORD }, "validation_failed"],
    ["no password", { email: "np@example.com" }, "validation_failed"],
    ["a numeric email", { email: 42, password: PASSWORD }, "validation_failed"],
    ["a non-string password", { email: "ns@example.com", password: 12345678 }, "validation_failed"],
    ["an invalid email", { email: "not-an-email", password: PASSWORD }, "validation_failed"],
  ];
  for (const [name, body, code] of malformed) {
    it(`register with ${name} is 400 ${code} (3.3)`, async () => {
      expectError(await server.request("POST", "/api/auth/password/register", body), 400, code);
    });
    if (name !== "an invalid email")
      // login looks an invalid email up like any other: 401 (covered below)
      it(`login with ${name} is 400 ${code} (3.4)`, async () => {
        expectError(await server.request("POST", "/api/auth/password/login", body), 400, code);
      });
  }

  it("an empty body is 400 on register and login", async () => {
    expectError(await server.request("POST", "/api/auth/password/register"), 400, "bad_request");
    expectError(await server.request("POST", "/api/auth/password/login"), 400, "bad_request");
  });

  it("login answers { user, token } and sets an httpOnly cookie (§3)", async () => {
    await server.app.module.auth.createUser({ email: "login@example.com", password: PASSWORD, role: "editor" });
    const res = await login(server, "LOGIN@example.com");
    expect(Object.keys(res.body).sort()).toEqual(["token", "user"]);
    expect(res.body.user).toMatchObject({ email: "login@example.com", role: "editor" });
    const setCookie = res.headers.getSetCookie().join("\n");
    expect(setCookie).toMatch(/HttpOnly/);
    expectNoSecrets(res);
  });

  it('every login failure says only "invalid email or password" (3.4)', async () => {
    await server.app.module.auth.createUser({ email: "fail@example.com", password: PASSWORD });
    const wrong = await server.request("POST", "/api/auth/password/login", {
      email: "fail@example.com",
      password: "wrong password",
    });
    const unknown = await server.request("POST", "/api/auth/password/login", {
      email: "nobody@example.com",
      password: PASSWORD,
    });
    const invalid = await server.request("POST", "/api/auth/password/login", {
      email: "not-an-email",
      password: PASSWORD,
    });
    const huge = await server.request("POST", "/api/auth/password/login", {
      email: "fail@example.com",
      password: "x".repeat(10_000),
    });
    for (const res of [wrong, unknown, invalid, huge]) {
      expectError(res, 401, "unauthorized");
      expect(res.body.error.message).toBe("invalid email or password");
      expect(res.text).toBe(wrong.text);
    }
  });

  it("a user created without a password (through the data API) cannot log in (3.4)", async () => {
    const created = await server.request("POST", "/api/data/users", { email: "nopass@example.com" });
    expect(created.status, created.text).toBe(201);
    expectError(
      await server.request("POST", "/api/auth/password/login", { email: "nopass@example.com", password: "" }),
      400,
      "validation_failed",
    );
    expectError(
      await server.request("POST", "/api/auth/password/login", { email: "nopass@example.com", password: PASSWORD }),
      401,
      "unauthorized",
    );
  });

  it("GET /me answers { user } for a Bearer token and for the cookie (§3)", async () => {
    const u = await userWithToken(server, "me@example.com", "editor");
    for (const headers of [bearer(u.token), { cookie: u.cookie }]) {
      const res = await server.request("GET", "/api/auth/me", undefined, headers);
      expect(res.status, res.text).toBe(200);
      expect(res.body).toEqual({
        user: expect.objectContaining({ id: u.id, email: "me@example.com", role: "editor" }),
      });
      expectNoSecrets(res);
    }
  });

  it("GET /me without credentials is 401 (§3)", async () => {
    expectError(await server.request("GET", "/api/auth/me"), 401, "unauthorized");
  });

  it("the Bearer header wins over the cookie (3.2)", async () => {
    const a = await userWithToken(server, "bearer-a@example.com");
    const b = await userWithToken(server, "bearer-b@example.com");
    const res = await server.request("GET", "/api/auth/me", undefined, { ...bearer(a.token), cookie: b.cookie });
    expect(res.body.user.email).toBe("bearer-a@example.com");
    const broken = await server.request("GET", "/api/auth/me", undefined, { ...bearer("garbage"), cookie: b.cookie });
    expectError(broken, 401, "unauthorized");
  });

  it("POST /logout clears the cookie and revokes the token (§3, 4.11)", async () => {
    const u = await userWithToken(server, "logout@example.com");
    const res = await server.request("POST", "/api/auth/logout", undefined, bearer(u.token));
    expect(res.status, res.text).toBe(200);
    const cleared = res.headers.getSetCookie().find((c) => c.startsWith("auth="));
    expect(cleared).toMatch(/^auth=;/);
    expect(cleared).toMatch(/Max-Age=0/);
    expectError(await server.request("GET", "/api/auth/me", undefined, bearer(u.token)), 401, "unauthorized");
  });

  it("GET /logout works too, with the cookie from our own pages (bknd's client) (§3, 4.11)", async () => {
    const u = await userWithToken(server, "getlogout@example.com");
    // what a browser sends for a same-origin fetch; a cross-site GET only clears the cookie (§3.7)
    const sameOrigin = { cookie: u.cookie, "sec-fetch-site": "same-origin" };
    const res = await server.request("GET", "/api/auth/logout", undefined, sameOrigin);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.getSetCookie().find((c) => c.startsWith("auth="))).toMatch(/^auth=;/);
    expectError(await server.request("GET", "/api/auth/me", undefined, { cookie: u.cookie }), 401, "unauthorized");
  });

  it("logout without credentials, or with a dead token, still answers 200 and clears the cookie", async () => {
    expect((await server.request("POST", "/api/auth/logout")).status).toBe(200);
    expect((await server.request("GET", "/api/auth/logout", undefined, bearer("garbage"))).status).toBe(200);
  });

  it("logging in again works with a stale token still attached (bknd's client sends it)", async () => {
    const u = await userWithToken(server, "stale@example.com");
    await server.request("POST", "/api/auth/logout", undefined, bearer(u.token));
    const res = await server.request(
      "POST",
      "/api/auth/password/login",
      { email: "stale@example.com", password: PASSWORD },
      { ...bearer(u.token), cookie: u.cookie },
    );
    expect(res.status, res.text).toBe(200);
  });

  it("password change revokes older tokens and returns a fresh session (§3, 4.11)", async () => {
    const u = await userWithToken(server, "change@example.com");
    const other = (await login(server, "change@example.com")).body.token as string;
    const res = await server.request(
      "POST",
      "/api/auth/password/change",
      { password: PASSWORD, new_password: "a brand new password" },
      bearer(u.token),
    );
    expect(res.status, res.text).toBe(200);
    expect(res.body.user.email).toBe("change@example.com");
    expectNoSecrets(res);
    for (const old of [u.token, other])
      expectError(await server.request("GET", "/api/auth/me", undefined, bearer(old)), 401, "unauthorized");
    expect((await server.request("GET", "/api/auth/me", undefined, bearer(res.body.token))).status).toBe(200);
    expectError(
      await server.request("POST", "/api/auth/password/login", { email: "change@example.com", password: PASSWORD }),
      401,
      "unauthorized",
    );
    await login(server, "change@example.com", "a brand new password");
  });

  it("password change checks the current password and the new one's length (3.1)", async () => {
    const u = await userWithToken(server, "change2@example.com");
    const change = (body: unknown) => server.request("POST", "/api/auth/password/change", body, bearer(u.token));
    expectError(
      await change({ password: "wrong password", new_password: "a brand new password" }),
      401,
      "unauthorized",
    );
    expectError(await change({ password: PASSWORD, new_password: "short" }), 400, "validation_failed");
    expectError(await change({ password: PASSWORD, new_password: "y".repeat(257) }), 400, "validation_failed");
    expectError(await change({ password: PASSWORD }), 400, "validation_failed");
    expectError(await change([]), 400, "bad_request");
    // nothing was changed: the token still works
    expect((await server.request("GET", "/api/auth/me", undefined, bearer(u.token))).status).toBe(200);
  });

  it("password change without credentials is 401", async () => {
    const res = await server.request("POST", "/api/auth/password/change", {
      password: PASSWORD,
      new_password: "whatever-long",
    });
    expectError(res, 401, "unauthorized");
  });

  it("GET /strategies answers { strategies, allow_register } (§3)", async () => {
    const res = await server.request("GET", "/api/auth/strategies");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ strategies: { password: { type: "password", enabled: true } }, allow_register: true });
  });

  it("users read through the data API never show the hash or hidden fields (3.6, 4.8)", async () => {
    await userWithToken(server, "dataapi@example.com");
    const res = await server.request("GET", "/api/data/users?limit=100");
    expect(res.status).toBe(200);
    expect(res.body.data.length).toBeGreaterThan(0);
    expectNoSecrets(res);
    const write = await server.request("PATCH", `/api/data/users/${res.body.data[0].id}`, { password_hash: "x" });
    expect(write.status).toBe(400);
  });
});

describe("registration switched off (§3, 3.3)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(authConfig({ allow_register: false }));
  });
  afterAll(() => server.close());

  it("register is 403 with a clear message when allow_register is false", async () => {
    const res = await register(server, "closed@example.com");
    expectError(res, 403, "forbidden");
    expect(res.body.error.message).toContain("allow_register");
  });

  it("strategies says allow_register: false", async () => {
    expect((await server.request("GET", "/api/auth/strategies")).body.allow_register).toBe(false);
  });
});

describe("createUser from code (3.5)", () => {
  it("seeds run ctx.app.module.auth.createUser and the user can log in", async () => {
    const server = await startServer(authConfig(), {
      options: {
        seed: async (ctx) => {
          await ctx.app.module.auth.createUser({ email: "admin@example.com", password: PASSWORD, role: "admin" });
        },
      },
    });
    try {
      const res = await login(server, "admin@example.com");
      expect(res.body.user.role).toBe("admin");
      expect(claimsOf(res.body.token).role).toBe("admin");
    } finally {
      await server.close();
    }
  });

  it("createUser refuses an unknown role, a short password and a duplicate email", async () => {
    const server = await startServer(authConfig());
    try {
      const auth = server.app.module.auth;
      await expect(auth.createUser({ email: "x@example.com", password: PASSWORD, role: "root" })).rejects.toThrow(
        /role/,
      );
      await expect(auth.createUser({ email: "x@example.com", password: "short" })).rejects.toThrow(/password/);
      await auth.createUser({ email: "x@example.com", password: PASSWORD });
      await expect(auth.createUser({ email: "X@example.com", password: PASSWORD })).rejects.toThrow(/already exists/);
    } finally {
      await server.close();
    }
  });

  it("without auth, the auth routes do not exist and module.auth explains why", async () => {
    const server = await startServer({ data: authConfig().data });
    try {
      expectError(
        await server.request("POST", "/api/auth/password/login", { email: "a@b.c", password: PASSWORD }),
        404,
        "not_found",
      );
      await expect(server.app.module.auth.createUser({ email: "a@b.c", password: PASSWORD })).rejects.toThrow(
        /auth is disabled/,
      );
    } finally {
      await server.close();
    }
  });
});
