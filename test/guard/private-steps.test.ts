/** §9 Steps 2 and 7: fully private and invite-only apps (§4.1, §4.7, §3.3, §3.5, §3.6). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import step2 from "../../examples/access/step2-private.js";
import step7 from "../../examples/access/step7-invite-only.js";
import { bearer, login, register } from "../helpers/auth.js";
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
  type Scenario,
  scenarios,
} from "./helpers.js";

type Posts = { posts: number[] };
const seedPosts = async (ctx: Parameters<typeof insert>[0]): Promise<Posts> => ({
  posts: (await insert(ctx, "posts", [{ title: "first secret" }, { title: "second secret" }])).map((r) => r.id),
});

/** Every data route without a token: 403 naming the permission, never a row (§4.1, §4.9). */
const anonymousDenied = (step: string): Scenario<Posts>[] =>
  [
    ["GET /api/data/posts", "data.entity.read", "posts"],
    ["GET /api/data/posts/1", "data.entity.read", "posts"],
    ["GET /api/data/posts/count", "data.entity.read", "posts"],
    ["GET /api/data/posts/exists", "data.entity.read", "posts"],
    ["POST /api/data/posts/query", "data.entity.read", "posts"],
    ["GET /api/data/posts/1/comments", "data.entity.read", "posts"],
    ["GET /api/data/entity/posts", "data.entity.read", "posts"],
    ["GET /api/data/users", "data.entity.read", "users"],
    ["POST /api/data/posts", "data.entity.create", "posts"],
    ["PATCH /api/data/posts/1", "data.entity.update", "posts"],
    ["DELETE /api/data/posts/1", "data.entity.delete", "posts"],
  ].map(([req, permission, entity]) => ({
    name: `${step}: ${req} is 403 without a token (4.1)`,
    as: ANON,
    req: req!,
    body: req!.endsWith("/query") ? {} : /^(POST|PATCH)/.test(req!) ? { title: "x" } : undefined,
    status: 403,
    forbidden: [permission!, entity!],
    notExpected: ["secret"],
  }));

describe("Step 2: fully private", () => {
  let b: Booted<Posts>;
  beforeAll(async () => {
    b = await boot(step2, { users: { admin: "admin", user: "user", victim: "user" }, rows: seedPosts });
  });
  afterAll(async () => {
    await b?.server.close();
  });

  scenarios(() => b, anonymousDenied("Step 2"));

  it("Step 2: a registered user (role user) reads, creates and updates, but cannot delete (3.3, 4.2)", async () => {
    const { user, token } = await register(b.server, "new@test.com", PASSWORD);
    expect(user).not.toHaveProperty("password_hash");
    expect(await dbRows(b.server, "SELECT role FROM users WHERE email = ?", "new@test.com")).toEqual([
      { role: "user" },
    ]);
    const as = (method: string, path: string, body?: unknown) => b.server.request(method, path, body, bearer(token));
    const list = await as("GET", "/api/data/posts");
    expect(list.status, list.text).toBe(200);
    expect(list.body.meta.total).toBe(2);
    const created = await as("POST", "/api/data/posts", { title: "mine" });
    expect(created.status, created.text).toBe(201);
    const updated = await as("PATCH", `/api/data/posts/${created.body.data.id}`, { title: "mine too" });
    expect(updated.status, updated.text).toBe(200);
    expectForbidden(await as("DELETE", `/api/data/posts/${created.body.data.id}`), "data.entity.delete", "posts");
    expectForbidden(await as("DELETE", "/api/data/posts", { title: "mine too" }), "data.entity.delete", "posts");
    expect(await dbRows(b.server, "SELECT title FROM posts WHERE id = ?", created.body.data.id)).toEqual([
      { title: "mine too" },
    ]);
  });

  it("Step 2: admin (implicit_allow) deletes (4.7)", async () => {
    const res = await b.as("admin", "DELETE", `/api/data/posts/${b.rows.posts[1]}`);
    expect(res.status, res.text).toBe(200);
    expect(await dbRows(b.server, "SELECT id FROM posts WHERE id = ?", b.rows.posts[1])).toEqual([]);
  });

  it("Step 2: a user cannot change a role; admin (implicit_allow) can, and the new role applies (3.6)", async () => {
    expectForbidden(
      await b.as("user", "PATCH", `/api/data/users/${b.ids.victim}`, { role: "admin" }),
      "data.entity.update",
      "users",
    );
    expect(await dbRows(b.server, "SELECT role FROM users WHERE id = ?", b.ids.victim)).toEqual([{ role: "user" }]);
    const res = await b.as("admin", "PATCH", `/api/data/users/${b.ids.victim}`, { role: "admin" });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toMatchObject({ id: b.ids.victim, role: "admin" });
    const token = await login(b.server, emailOf("victim"), PASSWORD);
    const del = await b.server.request("DELETE", `/api/data/posts/${b.rows.posts[0]}`, undefined, bearer(token));
    expect(del.status, del.text).toBe(200);
  });

  it("Step 2: even admin cannot read, filter on or write the password hash (3.6, 4.8)", async () => {
    const list = await b.as("admin", "GET", "/api/data/users");
    expect(list.status, list.text).toBe(200);
    for (const row of list.body.data) expect(row).not.toHaveProperty("password_hash");
    expect(list.text).not.toContain("$argon2");
    const where = await b.as("admin", "GET", `/api/data/users?where=${q({ password_hash: { $isnull: false } })}`);
    expect({ status: where.status, code: where.body?.error?.code }).toEqual({ status: 400, code: "bad_request" });
    const hash = "SELECT password_hash FROM users WHERE id = ?";
    const before = await dbRows(b.server, hash, b.ids.user);
    const write = await b.as("admin", "PATCH", `/api/data/users/${b.ids.user}`, { password_hash: "x" });
    expect([400, 403], write.text).toContain(write.status);
    expect(await dbRows(b.server, hash, b.ids.user)).toEqual(before);
  });
});

