/**
 * Rate limiting of login and register (3.4): 429 with Retry-After. Login failures are limited per address and per
 * (email, address); attempts per email from addresses new to the account are capped without locking the owner out.
 */

import { type CitadelApp, createApp, type RateLimitStore } from "citadel";
import { afterEach, describe, expect, it } from "vitest";
import { enforceRateLimits, MemoryRateLimitStore } from "../../src/auth/rate-limit.js";
import { DatabaseRateLimitStore, RATE_LIMIT_TABLE } from "../../src/auth/rate-limit-store.js";
import { authSettings } from "../../src/auth/settings.js";
import { validateConfig } from "../../src/config/schema.js";
import { RateLimitedError } from "../../src/errors.js";
import { startServer, type TestDatabase, type TestServer, testDatabase } from "../helpers/server.js";
import { authConfig, expectError, PASSWORD } from "./helpers.js";

const servers: TestServer[] = [];
const apps: CitadelApp[] = [];
const databases: TestDatabase[] = [];
afterEach(async () => {
  await Promise.all([...servers.splice(0).map((s) => s.close()), ...apps.splice(0).map((a) => a.close())]);
  await Promise.all(databases.splice(0).map((d) => d.close()));
});

async function limited(rate_limit: Record<string, number>, server: Record<string, unknown> = {}) {
  const s = await startServer(authConfig({ rate_limit }, server));
  servers.push(s);
  await s.app.module.auth.createUser({ email: "victim@example.com", password: PASSWORD });
  return s;
}

const attempt = (server: TestServer, email: string, password: string, headers: Record<string, string> = {}) =>
  server.request("POST", "/api/auth/password/login", { email, password }, headers);

/** A client at `address`, as a trusted proxy reports it (needs server.trust_proxy). */
const from = (address: string) => ({ "x-forwarded-for": address });

function expectRateLimited(res: { status: number; headers: Headers; body: unknown; text: string }, windowSeconds = 60) {
  expectError(res as never, 429, "rate_limited");
  const retryAfter = Number(res.headers.get("retry-after"));
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(windowSeconds);
}

