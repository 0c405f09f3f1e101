/**
 * Cross-site requests to the auth routes (§3.7): `HEAD` is a `GET` and never changes state, and login and
 * register refuse foreign origins and bodies that are not `application/json`, so that a page elsewhere can
 * neither log a visitor out of every session nor log them into the attacker's account.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authConfig, bearer, expectError, PASSWORD, userWithToken } from "../auth/helpers.js";
import { dbRows } from "../guard/helpers.js";
import { startServer, type TestResponse, type TestServer } from "../helpers/server.js";

const ALLOWED = "https://app.example.com";
const EVIL = "https://evil.example";

let server: TestServer;
beforeAll(async () => {
  server = await startServer(authConfig({}, { cors: { origin: [ALLOWED] } }));
  await server.request("POST", "/api/data/posts", { title: "a post" });
});
afterAll(() => server.close());

const me = (token: string) => server.request("GET", "/api/auth/me", undefined, bearer(token));
const sessionCookieSet = (res: TestResponse) => res.headers.getSetCookie().some((c) => /^auth=[^;]/.test(c));

/** Everything a request could change: users (with their token versions) and rows. */
const state = async () =>
  JSON.stringify([await dbRows(server, "SELECT * FROM users"), await dbRows(server, "SELECT * FROM posts")]);

describe("HEAD is a GET: it never changes state (3.7)", () => {
  it("HEAD /api/auth/logout never revokes a token (3.7)", async () => {
    const u = await userWithToken(server, "head-logout@example.com");
    const variants: Record<string, string>[] = [
      // what the issue reported: the cookie alone, from a foreign origin
      { cookie: u.cookie, origin: EVIL },
      { cookie: u.cookie, referer: `${EVIL}/page`, "sec-fetch-site": "cross-site" },
      // not even with proof that the request is ours: a HEAD is a read
      { cookie: u.cookie, "sec-fetch-site": "same-origin" },
      { cookie: u.cookie, origin: server.url },
      bearer(u.token),
    ];
    for (const headers of variants) {
      const res = await server.request("HEAD", "/api/auth/logout", undefined, headers);
      expect(res.status).toBe(200);
      expect(res.headers.getSetCookie(), "a HEAD does not clear the cookie either").toEqual([]);
      expect((await me(u.token)).status, `HEAD with ${JSON.stringify(headers)} revoked the token`).toBe(200);
    }
  });

  it("no GET or HEAD route changes the database, whoever sends it with the cookie (3.7)", async () => {
    const u = await userWithToken(server, "reads@example.com");
    const before = await state();
    const routes = [
      "/api/auth/me",
      "/api/auth/strategies",
      "/api/auth/logout",
      "/api/data/posts",
      "/api/data/posts/1",
      "/api/data/posts/count",
      "/api/data/posts/exists",
      "/api/data/posts/1/author",
      "/api/data/entity/posts",
    ];
    for (const method of ["HEAD", "GET"])
      for (const path of routes)
        for (const origin of [EVIL, "null"]) {
          const res = await server.request(method, path, undefined, { cookie: u.cookie, origin });
          expect(res.status, `${method} ${path} from ${origin}`).toBeLessThan(500);
        }
    expect(await state(), "a cross-site GET or HEAD changed the database").toBe(before);
    expect((await me(u.token)).status).toBe(200);
  });

  it("control: a POST logout from our own origin still revokes, and so does bknd's GET logout with a Bearer (3.7)", async () => {
    const a = await userWithToken(server, "post-logout@example.com");
    const res = await server.request("POST", "/api/auth/logout", undefined, { cookie: a.cookie, origin: server.url });
    expect(res.status, res.text).toBe(200);
    expect((await me(a.token)).status).toBe(401);
    const b = await userWithToken(server, "get-logout@example.com");
    expect((await server.request("GET", "/api/auth/logout", undefined, bearer(b.token))).status).toBe(200);
    expect((await me(b.token)).status).toBe(401);
  });
});

