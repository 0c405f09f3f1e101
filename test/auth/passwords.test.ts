/** Passwords (3.1) and login timing (3.4): argon2id, never returned, one verification per login attempt. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CitadelApp, createApp } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer, testDatabase } from "../helpers/server.js";
import { authConfig, bearer, expectError, login, PASSWORD, register } from "./helpers.js";

/** `{ type, m, t, p }` of a PHC-format argon2 hash (the order of the parameters varies between versions). */
function argon2Params(hash: string) {
  const [, type, , params] = hash.split("$");
  return { type, ...Object.fromEntries((params ?? "").split(",").map((kv) => kv.split("="))) };
}

async function storedHash(app: CitadelApp, email: string): Promise<string> {
  const row = await app.db
    .selectFrom("users")
    .select("password_hash")
    .where("email", "=", email)
    .executeTakeFirstOrThrow();
  return row.password_hash;
}

describe("password hashing (3.1, 3.4)", () => {
  let server: TestServer;
  const counters = () => server.app.module.auth.counters();
  const attempt = (email: string, password: string) =>
    server.request("POST", "/api/auth/password/login", { email, password });

  beforeAll(async () => {
    server = await startServer(authConfig());
    await server.app.module.auth.createUser({ email: "known@example.com", password: PASSWORD });
  });
  afterAll(() => server.close());

  it("passwords are stored as argon2id with the configured parameters (3.1)", async () => {
    expect(argon2Params(await storedHash(server.app, "known@example.com"))).toEqual({
      type: "argon2id",
      m: "1024",
      t: "1",
      p: "1",
    });
  });

  it("an unknown email and a wrong password each cost exactly one hash verification (3.4)", async () => {
    const before = counters();
    expectError(await attempt("unknown@example.com", PASSWORD), 401, "unauthorized");
    const afterUnknown = counters();
    expect(afterUnknown.verifications - before.verifications).toBe(1);
    expect(afterUnknown.hashes).toBe(before.hashes);

    expectError(await attempt("known@example.com", "wrong password"), 401, "unauthorized");
    const afterWrong = counters();
    expect(afterWrong.verifications - afterUnknown.verifications).toBe(1);
    expect(afterWrong.hashes).toBe(before.hashes);

    await login(server, "known@example.com");
    expect(counters().verifications - afterWrong.verifications).toBe(1);
  });

  it("an unknown email and a wrong password answer byte-identical bodies (3.4)", async () => {
    const unknown = await attempt("unknown@example.com", PASSWORD);
    const wrong = await attempt("known@example.com", "wrong password");
    expect(unknown.text).toBe(wrong.text);
    expect(unknown.body.error.message).toBe("invalid email or password");
  });

  it("an oversized password at login is refused without hashing it (3.1)", async () => {
    const before = counters();
    expectError(await attempt("known@example.com", "p".repeat(100_000)), 401, "unauthorized");
    expect(counters()).toEqual(before);
  });

  it("register hashes once and verifies nothing; a refused register hashes nothing (3.3)", async () => {
    const before = counters();
    expect((await register(server, "fresh@example.com")).status).toBe(201);
    expect(counters()).toEqual({ hashes: before.hashes + 1, verifications: before.verifications });
    expectError(await register(server, "fresh2@example.com", "short"), 400, "validation_failed");
    expectError(
      await server.request("POST", "/api/auth/password/register", {
        email: "r@example.com",
        password: PASSWORD,
        role: "admin",
      }),
      400,
      "validation_failed",
    );
    expect(counters().hashes).toBe(before.hashes + 1);
  });

  it("the password is never in a response or a token (3.1)", async () => {
    const res = await login(server, "known@example.com");
    expect(res.text).not.toContain(PASSWORD);
    const me = await server.request("GET", "/api/auth/me", undefined, bearer(res.body.token));
    expect(me.text).not.toContain("$argon2");
    expect(Buffer.from(res.body.token.split(".")[1], "base64url").toString()).not.toContain("argon2");
  });

  it("a configurable minimum length applies at registration (3.1)", async () => {
    const strict = await startServer(authConfig({ password: { min_length: 12 } }));
    try {
      expectError(await register(strict, "min@example.com", "elevenchars"), 400, "validation_failed");
      expect((await register(strict, "min@example.com", "twelve chars")).status).toBe(201);
    } finally {
      await strict.close();
    }
  });
});

describe("argon2 parameters (3.1)", () => {
  it("the defaults are OWASP's argon2id: 19 MiB, 2 iterations, 1 lane", async () => {
    const database = await testDatabase();
    const app = await createApp({
      connection: database.connection,
      config: { ...authConfig(), auth: { ...authConfig().auth, password: {} } },
    });
    try {
      await app.module.auth.createUser({ email: "owasp@example.com", password: PASSWORD });
      expect(argon2Params(await storedHash(app, "owasp@example.com"))).toEqual({
        type: "argon2id",
        m: "19456",
        t: "2",
        p: "1",
      });
    } finally {
      await app.close();
      await database.close();
    }
  });

  it("a hash made with older parameters is upgraded at the next login, without revoking tokens", async () => {
    const dir = mkdtempSync(join(tmpdir(), "citadel-rehash-"));
    try {
      const first = await startServer(authConfig(), { dir });
      await first.app.module.auth.createUser({ email: "old@example.com", password: PASSWORD });
      const oldToken = (await login(first, "old@example.com")).body.token;
      await first.close();

      const second = await startServer(authConfig({ password: { argon2: { memory_cost: 2048, time_cost: 1 } } }), {
        dir,
      });
      try {
        await login(second, "old@example.com");
        expect(argon2Params(await storedHash(second.app, "old@example.com"))).toMatchObject({ m: "2048", t: "1" });
        expect((await second.request("GET", "/api/auth/me", undefined, bearer(oldToken))).status).toBe(200);
        await login(second, "old@example.com");
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