describe("login rate limits (3.4)", () => {
  it("per (email, address): the attempt after the limit is 429 with Retry-After, even with the right password (3.4)", async () => {
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

  it("the defaults allow 10 failures per email from one address per minute (3.4)", async () => {
    const config = authConfig();
    delete config.auth?.rate_limit;
    const server = await startServer(config);
    servers.push(server);
    for (let i = 0; i < 10; i++)
      expectError(await attempt(server, "default@example.com", "guess"), 401, "unauthorized");
    expectRateLimited(await attempt(server, "default@example.com", "guess"));
  });
});

describe("nobody locks an account by knowing its email (3.4)", () => {
  it("one address exhausting its limit on an email does not stop the owner at another address (3.4)", async () => {
    const server = await limited({ max_per_email: 3, max_per_address: 100 }, { trust_proxy: true });
    for (let i = 0; i < 3; i++)
      expectError(await attempt(server, "victim@example.com", "guess", from("203.0.113.1")), 401, "unauthorized");
    expectRateLimited(await attempt(server, "victim@example.com", PASSWORD, from("203.0.113.1")));
    const owner = await attempt(server, "victim@example.com", PASSWORD, from("198.51.100.7"));
    expect(owner.status, owner.text).toBe(200);
  });

  it("a correct password clears its address's failures on the account (3.4)", async () => {
    const server = await limited({ max_per_email: 3, max_per_address: 100 });
    for (let i = 0; i < 2; i++) expectError(await attempt(server, "victim@example.com", "guess"), 401, "unauthorized");
    expect((await attempt(server, "victim@example.com", PASSWORD)).status).toBe(200);
    for (let i = 0; i < 3; i++) expectError(await attempt(server, "victim@example.com", "guess"), 401, "unauthorized");
    expectRateLimited(await attempt(server, "victim@example.com", "guess"));
  });

  it("many addresses: attempts from addresses new to the account stop at max_per_email_total; an address the owner logged in from still logs in (3.4)", async () => {
    const limits = { max_per_email: 3, max_per_email_total: 5, max_per_address: 100 };
    const server = await limited(limits, { trust_proxy: true });
    // the owner's first login from 198.51.100.7 is the first of the 5 attempts from new addresses
    expect((await attempt(server, "victim@example.com", PASSWORD, from("198.51.100.7"))).status).toBe(200);
    for (let i = 0; i < 4; i++)
      expectError(await attempt(server, "victim@example.com", "guess", from(`203.0.113.${i}`)), 401, "unauthorized");
    expectRateLimited(await attempt(server, "victim@example.com", "guess", from("203.0.113.99")));
    // a login from a new address waits for the window, even with the right password
    expectRateLimited(await attempt(server, "victim@example.com", PASSWORD, from("192.0.2.1")));
    expect((await attempt(server, "victim@example.com", PASSWORD, from("198.51.100.7"))).status).toBe(200);
    // the known address is still limited on its own failures
    for (let i = 0; i < 3; i++)
      expectError(await attempt(server, "victim@example.com", "guess", from("198.51.100.7")), 401, "unauthorized");
    expectRateLimited(await attempt(server, "victim@example.com", PASSWORD, from("198.51.100.7")));
    // other accounts are not affected
    expectError(await attempt(server, "other@example.com", "guess", from("192.0.2.1")), 401, "unauthorized");
  });

  it("max_per_email_total defaults to ten times max_per_email (3.4)", () => {
    const settings = (rate_limit: Record<string, number>) =>
      authSettings(validateConfig(authConfig({ rate_limit })), {}).rateLimit;
    expect(settings({ max_per_email: 4 }).max_per_email_total).toBe(40);
    expect(settings({ max_per_email: 4, max_per_email_total: 7 }).max_per_email_total).toBe(7);
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
    // a store without peek knows no address, so the per-email limit applies to every one
    expect(keys).toEqual([
      "login:address:127.0.0.1",
      "login:failures:127.0.0.1 shared@example.com",
      "login:email:shared@example.com",
    ]);
  });

  it('rate_limit.store "database" keeps the counters in citadel_rate_limits, under SHA-256 digests of the keys (11.4)', async () => {
    const server = await limited({ max_per_email: 2, max_per_address: 100, store: "database" } as never);
    for (let i = 0; i < 2; i++) expectError(await attempt(server, "victim@example.com", "guess"), 401, "unauthorized");
    expectRateLimited(await attempt(server, "victim@example.com", PASSWORD));
    const rows = await server.app.db.selectFrom(RATE_LIMIT_TABLE).selectAll().execute();
    expect(rows.length).toBeGreaterThanOrEqual(3);
    for (const row of rows) expect(row.key).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(rows)).not.toMatch(/victim|127\.0\.0\.1/);
  });

  it('rate_limit.store accepts "memory" or "database" only (1.8)', () => {
    expect(() => validateConfig(authConfig({ rate_limit: { store: "redis" } as never }))).toThrow(
      /config\.auth\.rate_limit\.store.*"memory", "database"/,
    );
  });
});

const stores: Record<string, (clock: () => number) => Promise<RateLimitStore>> = {
  memory: async (clock) => new MemoryRateLimitStore(clock),
  database: async (clock) => {
    const database = await testDatabase();
    databases.push(database);
    const app = await createApp({ connection: database.connection });
    apps.push(app);
    const store = new DatabaseRateLimitStore(app.db, clock);
    await store.install();
    await store.install(); // twice is harmless: every server installs it at startup
    return store;
  },
};

describe.each(Object.keys(stores))("the %s store (3.4, 11.4)", (name) => {
  const open = stores[name]!;

  it("counts hits per key in fixed windows and resets after the window", async () => {
    let now = 1_000_000;
    const store = await open(() => now);
    expect(await store.hit("k", 60_000)).toEqual({ count: 1, resetAt: 1_060_000 });
    expect((await store.hit("k", 60_000)).count).toBe(2);
    expect((await store.hit("other", 60_000)).count).toBe(1);
    now += 30_000;
    expect(await store.hit("k", 60_000)).toEqual({ count: 3, resetAt: 1_060_000 });
    now += 30_000;
    expect(await store.hit("k", 60_000)).toEqual({ count: 1, resetAt: 1_120_000 });
  });

  it("peek reads an open window without counting; reset forgets it", async () => {
    let now = 0;
    const store = await open(() => now);
    expect(await store.peek!("k")).toBeUndefined();
    await store.hit("k", 1000);
    expect(await store.peek!("k")).toEqual({ count: 1, resetAt: 1000 });
    expect(await store.peek!("k")).toEqual({ count: 1, resetAt: 1000 });
    await store.reset!("k");
    expect(await store.peek!("k")).toBeUndefined();
    await store.hit("k", 1000);
    now = 1000;
    expect(await store.peek!("k")).toBeUndefined();
  });

  it("concurrent hits are all counted", async () => {
    const store = await open(Date.now);
    const hits = await Promise.all(Array.from({ length: 20 }, () => store.hit("burst", 60_000)));
    expect(hits.map((h) => h.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});

describe("the database store (3.4, 11.4)", () => {
  it("expired windows are pruned from the table now and then", async () => {
    let now = 0;
    const store = (await stores.database!(() => now)) as DatabaseRateLimitStore;
    await store.hit("old", 1000);
    now = 61_000;
    await store.hit("new", 1000);
    const rows = await apps.at(-1)!.db.selectFrom(RATE_LIMIT_TABLE).select("key").execute();
    expect(rows).toHaveLength(1);
  });
});

describe("the in-memory store (3.4)", () => {
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