describe("login and register refuse cross-site requests (3.7)", () => {
  const credentials = { email: "victim-of-csrf@example.com", password: PASSWORD };
  beforeAll(async () => {
    // the attacker's own account, into which a page of theirs would log the visitor
    await server.app.module.auth.createUser({ email: "attacker@example.com", password: PASSWORD });
  });

  const attacker = JSON.stringify({ email: "attacker@example.com", password: PASSWORD });
  const login = (body: string, headers: Record<string, string>) =>
    server.request("POST", "/api/auth/password/login", body, headers);
  const registerAs = (email: string, headers: Record<string, string>) =>
    server.request("POST", "/api/auth/password/register", JSON.stringify({ ...credentials, email }), headers);
  const registered = async (email: string) =>
    (await server.request("POST", "/api/auth/password/login", { email, password: PASSWORD })).status === 200;

  it("a text/plain login from a foreign origin (an HTML form) is 403 and sets no cookie (3.7)", async () => {
    const res = await login(attacker, { origin: EVIL, "content-type": "text/plain" });
    expectError(res, 403, "forbidden");
    expect(sessionCookieSet(res)).toBe(false);
    expect(res.body.token).toBeUndefined();
  });

  it.each([
    ["a foreign Origin", { origin: EVIL }],
    ['Origin "null" (a sandboxed frame)', { origin: "null" }],
    ["a look-alike Origin", { origin: "http://127.0.0.1.evil.example" }],
    ["a foreign Referer without Origin", { referer: `${EVIL}/form.html` }],
    ["Sec-Fetch-Site: cross-site without Origin", { "sec-fetch-site": "cross-site" }],
    ["Sec-Fetch-Site: same-site without Origin", { "sec-fetch-site": "same-site" }],
  ])("login and register with %s are 403, even with a JSON body, and create nothing (3.7)", async (name, headers) => {
    const json = { "content-type": "application/json", ...headers };
    const res = await login(attacker, json);
    expectError(res, 403, "forbidden");
    expect(res.body.error.message).toMatch(/cross-site/);
    expect(sessionCookieSet(res)).toBe(false);
    const email = `foreign-${name.replace(/\W+/g, "-")}@example.com`;
    const reg = await registerAs(email, json);
    expectError(reg, 403, "forbidden");
    expect(sessionCookieSet(reg)).toBe(false);
    expect(await registered(email), "a refused register created the user").toBe(false);
  });

  it.each([
    ["text/plain", "text/plain"],
    ["text/plain with a charset", "text/plain;charset=UTF-8"],
    ["a urlencoded form", "application/x-www-form-urlencoded"],
    ["a multipart form", "multipart/form-data; boundary=x"],
    ["a look-alike type", "application/jsonx"],
    ["a JSON-ish type", "text/json"],
  ])("login and register with %s are 415 bad_request, even without Origin (3.7)", async (_, type) => {
    const res = await login(attacker, { "content-type": type });
    expectError(res, 415, "bad_request");
    expect(res.body.error.message).toMatch(/application\/json/);
    expect(sessionCookieSet(res)).toBe(false);
    const email = `type-${type.replace(/\W+/g, "-")}@example.com`;
    expectError(await registerAs(email, { "content-type": type }), 415, "bad_request");
    expect(await registered(email)).toBe(false);
  });

  it("a body without any Content-Type is 415 too (3.7)", async () => {
    // fetch would add text/plain to a string body; a Blob without a type sends no Content-Type at all
    const res = await fetch(`${server.url}/api/auth/password/login`, { method: "POST", body: new Blob([attacker]) });
    expect(res.headers.get("set-cookie")).toBeNull();
    const body = await res.json();
    expect({ status: res.status, code: body.error?.code }).toEqual({ status: 415, code: "bad_request" });
  });

  it.each([
    ["no Origin (curl, a server)", {}],
    ["our own Origin", { origin: "OWN" }],
    ["an Origin in server.cors.origin", { origin: ALLOWED }],
    ["our own Referer", { referer: "OWN/login" }],
    ["Sec-Fetch-Site: same-origin", { "sec-fetch-site": "same-origin" }],
    ["Sec-Fetch-Site: none (typed by the user)", { "sec-fetch-site": "none" }],
  ])("control: login and register with %s and a JSON body work (3.7)", async (name, raw) => {
    const headers = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v.replace("OWN", server.url)]));
    for (const type of ["application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"]) {
      const res = await login(attacker, { ...headers, "content-type": type });
      expect(res.status, `${type}: ${res.text}`).toBe(200);
      expect(sessionCookieSet(res)).toBe(true);
    }
    const reg = await registerAs(`ok-${name.replace(/\W+/g, "-")}@example.com`, {
      ...headers,
      "content-type": "application/json",
    });
    expect(reg.status, reg.text).toBe(201);
  });

  it("a refused login never reaches the password check (3.7)", async () => {
    const hashed = server.app.module.auth.counters();
    for (let i = 0; i < 5; i++) await login(attacker, { origin: EVIL, "content-type": "text/plain" });
    expect(server.app.module.auth.counters()).toEqual(hashed);
  });

  it("behind a trusted proxy the public origin counts as ours, and only there (3.7)", async () => {
    const proxied = await startServer(authConfig({}, { trust_proxy: true }));
    const direct = await startServer(authConfig());
    try {
      const headers = {
        "content-type": "application/json",
        origin: "https://public.example",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "public.example",
      };
      const body = JSON.stringify({ email: "proxied@example.com", password: PASSWORD });
      expect((await proxied.request("POST", "/api/auth/password/register", body, headers)).status).toBe(201);
      expectError(await direct.request("POST", "/api/auth/password/register", body, headers), 403, "forbidden");
    } finally {
      await proxied.close();
      await direct.close();
    }
  });

  it("a wildcard CORS origin admits no foreign login: only listed origins do (3.7)", async () => {
    const open = await startServer(authConfig({}, { cors: { origin: "*" } }));
    try {
      await open.app.module.auth.createUser({ email: "wild@example.com", password: PASSWORD });
      const body = JSON.stringify({ email: "wild@example.com", password: PASSWORD });
      const res = await open.request("POST", "/api/auth/password/login", body, {
        "content-type": "application/json",
        origin: EVIL,
      });
      expectError(res, 403, "forbidden");
    } finally {
      await open.close();
    }
  });
});
