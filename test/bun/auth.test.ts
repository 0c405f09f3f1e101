/**
 * Auth served by Bun (§3, §11.3): register, login, me and logout over HTTP on bun:sqlite with native argon2, and
 * login rate limits per client address, the address being Bun's `server.requestIP` (§3.4).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { idsOf, sorted } from "../guard/helpers.js";
import { MAX_PER_ADDRESS, PASSWORD } from "./apps.js";
import { ANON, type BunServer, startBunServer } from "./bun-server.js";

describe("auth on Bun (3.1, 3.4, 4.11)", () => {
  let server: BunServer;
  beforeAll(async () => {
    server = await startBunServer("auth");
  });
  afterAll(async () => {
    await server?.close();
  });

  const login = (email: string, password: string, from: string, headers: Record<string, string> = {}) =>
    server.request("POST", "/api/auth/password/login", { email, password }, headers, from);

  it("register, me, a guarded filtered list, logout: the token is revoked after (3.1, 4.5, 4.11)", async () => {
    const registered = await server.request("POST", "/api/auth/password/register", {
      email: "new@test.com",
      password: PASSWORD,
    });
    expect(registered.status, registered.text).toBe(201);
    expect(registered.body.user).toMatchObject({ email: "new@test.com", role: "user" });
    expect(JSON.stringify(registered.body)).not.toContain("$argon2");
    const token = registered.body.token as string;

    const me = await server.as(token, "GET", "/api/auth/me");
    expect(me.status, me.text).toBe(200);
    expect(me.body.user).toMatchObject({ id: registered.body.user.id, email: "new@test.com" });

    const mine = { title: "my draft", status: "draft", author_id: registered.body.user.id };
    const created = await server.as(token, "POST", "/api/data/posts", mine);
    expect(created.status, created.text).toBe(201);
    const list = await server.as(token, "GET", "/api/data/posts");
    expect(idsOf(list)).toEqual(sorted([server.rows.pubB!, created.body.data.id]));
    expect(list.text).not.toContain("B secret");

    const logout = await server.as(token, "POST", "/api/auth/logout");
    expect(logout.status, logout.text).toBe(200);
    const after = await server.as(token, "GET", "/api/data/posts");
    expect({ status: after.status, code: after.body?.error?.code }).toEqual({ status: 401, code: "unauthorized" });

    const again = await server.request("POST", "/api/auth/password/login", {
      email: "new@test.com",
      password: PASSWORD,
    });
    expect(again.status, again.text).toBe(200);
    expect((await server.as(again.body.token, "GET", "/api/auth/me")).status).toBe(200);
    expect((await server.as(ANON, "GET", "/api/auth/me")).status).toBe(401);
  });

  it("logins from one address are 429 with Retry-After after the limit; another address is not limited, and X-Forwarded-For does not change the address (3.4)", async () => {
    // distinct emails, so only the per-address limit applies; 127.0.0.0/8 is all loopback on Linux
    for (let i = 0; i < MAX_PER_ADDRESS; i++) {
      const res = await login(`nobody${i}@test.com`, "wrong password", "127.0.0.2");
      expect(res.status, res.text).toBe(401);
    }
    const limited = await login("b@test.com", PASSWORD, "127.0.0.2");
    expect({ status: limited.status, code: limited.body?.error?.code }).toEqual({ status: 429, code: "rate_limited" });
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    const spoofed = await login("b@test.com", PASSWORD, "127.0.0.2", { "x-forwarded-for": "203.0.113.7" });
    expect(spoofed.status, spoofed.text).toBe(429);
    const elsewhere = await login("b@test.com", PASSWORD, "127.0.0.3");
    expect(elsewhere.status, elsewhere.text).toBe(200);
  });
});
