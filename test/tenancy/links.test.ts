/**
 * Rows of two tenants never point at each other, whoever writes them (§6.2): a superadmin or a secret key
 * reaches every tenant, but a key it writes stays in its row's tenant, and a row it moves takes no other
 * tenant's references along, so that no delete in one tenant cascades into another (the database's foreign
 * keys know no tenants). A tenant's admin cannot touch a superadmin that belongs to its account (§6.4).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, login } from "../helpers/auth.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { PASSWORD, seedTenants, tenancyConfig } from "./fixture.js";

describe("references stay within a tenant (6.2, 6.4)", () => {
  let server: TestServer;
  let root: Record<string, string>;
  let adam: Record<string, string>;
  let secret: Record<string, string>;
  const id: Record<string, number> = {};
  const account = { A: 1, B: 2 };

  const everything = async () => ({
    users: await server.rows("SELECT id, email, role, account_id FROM users ORDER BY id"),
    notes: await server.rows("SELECT id, author_id, account_id FROM notes ORDER BY id"),
    comments: await server.rows("SELECT id, note_id, account_id FROM comments ORDER BY id"),
  });

  beforeAll(async () => {
    server = await startServer(tenancyConfig(), {
      options: {
        seed: async (ctx) => {
          await seedTenants(ctx);
          // a superadmin that belongs to account A (SnackBase's system account), and a user of A with no rows
          for (const [email, role] of [
            ["ops@a.test", "superadmin"],
            ["idle@a.test", "member"],
          ] as const)
            await ctx.app.module.auth.createUser({ email, password: PASSWORD, role, account_id: account.A });
        },
      },
    });
    for (const row of await server.rows("SELECT id, email FROM users"))
      id[String(row.email).split("@")[0]!] = Number(row.id);
    root = bearer(await login(server, "root@test.com", PASSWORD));
    adam = bearer(await login(server, "adam@a.test", PASSWORD));
    const key = await server.request("POST", "/api/system/keys", { name: "backend", kind: "secret" }, root);
    expect(key.status, key.text).toBe(201);
    secret = { apikey: key.body.data.key };
  });
  afterAll(() => server?.close());

  it("a user with rows in its account cannot be moved to another: 409, nothing changes", async () => {
    const before = await everything();
    // bob wrote note 2 in A: moved to B, a delete of bob by B's admin would reach A's note
    const res = await server.request("PATCH", `/api/data/users/${id.bob}`, { account_id: account.B }, root);
    expect(res.status, res.text).toBe(409);
    expect(res.body.error.message).toContain("notes.author_id");
    expect(await everything()).toEqual(before);
  });

  it("a user without rows in its account moves (the superadmin's to do)", async () => {
    const res = await server.request("PATCH", `/api/data/users/${id.idle}`, { account_id: account.B }, root);
    expect(res.status, res.text).toBe(200);
    expect(await server.rows("SELECT account_id FROM users WHERE id = ?", id.idle)).toEqual([
      { account_id: account.B },
    ]);
  });

  it("a note whose comments are in its account cannot move to another", async () => {
    const before = await everything();
    const res = await server.request(
      "PATCH",
      "/api/data/notes/1",
      { account_id: account.B, slug: "moved", author_id: null },
      root,
    );
    expect(res.status, res.text).toBe(409);
    expect(res.body.error.message).toContain("comments.note_id");
    expect(await everything()).toEqual(before);
  });

  it.each([
    ["a superadmin", () => root],
    ["a secret key", () => secret],
  ])("%s cannot write a key into another tenant's row: 400 naming the field, nothing written", async (_, who) => {
    const before = await everything();
    const cases: [string, string, unknown][] = [
      ["POST", "/api/data/comments", { body: "x", note_id: 3, account_id: account.A }],
      [
        "POST",
        "/api/data/notes",
        [
          { title: "ok", account_id: account.B },
          { title: "x", account_id: account.A, author_id: id.carol },
        ],
      ],
      ["PATCH", "/api/data/comments/1", { note_id: 3 }],
      ["PATCH", "/api/data/comments/1", { account_id: account.B }],
      ["PATCH", "/api/data/notes", { update: { author_id: id.carol }, where: { account_id: account.A } }],
    ];
    for (const [method, path, body] of cases) {
      const res = await server.request(method, path, body, who());
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}: ${res.text}`).toBe(400);
      expect(Object.keys(res.body.error.fields)).toHaveLength(1);
    }
    expect(await everything()).toEqual(before);
  });

  it("keys within one tenant, or to a row of no tenant, are written as before", async () => {
    const same = await server.request(
      "POST",
      "/api/data/comments",
      { body: "y", note_id: 3, account_id: account.B },
      root,
    );
    expect(same.status, same.text).toBe(201);
    const unowned = await server.request("POST", "/api/data/comments", { body: "z", note_id: 1 }, secret);
    expect(unowned.status, unowned.text).toBe(201);
    expect(unowned.body.data.account_id).toBeNull();
  });

  it("a tenant's admin cannot change or delete a superadmin of its account: 403, nothing changes", async () => {
    const before = await everything();
    for (const [method, body] of [
      ["PATCH", { email: "taken-over@a.test" }],
      ["PATCH", { role: "member" }],
      ["DELETE", undefined],
    ] as const) {
      const res = await server.request(method, `/api/data/users/${id.ops}`, body, adam);
      expect(res.status, `${method} ${JSON.stringify(body)}: ${res.text}`).toBe(403);
    }
    // the admin still reads it, and still manages the account's other users
    expect((await server.request("GET", `/api/data/users/${id.ops}`, undefined, adam)).status).toBe(200);
    const where = { id: { $in: [id.ops, id.alice] } };
    const many = await server.request("PATCH", "/api/data/users", { update: { role: "reader" }, where }, adam);
    expect(many.status, many.text).toBe(200);
    expect(many.body.data.map((u: { id: number }) => u.id)).toEqual([id.alice]);
    const after = await everything();
    expect(after.users.find((u) => u.id === id.ops)).toEqual(before.users.find((u) => u.id === id.ops));
  });
});
