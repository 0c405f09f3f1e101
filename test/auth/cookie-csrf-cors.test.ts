/** The session cookie, CSRF for cookie sessions and CORS (§3, 3.7). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";
import { authConfig, bearer, expectError, login, userWithToken } from "./helpers.js";

const ALLOWED = "https://app.example.com";
const EVIL = "https://evil.example";

function sessionCookie(setCookies: string[]): string {
  const cookie = setCookies.find((c) => c.startsWith("auth="));
  expect(cookie).toBeDefined();
  return cookie!;
}

describe("the session cookie (§3)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(authConfig({}, { trust_proxy: true }));
    await server.app.module.auth.createUser({ email: "c@example.com", password: "correct horse battery" });
  });
  afterAll(() => server.close());

  it("is httpOnly, SameSite=Lax, Path=/, lives as long as the token, and is not Secure over http (§3)", async () => {
    const cookie = sessionCookie((await login(server, "c@example.com")).headers.getSetCookie());
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Lax/);
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).toMatch(/; Max-Age=3600/);
    expect(cookie).not.toMatch(/Secure/);
  });

  it("is Secure when a trusted proxy says the request came over https", async () => {
    const res = await server.request(
      "POST",
      "/api/auth/password/login",
      { email: "c@example.com", password: "correct horse battery" },
      { "x-forwarded-proto": "https" },
    );
    expect(sessionCookie(res.headers.getSetCookie())).toMatch(/; Secure/);
  });

  it("ignores X-Forwarded-Proto without trust_proxy, and follows cookie.secure and cookie.same_site", async () => {
    const other = await startServer(authConfig({ cookie: { same_site: "Strict" } }));
    const secure = await startServer(authConfig({ cookie: { secure: true, name: "sid" } }));
    try {
      await other.app.module.auth.createUser({ email: "c@example.com", password: "correct horse battery" });
      await secure.app.module.auth.createUser({ email: "c@example.com", password: "correct horse battery" });
      const body = { email: "c@example.com", password: "correct horse battery" };
      const a = await other.request("POST", "/api/auth/password/login", body, { "x-forwarded-proto": "https" });
      expect(sessionCookie(a.headers.getSetCookie())).not.toMatch(/Secure/);
      expect(sessionCookie(a.headers.getSetCookie())).toMatch(/SameSite=Strict/);
      const b = await secure.request("POST", "/api/auth/password/login", body);
      const sid = b.headers.getSetCookie().find((c) => c.startsWith("sid="));
      expect(sid).toMatch(/; Secure/);
      expect((await secure.request("GET", "/api/auth/me", undefined, { cookie: sid!.split(";")[0]! })).status).toBe(
        200,
      );
    } finally {
      await other.close();
      await secure.close();
    }
  });
});

describe("CSRF for cookie sessions (3.7)", () => {
  let server: TestServer;
  let cookie: string;
  let token: string;
  const post = (headers: Record<string, string>) => server.request("POST", "/api/data/posts", { title: "t" }, headers);

  beforeAll(async () => {
    server = await startServer(authConfig({}, { cors: { origin: [ALLOWED] } }));
    ({ cookie, token } = await userWithToken(server, "csrf@example.com"));
  });
  afterAll(() => server.close());

  it("a cookie-authenticated write without Origin or Referer is 403 (3.7)", async () => {
    expectError(await post({ cookie }), 403, "forbidden");
  });

  it("a cookie-authenticated write from a foreign origin is 403, on every unsafe method (3.7)", async () => {
    expectError(await post({ cookie, origin: EVIL }), 403, "forbidden");
    expectError(await post({ cookie, origin: "null" }), 403, "forbidden");
    expectError(await post({ cookie, referer: `${EVIL}/attack.html` }), 403, "forbidden");
    const created = await post({ cookie, origin: server.url });
    for (const method of ["PATCH", "PUT", "DELETE"])
      expectError(
        await server.request(
          method,
          `/api/data/posts/${created.body.data.id}`,
          { title: "x" },
          { cookie, origin: EVIL },
        ),
        403,
        "forbidden",
      );
    expectError(
      await server.request("POST", "/api/auth/logout", undefined, { cookie, origin: EVIL }),
      403,
      "forbidden",
    );
    expectError(
      await server.request(
        "POST",
        "/api/auth/password/change",
        { password: "x", new_password: "y".repeat(10) },
        { cookie, origin: EVIL },
      ),
      403,
      "forbidden",
    );
  });

  it("a cookie-authenticated write from our own origin or an allowed one passes (3.7)", async () => {
    expect((await post({ cookie, origin: server.url })).status).toBe(201);
    expect((await post({ cookie, referer: `${server.url}/admin/page` })).status).toBe(201);
    expect((await post({ cookie, origin: ALLOWED })).status).toBe(201);
  });

  it("a Bearer-authenticated write needs no Origin (3.7)", async () => {
    expect((await post({ ...bearer(token), origin: EVIL })).status).toBe(201);
    expect((await post(bearer(token))).status).toBe(201);
  });

  it("reads with the cookie need no Origin (3.7)", async () => {
    expect((await server.request("GET", "/api/auth/me", undefined, { cookie, origin: EVIL })).status).toBe(200);
    expect((await server.request("GET", "/api/data/posts", undefined, { cookie })).status).toBe(200);
  });

  it("anonymous writes are not a cookie session and are left to the guard (3.7)", async () => {
    expect((await server.request("POST", "/api/data/posts", { title: "anon" }, { origin: EVIL })).status).toBe(201);
  });

  it("a wildcard CORS origin never admits a cookie-authenticated write (3.7)", async () => {
    const open = await startServer(authConfig({}, { cors: { origin: "*" } }));
    try {
      const u = await userWithToken(open, "wild@example.com");
      expectError(
        await open.request("POST", "/api/data/posts", { title: "t" }, { cookie: u.cookie, origin: EVIL }),
        403,
        "forbidden",
      );
    } finally {
      await open.close();
    }
  });

  it("behind a trusted proxy, the public origin counts as our own (3.7)", async () => {
    const proxied = await startServer(authConfig({}, { trust_proxy: true }));
    const direct = await startServer(authConfig());
    try {
      const headers = {
        origin: "https://public.example",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "public.example",
      };
      const a = await userWithToken(proxied, "p@example.com");
      const b = await userWithToken(direct, "p@example.com");
      expect(
        (await proxied.request("POST", "/api/data/posts", { title: "t" }, { cookie: a.cookie, ...headers })).status,
      ).toBe(201);
      expectError(
        await direct.request("POST", "/api/data/posts", { title: "t" }, { cookie: b.cookie, ...headers }),
        403,
        "forbidden",
      );
    } finally {
      await proxied.close();
      await direct.close();
    }
  });
});

describe("CORS (3.7)", () => {
  const preflight = (server: TestServer, origin: string) =>
    server.request("OPTIONS", "/api/data/posts", undefined, {
      origin,
      "access-control-request-method": "PATCH",
      "access-control-request-headers": "content-type,authorization",
    });

  it("is closed by default: no CORS headers for any origin (3.7)", async () => {
    const server = await startServer(authConfig());
    try {
      for (const res of [
        await preflight(server, ALLOWED),
        await server.request("GET", "/api/data/posts", undefined, { origin: ALLOWED }),
      ]) {
        expect(res.headers.get("access-control-allow-origin")).toBeNull();
        expect(res.headers.get("access-control-allow-credentials")).toBeNull();
      }
    } finally {
      await server.close();
    }
  });

  it("opens for listed origins only, with credentials (3.7)", async () => {
    const server = await startServer(authConfig({}, { cors: { origin: [ALLOWED, "http://localhost:3000"] } }));
    try {
      const ok = await preflight(server, ALLOWED);
      expect(ok.status).toBe(204);
      expect(ok.headers.get("access-control-allow-origin")).toBe(ALLOWED);
      expect(ok.headers.get("access-control-allow-credentials")).toBe("true");
      expect(ok.headers.get("access-control-allow-methods")).toContain("PATCH");
      expect(ok.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
      const get = await server.request("GET", "/api/data/posts", undefined, { origin: "http://localhost:3000" });
      expect(get.headers.get("access-control-allow-origin")).toBe("http://localhost:3000");
      expect(get.headers.get("vary")).toMatch(/Origin/);

      for (const res of [
        await preflight(server, EVIL),
        await server.request("GET", "/api/data/posts", undefined, { origin: EVIL }),
      ]) {
        expect(res.headers.get("access-control-allow-origin")).toBeNull();
        expect(res.headers.get("access-control-allow-credentials")).toBeNull();
      }
    } finally {
      await server.close();
    }
  });

  it("a wildcard origin gets CORS without credentials, never both (3.7)", async () => {
    const server = await startServer(authConfig({}, { cors: { origin: ["*", ALLOWED] } }));
    try {
      const res = await preflight(server, EVIL);
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
      expect(res.headers.get("access-control-allow-credentials")).toBeNull();
      const fromListed = await server.request("GET", "/api/data/posts", undefined, { origin: ALLOWED });
      expect(fromListed.headers.get("access-control-allow-credentials")).toBeNull();
    } finally {
      await server.close();
    }
  });
});
