/**
 * Rate-limit bypass attempts (§3.4): email spelling variants share one bucket, and forwarding headers do not pick
 * a new address bucket unless `server.trust_proxy` is on.
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

async function start(): Promise<TestServer> {
  const auth = securityApp.config!.auth!;
  server = await startServer(
    {
      ...securityApp.config,
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

describe("login rate limits", () => {
  it("case, whitespace and unicode-space variants of one email share its bucket", async () => {
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

  it("forwarding headers do not give a client fresh address buckets without trust_proxy", async () => {
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

  it("an oversized password still counts against the bucket and is never hashed", async () => {
    const s = await start();
    const huge = "x".repeat(100_000);
    const statuses: number[] = [];
    for (let i = 0; i <= MAX_PER_EMAIL; i++) statuses.push((await login(s, "victim@test.com", huge)).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
  });
});

describe("register and password change rate limits", () => {
  it("register is limited per email across spelling variants", async () => {
    const s = await start();
    const statuses: number[] = [];
    for (const email of ["new@test.com", "NEW@test.com", " new@test.com", "New@Test.com"])
      statuses.push((await s.request("POST", "/api/auth/password/register", { email, password: "short" })).status);
    expect(statuses.slice(0, MAX_PER_EMAIL).every((st) => st === 400)).toBe(true);
    expect(statuses[MAX_PER_EMAIL]).toBe(429);
  });

  it("guessing the current password through /password/change is limited per user", async () => {
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
