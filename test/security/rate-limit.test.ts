/**
 * Rate-limit bypass and lockout attempts (§3.4): email spelling variants share one bucket, forwarding headers do
 * not pick a new address bucket unless `server.trust_proxy` is on, a burst is counted exactly, and knowing an
 * account's email is not enough to lock its owner out.
 */
import { afterEach, describe, expect, it } from "vitest";
import { PASSWORD, TEST_SECRET } from "../guard/helpers.js";
import { startServer, type TestResponse, type TestServer } from "../helpers/server.js";
import { securityApp } from "./fixture.js";

const MAX_PER_EMAIL = 3;
const MAX_PER_ADDRESS = 6;

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(serverConfig: Record<string, unknown> = {}): Promise<TestServer> {
  const auth = securityApp.config!.auth!;
  server = await startServer(
    {
      ...securityApp.config,
      server: { ...securityApp.config!.server, ...serverConfig },
      auth: {
        ...auth,
        jwt: { secret: TEST_SECRET },
        password: { argon2: { memory_cost: 1024, time_cost: 1 } },
        rate_limit: { max_per_email: MAX_PER_EMAIL, max_per_address: MAX_PER_ADDRESS, window_seconds: 60 },
      },
    },
    {
      options: {
        seed: async (ctx) => {
          await ctx.app.module.auth.createUser({ email: "victim@test.com", password: PASSWORD, role: "member" });
        },
      },
    },
  );
  return server;
}

const login = (s: TestServer, email: string, password: string, headers: Record<string, string> = {}) =>
  s.request("POST", "/api/auth/password/login", { email, password }, headers);

function expectLimited(res: TestResponse) {
  expect(res.status, res.text).toBe(429);
  expect(res.body.error.code).toBe("rate_limited");
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
}

describe("login rate limits (3.4)", () => {
  it("case, whitespace and unicode-space variants of one email share its bucket (3.4)", async () => {
    const s = await start();
    const variants = ["victim@test.com", "VICTIM@TEST.COM", "  Victim@Test.Com ", "\tvictim@test.com\u00a0"];
    for (const [i, email] of variants.entries()) {
      const res = await login(s, email, "wrong-password", { "x-forwarded-for": `10.0.0.${i}` });
      if (i < MAX_PER_EMAIL) expect(res.status, res.text).toBe(401);
      else expectLimited(res);
    }
    // the right password does not get through a locked bucket either
    expectLimited(await login(s, "Victim@test.com", PASSWORD));
  });

  it("forwarding headers do not give a client fresh address buckets without trust_proxy (3.4)", async () => {
    const s = await start();
    const results: number[] = [];
    for (let i = 0; i < MAX_PER_ADDRESS + 2; i++) {
      const res = await login(s, `nobody${i}@test.com`, "wrong-password", {
        "x-forwarded-for": `203.0.113.${i}`,
        "x-real-ip": `198.51.100.${i}`,
        forwarded: `for=192.0.2.${i}`,
        "cf-connecting-ip": `192.0.2.${i}`,
      });
      results.push(res.status);
    }
    expect(results.slice(0, MAX_PER_ADDRESS).every((st) => st === 401)).toBe(true);
    expect(results.slice(MAX_PER_ADDRESS)).toEqual([429, 429]);
  });

  it("an oversized password still counts against the bucket and is never hashed (3.4)", async () => {
    const s = await start();
    const huge = "x".repeat(100_000);
    const statuses: number[] = [];
    for (let i = 0; i <= MAX_PER_EMAIL; i++) statuses.push((await login(s, "victim@test.com", huge)).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
  });
});

describe("lockout and races (3.4)", () => {
  const from = (address: string) => ({ "x-forwarded-for": address });

  it("a burst of concurrent wrong passwords gets exactly the limit's worth of guesses (3.4)", async () => {
    const s = await start();
    const statuses = await Promise.all(
      Array.from({ length: 12 }, () => login(s, "victim@test.com", "wrong-password").then((r) => r.status)),
    );
    expect(statuses.filter((st) => st === 401)).toHaveLength(MAX_PER_EMAIL);
    expect(statuses.filter((st) => st === 429)).toHaveLength(12 - MAX_PER_EMAIL);
  });

  it("knowing the email is not enough to lock the owner out: the attacker's address is limited, the owner's is not (3.4)", async () => {
    const s = await start({ trust_proxy: true });
    for (let i = 0; i < 3 * MAX_PER_EMAIL; i++)
      await login(s, "victim@test.com", "wrong-password", from("203.0.113.9"));
    expectLimited(await login(s, "victim@test.com", PASSWORD, from("203.0.113.9")));
    const owner = await login(s, "victim@test.com", PASSWORD, from("198.51.100.20"));
    expect(owner.status, owner.text).toBe(200);
  });

  it("guessing from many addresses stops at the per-email total, and the owner's usual address still logs in (3.4)", async () => {
    const s = await start({ trust_proxy: true });
    expect((await login(s, "victim@test.com", PASSWORD, from("198.51.100.20"))).status).toBe(200);
    // max_per_email_total defaults to 10 × max_per_email; one attempt went to the owner's first login
    const total = 10 * MAX_PER_EMAIL;
    const statuses: number[] = [];
    for (let i = 0; i < total + 5; i++)
      statuses.push((await login(s, "victim@test.com", "wrong-password", from(`10.1.${i >> 8}.${i & 255}`))).status);
    expect(statuses.filter((st) => st === 401)).toHaveLength(total - 1);
    expect(statuses.slice(total - 1).every((st) => st === 429)).toBe(true);
    expect((await login(s, "victim@test.com", PASSWORD, from("198.51.100.20"))).status).toBe(200);
  });
});

describe("register and password change rate limits (3.4)", () => {
  it("register is limited per email across spelling variants (3.4)", async () => {
    const s = await start();
    const statuses: number[] = [];
    for (const email of ["new@test.com", "NEW@test.com", " new@test.com", "New@Test.com"])
      statuses.push((await s.request("POST", "/api/auth/password/register", { email, password: "short" })).status);
    expect(statuses.slice(0, MAX_PER_EMAIL).every((st) => st === 400)).toBe(true);
    expect(statuses[MAX_PER_EMAIL]).toBe(429);
  });

  it("guessing the current password through /password/change is limited per user (3.4)", async () => {
    const s = await start();
    const ok = await login(s, "victim@test.com", PASSWORD);
    const headers = { authorization: `Bearer ${ok.body.token}` };
    const statuses: number[] = [];
    for (let i = 0; i <= MAX_PER_EMAIL; i++) {
      const res = await s.request(
        "POST",
        "/api/auth/password/change",
        { password: `guess-${i}-xxxx`, new_password: "new-password-1" },
        headers,
      );
      statuses.push(res.status);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
  });
});