describe("Step 7: invite-only", () => {
  let b: Booted<Posts>;
  beforeAll(async () => {
    b = await boot(step7, { exampleSeed: true, users: { member: "member" }, rows: seedPosts });
  });
  afterAll(async () => {
    await b?.server.close();
  });

  scenarios(() => b, anonymousDenied("Step 7"));

  it("Step 7: self-registration is refused with 403 and creates no user (allow_register: false)", async () => {
    const res = await b.server.request("POST", "/api/auth/password/register", {
      email: "intruder@test.com",
      password: PASSWORD,
    });
    expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status: 403, code: "forbidden" });
    expect(await dbRows(b.server, "SELECT id FROM users WHERE email = ?", "intruder@test.com")).toEqual([]);
  });

  it("Step 7: the seeded admin@company.com logs in and has full access (3.5, 4.7)", async () => {
    const token = await login(b.server, "admin@company.com", "admin-password");
    const as = (method: string, path: string, body?: unknown) => b.server.request(method, path, body, bearer(token));
    const users = await as("GET", "/api/data/users");
    expect(users.status, users.text).toBe(200);
    expect(users.body.data.map((u: { email: string }) => u.email).sort()).toEqual([
      "admin@company.com",
      emailOf("member"),
    ]);
    const created = await as("POST", "/api/data/posts", { title: "by admin" });
    expect(created.status, created.text).toBe(201);
    const id = created.body.data.id;
    expect((await as("PATCH", `/api/data/posts/${id}`, { title: "edited" })).status).toBe(200);
    expect((await as("DELETE", `/api/data/posts/${id}`)).status).toBe(200);
    expect(await dbRows(b.server, "SELECT id FROM posts WHERE id = ?", id)).toEqual([]);
  });

  it("Step 7: a member created by the seed reads, creates and updates, but cannot delete (4.2)", async () => {
    const list = await b.as("member", "GET", "/api/data/posts");
    expect(list.status, list.text).toBe(200);
    expect(list.body.meta.total).toBe(2);
    const created = await b.as("member", "POST", "/api/data/posts", { title: "by member" });
    expect(created.status, created.text).toBe(201);
    const updated = await b.as("member", "PATCH", `/api/data/posts/${b.rows.posts[0]}`, { title: "edited" });
    expect(updated.status, updated.text).toBe(200);
    expectForbidden(
      await b.as("member", "DELETE", `/api/data/posts/${b.rows.posts[1]}`),
      "data.entity.delete",
      "posts",
    );
    expect(await dbRows(b.server, "SELECT COUNT(*) AS n FROM posts")).toEqual([{ n: 3 }]);
  });
});
