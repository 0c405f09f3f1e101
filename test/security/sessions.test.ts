/**
 * Cookie sessions (§3.2, §3.7): Bearer vs cookie precedence, cookie attributes, CSRF on every state-changing
 * request authenticated by the cookie alone, and CORS staying closed to foreign origins.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Booted, boot, PASSWORD } from "../guard/helpers.js";
import { bearer } from "../helpers/auth.js";
import type { TestResponse } from "../helpers/server.js";
import { BOOT, securityApp } from "./fixture.js";

let b: Booted<void>;
beforeAll(async () => {
  b = await boot(securityApp, BOOT);
});
afterAll(() => b.server.close());

function expect401(res: TestResponse) {
  expect(res.status, res.text).toBe(401);
  expect(res.body.error.code).toBe("unauthorized");
}

describe("cookie and Bearer (§3.2, §3.7)", () => {
  const rootCookie = () => ({ cookie: `auth=${b.tokens.root}` });

  it("a Bearer header wins over the cookie, and a bad Bearer is 401 even with a good cookie", async () => {
    const asAlice = await b.server.request("GET", "/api/data/notes", undefined, {
      ...rootCookie(),
      ...bearer(b.tokens.alice!),
    });
    expect(asAlice.status).toBe(403);
    expect401(
      await b.server.request("GET", "/api/data/notes", undefined, { ...rootCookie(), authorization: "Bearer junk" }),
    );
    expect401(await b.server.request("GET", "/api/data/notes", undefined, { cookie: "auth=junk" }));
  });

  it("the session cookie is httpOnly and SameSite", async () => {
    const res = await b.server.request("POST", "/api/auth/password/login", {
      email: "alice@test.com",
      password: PASSWORD,
    });
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith("auth="));
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=(Lax|Strict)/i);
  });

  it.each([
    ["no Origin or Referer", {}],
    ["a foreign Origin", { origin: "http://evil.example" }],
    ['Origin "null"', { origin: "null" }],
    ["a foreign Referer", { referer: "http://evil.example/x" }],
    ["a look-alike Origin", { origin: "http://127.0.0.1.evil.example" }],
    ["a text/plain form post", { origin: "http://evil.example", "content-type": "text/plain" }],
  ])("a cookie-authenticated write with %s is refused (CSRF) and writes nothing", async (_, headers) => {
    const before = (await b.as("root", "GET", "/api/data/tags/count")).body.data.count;
    for (const [method, path, body] of [
      ["POST", "/api/data/tags", { name: "csrf" }],
      ["PATCH", "/api/data/tags/1", { name: "csrf" }],
      ["PATCH", "/api/data/tags", { update: { name: "csrf" }, where: { id: 1 } }],
      ["DELETE", "/api/data/tags/2", undefined],
      ["POST", "/api/auth/password/change", { password: PASSWORD, new_password: "csrf-pass-123" }],
    ] as const) {
      const res = await b.server.request(method, path, body, { ...rootCookie(), ...headers });
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(403);
    }
    const after = await b.as("root", "GET", "/api/data/tags");
    expect(after.body.meta.total).toBe(before);
    expect(after.text).not.toContain("csrf");
  });

  it("a same-origin cookie write is accepted (control)", async () => {
    const res = await b.server.request(
      "POST",
      "/api/data/tags",
      { name: "same-origin" },
      {
        ...rootCookie(),
        origin: b.server.url,
      },
    );
    expect(res.status, res.text).toBe(201);
    await b.as("root", "DELETE", `/api/data/tags/${res.body.data.id}`);
  });
});

describe("cookie-authenticated requests that revoke sessions", () => {
  async function fresh(name: string) {
    const res = await b.server.request("POST", "/api/auth/password/register", {
      email: `${name}@csrf.test`,
      password: PASSWORD,
    });
    expect(res.status, res.text).toBe(201);
    return res.body.token as string;
  }
  const me = (token: string) => b.server.request("GET", "/api/auth/me", undefined, bearer(token));

  it("a cross-site POST logout with the cookie alone is refused and revokes nothing", async () => {
    const token = await fresh("post-logout");
    const res = await b.server.request("POST", "/api/auth/logout", undefined, {
      cookie: `auth=${token}`,
      origin: "http://evil.example",
    });
    expect(res.status, res.text).toBe(403);
    expect((await me(token)).status).toBe(200);
  });

  it("a cross-site GET logout (a link or top-level navigation) with the cookie alone revokes nothing", async () => {
    const token = await fresh("get-logout");
    // what a browser sends for a cross-site top-level navigation: the Lax cookie, a Referer, no Origin
    await b.server.request("GET", "/api/auth/logout", undefined, {
      cookie: `auth=${token}`,
      referer: "http://evil.example/page",
      "sec-fetch-site": "cross-site",
      "sec-fetch-mode": "navigate",
    });
    const after = await me(token);
    expect(after.status, "every session of the user was revoked by a cross-site GET").toBe(200);
  });

  it("CORS preflight from a foreign origin grants nothing", async () => {
    const res = await b.server.request("OPTIONS", "/api/data/tags", undefined, {
      origin: "http://evil.example",
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization,content-type",
    });
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
  });
});
