/** Rate limiting of login and register per email and per client address (3.4): 429 with Retry-After. */

import type { RateLimitStore } from "citadel";
import { afterEach, describe, expect, it } from "vitest";
import { enforceRateLimits, MemoryRateLimitStore } from "../../src/auth/rate-limit.js";
import { RateLimitedError } from "../../src/errors.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { authConfig, expectError, PASSWORD } from "./helpers.js";

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function limited(rate_limit: Record<string, number>, server: Record<string, unknown> = {}) {
  const s = await startServer(authConfig({ rate_limit }, server));
  servers.push(s);
  await s.app.module.auth.createUser({ email: "victim@example.com", password: PASSWORD });
  return s;
}

const attempt = (server: TestServer, email: string, password: string, headers: Record<string, string> = {}) =>
  server.request("POST", "/api/auth/password/login", { email, password }, headers);

function expectRateLimited(res: { status: number; headers: Headers; body: unknown; text: string }, windowSeconds = 60) {
  expectError(res as never, 429, "rate_limited");
  const retryAfter = Number(res.headers.get("retry-after"));
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(windowSeconds);
}

describe("login rate limits (3.4)", () => {
  it("per email: the attempt after the limit is 429 with Retry-After, even with the right password (3.4)", async () => {
    const server = await limited({ max_per_email: 3, max_per_address: 100 });
    for (let i = 0; i < 3; i++) expectError(await attempt(server, "victim@example.com", "guess"), 401, "unauthorized");
    expectRateLimited(await attempt(server, "victim@example.com", PASSWORD));
    expectRateLimited(await attempt(server, "VICTIM@example.com ", "guess"));
    // another account from the same address is not blocked
    expectError(await attempt(server, "other@example.com", "guess"), 401, "unauthorized");
  });

  it("a rate-limited attempt does no hashing (3.4)", async () => {
    const server = await limited({ max_per_email: 1, max_per_address: 100 });
    await attempt(server, "victim@example.com", "guess");
    const before = server.app.module.auth.counters();
    expectRateLimited(await attempt(server, "victim@example.com", "guess"));
    expect(server.app.module.auth.counters()).toEqual(before);
  });

  it("per client address: many emails from one address hit the limit (3.4)", async () => {
    const server = await limited({ max_per_email: 100, max_per_address: 5 });
    for (let i = 0; i < 5; i++) expectError(await attempt(server, `u${i}@example.com`, "guess"), 401, "unauthorized");
    expectRateLimited(await attempt(server, "victim@example.com", PASSWORD));
  });

  it("X-Forwarded-For is not believed without server.trust_proxy (3.4)", async () => {
    const server = await limited({ max_per_email: 100, max_per_address: 3 });
    for (let i = 0; i < 3; i++)
      expectError(
        await attempt(server, `s${i}@example.com`, "guess", { "x-forwarded-for": `10.0.0.${i}` }),
        401,
        "unauthorized",
      );
    expectRateLimited(await attempt(server, "s9@example.com", "guess", { "x-forwarded-for": "10.9.9.9" }));
  });

  it("with trust_proxy, the address the proxy appended is the bucket; a spoofed prefix changes nothing (3.4)", async () => {
    const server = await limited({ max_per_email: 100, max_per_address: 2 }, { trust_proxy: true });
    const via = (spoofed: string, real: string) => ({ "x-forwarded-for": `${spoofed}, ${real}` });
    expectError(await attempt(server, "a@example.com", "guess", via("1.1.1.1", "203.0.113.7")), 401, "unauthorized");
    expectError(await attempt(server, "b@example.com", "guess", via("2.2.2.2", "203.0.113.7")), 401, "unauthorized");
    expectRateLimited(await attempt(server, "c@example.com", "guess", via("3.3.3.3", "203.0.113.7")));
    expectError(await attempt(server, "d@example.com", "guess", via("1.1.1.1", "203.0.113.8")), 401, "unauthorized");
  });

  it("the defaults allow 10 attempts per email per minute (3.4)", async () => {
    const config = authConfig();
    delete config.auth?.rate_limit;
    const server = await startServer(config);
    servers.push(server);
    for (let i = 0; i < 10; i++)
      expectError(await attempt(server, "default@example.com", "guess"), 401, "unauthorized");
    expectRateLimited(await attempt(server, "default@example.com", "guess"));
  });
});

describe("register rate limits (3.4)", () => {
  it("register is limited per client address and per email (3.4)", async () => {
    const server = await limited({ max_per_email: 2, max_per_address: 4 });
    const reg = (email: string) => server.request("POST", "/api/auth/password/register", { email, password: PASSWORD });
    expect((await reg("r1@example.com")).status).toBe(201);
    expectError(await reg("r1@example.com"), 409, "conflict");
    expectRateLimited(await reg("r1@example.com"));
    expect((await reg("r2@example.com")).status).toBe(201);
    expectRateLimited(await reg("r3@example.com"));
  });
});

describe("a shared store (3.4)", () => {
  it("options.rateLimitStore replaces the in-memory one; keys name the action, the email and the address", async () => {
    const keys: string[] = [];
    const store: RateLimitStore = {
      async hit(key, windowMs) {
        keys.push(key);
        return { count: key.startsWith("login:email:") ? 1_000_000 : 1, resetAt: Date.now() + windowMs };
      },
    };
    const server = await startServer(authConfig(), { options: { rateLimitStore: store } });
    servers.push(server);
    expectRateLimited(await attempt(server, "Shared@Example.com", PASSWORD));
    expect(keys).toEqual(["login:address:127.0.0.1", "login:email:shared@example.com"]);
  });
});

describe("the in-memory store (3.4)", () => {
  it("counts hits per key in fixed windows and resets after the window", async () => {
    let now = 1_000_000;
    const store = new MemoryRateLimitStore(() => now);
    expect(store.hit("k", 60_000)).toEqual({ count: 1, resetAt: 1_060_000 });
    expect(store.hit("k", 60_000).count).toBe(2);
    expect(store.hit("other", 60_000).count).toBe(1);
    now += 60_000;
    expect(store.hit("k", 60_000)).toEqual({ count: 1, resetAt: 1_120_000 });
  });

  it("keeps at most maxKeys windows, dropping the oldest", () => {
    const store = new MemoryRateLimitStore(() => 0, 2);
    store.hit("a", 1000);
    store.hit("a", 1000);
    store.hit("b", 1000);
    store.hit("c", 1000);
    expect(store.hit("b", 1000).count).toBe(2);
    expect(store.hit("a", 1000).count).toBe(1);
  });

  it("enforceRateLimits stops at the first rule over its max and reports its wait", async () => {
    let now = 0;
    const store = new MemoryRateLimitStore(() => now);
    const rules = [
      { key: "address", max: 1 },
      { key: "email", max: 5 },
    ];
    await enforceRateLimits(store, rules, 30_000, () => now);
    now = 10_000;
    const error = await enforceRateLimits(store, rules, 30_000, () => now).catch((e) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.retryAfterSeconds).toBe(20);
    expect(store.hit("email", 30_000).count).toBe(2);
  });
});
