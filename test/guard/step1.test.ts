/** §9 Step 1 "fully public (read-only)", plus bad tokens (§4.1) and the users entity (§3.6) on the same app. */
import { decodeJwt, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import step1 from "../../examples/access/step1-public-read-only.js";
import { bearer } from "../helpers/auth.js";
import {
  ANON,
  type Booted,
  boot,
  dbRows,
  emailOf,
  expectForbidden,
  insert,
  PASSWORD,
  q,
  scenarios,
  TEST_SECRET,
} from "./helpers.js";

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** The same claims as a real token, signed with `secret` and expiring at `exp` (seconds). */
async function resign(token: string, exp: number, secret = TEST_SECRET): Promise<string> {
  const claims = decodeJwt(token);
  return new SignJWT({ ...claims, iat: exp - 3600, exp })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(new TextEncoder().encode(secret));
}

describe("Step 1: fully public (read-only)", () => {
  let b: Booted<{ hello: number; other: number }>;
  beforeAll(async () => {
    b = await boot(step1, {
      users: { user: "user", victim: "user" },
      rows: async (ctx) => {
        const [hello, other] = await insert(ctx, "posts", [{ title: "Hello" }, { title: "Confidential title" }]);
        return { hello: hello!.id, other: other!.id };
      },
    });
  });
  afterAll(async () => {
    await b?.server.close();
  });

  scenarios(
    () => b,
    [
      {
        name: "Step 1: GET /api/data/posts works without auth",
        as: ANON,
        req: "GET /api/data/posts",
        status: 200,
        expected: { meta: { total: 2 } },
      },
      {
        name: "Step 1: GET /api/data/posts/:id works without auth",
        as: ANON,
        req: (b) => `GET /api/data/posts/${b.rows.hello}`,
        status: 200,
        expected: { data: { title: "Hello" } },
      },
      {
        name: "Step 1: POST /api/data/posts requires auth: 403 naming permission and entity (4.9)",
        as: ANON,
        req: "POST /api/data/posts",
        body: { title: "Test" },
        status: 403,
        forbidden: ["data.entity.create", "posts"],
      },
      {
        name: "Step 1: PATCH /api/data/posts/:id requires auth: 403 without row data (4.9)",
        as: ANON,
        req: (b) => `PATCH /api/data/posts/${b.rows.other}`,
        body: { title: "x" },
        status: 403,
        forbidden: ["data.entity.update", "posts"],
        notExpected: ["Confidential"],
      },
      {
        name: "Step 1: a user creates a post (201)",
        as: "user",
        req: "POST /api/data/posts",
        body: { title: "Test" },
        status: 201,
        expected: { data: { title: "Test" } },
      },
      {
        name: "Step 1: a user updates a post (200)",
        as: "user",
        req: (b) => `PATCH /api/data/posts/${b.rows.hello}`,
        body: { title: "Hello again" },
        status: 200,
        expected: { data: { title: "Hello again" } },
      },
      {
        name: "Step 1: a user cannot delete: 403 without row data (4.2, 4.9)",
        as: "user",
        req: (b) => `DELETE /api/data/posts/${b.rows.other}`,
        status: 403,
        forbidden: ["data.entity.delete", "posts"],
        notExpected: ["Confidential"],
      },
    ],
  );

  it("Step 1: a refused anonymous create writes nothing (4.9)", async () => {
    const res = await b.as(ANON, "POST", "/api/data/posts", [{ title: "anon-1" }, { title: "anon-2" }]);
    expectForbidden(res, "data.entity.create", "posts");
    expect(await dbRows(b.server, "SELECT id FROM posts WHERE title LIKE 'anon-%'")).toEqual([]);
  });

  it("Step 1: an invalid, tampered, foreign, expired or unsigned Bearer token is 401, never anonymous (4.1)", async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = b.tokens.user!;
    const [head, body, sig] = token.split(".");
    const forged = {
      garbage: "not-a-jwt",
      tampered: `${head}.${body}.${sig!.slice(0, -4)}AAAA`,
      "claims edited": `${head}.${b64({ ...decodeJwt(token), role: "admin" })}.${sig}`,
      "another secret": await resign(token, now + 3600, "another-secret-that-is-at-least-32-bytes!!"),
      expired: await resign(token, now - 3600),
      "alg none": `${b64({ alg: "none", typ: "JWT" })}.${body}.`,
    };
    for (const [kind, bad] of Object.entries(forged)) {
      const res = await b.server.request("GET", "/api/data/posts", undefined, bearer(bad));
      expect({ kind, status: res.status, code: res.body?.error?.code }).toEqual({
        kind,
        status: 401,
        code: "unauthorized",
      });
      expect(res.text, kind).not.toContain("Hello");
    }
    // the same claims re-signed correctly and unexpired are accepted: the 401s are about the token alone
    const control = await b.server.request("GET", "/api/data/posts", undefined, bearer(await resign(token, now + 60)));
    expect(control.status, control.text).toBe(200);
  });

  it("Step 1: a user with data.entity.update on users cannot change anyone's role (3.6)", async () => {
    for (const who of ["victim", "user"]) {
      const res = await b.as("user", "PATCH", `/api/data/users/${b.ids[who]}`, { role: "admin" });
      expectForbidden(res, "data.entity.update", "users");
    }
    const roles = await dbRows(b.server, "SELECT role FROM users WHERE id IN (?, ?)", b.ids.user, b.ids.victim);
    expect(roles.map((r) => r.role)).toEqual(["user", "user"]);
  });

  it("Step 1: the password hash is never readable through the data API, nor usable in where/sort/select (3.6, 4.8)", async () => {
    const list = await b.as("user", "GET", "/api/data/users");
    expect(list.status, list.text).toBe(200);
    expect(list.body.data.length).toBe(2);
    for (const row of list.body.data) expect(row).not.toHaveProperty("password_hash");
    const one = await b.as("user", "GET", `/api/data/users/${b.ids.victim}`);
    expect(one.status, one.text).toBe(200);
    expect(one.body.data).not.toHaveProperty("password_hash");
    expect(list.text + one.text).not.toContain("$argon2");
    const probes = [
      `where=${q({ password_hash: { $like: "$argon2*" } })}`,
      "sort=password_hash",
      "select=id,password_hash",
    ];
    for (const probe of probes) {
      const res = await b.as("user", "GET", `/api/data/users?${probe}`);
      expect({ probe, status: res.status, code: res.body?.error?.code }).toEqual({
        probe,
        status: 400,
        code: "bad_request",
      });
    }
  });

  it("Step 1: the password hash is never writable through the data API (3.6)", async () => {
    const hash = "SELECT password_hash FROM users WHERE id = ?";
    const before = await dbRows(b.server, hash, b.ids.victim);
    const res = await b.as("user", "PATCH", `/api/data/users/${b.ids.victim}`, { password_hash: "x" });
    expect([400, 403], res.text).toContain(res.status);
    expect(await dbRows(b.server, hash, b.ids.victim)).toEqual(before);
    const login = await b.server.request("POST", "/api/auth/password/login", {
      email: emailOf("victim"),
      password: PASSWORD,
    });
    expect(login.status, login.text).toBe(200);
  });
});
