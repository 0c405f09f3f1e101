/**
 * Tenant isolation (§6) over HTTP: the tenant comes from the token or key only, scopes every route, is set on
 * create and never written, keeps unique values per tenant, and registration makes an account.
 */
import { createApp } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, login } from "../helpers/auth.js";
import { startServer, type TestServer, testDatabase } from "../helpers/server.js";
import { PASSWORD, PEOPLE, type Person, seedTenants, tenancyConfig } from "./fixture.js";

describe("tenant isolation (6)", () => {
  let server: TestServer;
  const as: Partial<Record<Person, Record<string, string>>> = {};

  beforeAll(async () => {
    server = await startServer(tenancyConfig(), { options: { seed: seedTenants } });
    for (const [name, p] of Object.entries(PEOPLE)) as[name as Person] = bearer(await login(server, p.email, PASSWORD));
  });
  afterAll(() => server?.close());

  it("lists only the caller's tenant", async () => {
    const alice = await server.request("GET", "/api/data/notes", undefined, as.alice);
    expect(alice.status, alice.text).toBe(200);
    expect(alice.body.data.map((n: { title: string }) => n.title)).toEqual(["alice's note", "bob's note"]);
    const carol = await server.request("GET", "/api/data/notes", undefined, as.carol);
    expect(carol.body.data.map((n: { title: string }) => n.title)).toEqual(["carol's note"]);
    const root = await server.request("GET", "/api/data/notes", undefined, as.root);
    expect(root.body.data).toHaveLength(3);
    const anonymous = await server.request("GET", "/api/data/notes");
    expect(anonymous.body.data).toEqual([]);
  });

  it("another tenant's row is 404 and cannot be written", async () => {
    expect((await server.request("GET", "/api/data/notes/3", undefined, as.alice)).status).toBe(404);
    expect((await server.request("PATCH", "/api/data/notes/3", { title: "x" }, as.adam)).status).toBe(404);
    expect((await server.request("DELETE", "/api/data/notes/3", undefined, as.adam)).status).toBe(404);
    const rows = await server.rows("select title from notes where id = 3");
    expect(rows).toEqual([{ title: "carol's note" }]);
  });

  it("sets the scope column on create and refuses it in a body", async () => {
    const created = await server.request("POST", "/api/data/notes", { title: "new", slug: "bob" }, as.carol);
    expect(created.status, created.text).toBe(201);
    expect(created.body.data.account_id).toBe(2);
    const named = await server.request("POST", "/api/data/notes", { title: "x", account_id: 1 }, as.carol);
    expect(named.status, named.text).toBe(400);
    const moved = await server.request("PATCH", `/api/data/notes/${created.body.data.id}`, { account_id: 1 }, as.carol);
    expect(moved.status, moved.text).toBe(400);
    const taken = await server.request("POST", "/api/data/notes", { title: "y", slug: "bob" }, as.carol);
    expect(taken.status, taken.text).toBe(409);
  });

  it("rows of no account stay unique among themselves (a superadmin's, server code's)", async () => {
    const first = await server.request("POST", "/api/data/notes", { title: "root's", slug: "unowned" }, as.root);
    expect(first.status, first.text).toBe(201);
    expect(first.body.data.account_id).toBeNull();
    const again = await server.request("POST", "/api/data/notes", { title: "root's too", slug: "unowned" }, as.root);
    expect(again.status, again.text).toBe(409);
    // the same slug inside an account is that account's own business
    const carol = await server.request("POST", "/api/data/notes", { title: "carol's", slug: "unowned" }, as.carol);
    expect(carol.status, carol.text).toBe(201);
  });

  it("registration takes the account's name only", async () => {
    for (const account of [
      { name: "X", slug: "x" },
      { name: "X", plan: "gold" },
      { name: "X", id: 1 },
    ]) {
      const res = await server.request("POST", "/api/auth/password/register", {
        email: "greedy@x.test",
        password: PASSWORD,
        account,
      });
      expect(res.status, res.text).toBe(400);
    }
    expect(await server.rows("select count(*) as n from users where email = 'greedy@x.test'")).toEqual([{ n: 0 }]);
  });

  it("registration creates an account whose first user is its admin", async () => {
    const res = await server.request("POST", "/api/auth/password/register", {
      email: "dora@d.test",
      password: PASSWORD,
      account: { name: "Account D" },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body.user.role).toBe("admin");
    const notes = await server.request("GET", "/api/data/notes", undefined, bearer(res.body.token));
    expect(notes.body.data).toEqual([]);
  });

  it("explain shows the tenant scope", async () => {
    const res = await server.request(
      "GET",
      "/api/system/explain?role=member&permission=data.entity.read&entity=notes",
      undefined,
      as.root,
    );
    expect(res.status, res.text).toBe(200);
    expect(res.body.data.tenant).toEqual({ field: "account_id", scope: "@tenant" });
    expect(res.body.data.where).toContain("account_id");
  });

  it("createUser names a missing account instead of a broken reference", async () => {
    const missing = server.app.module.auth.createUser({ email: "x@x.test", password: PASSWORD, account_id: 999 });
    await expect(missing).rejects.toThrow(/account_id: no account has the id 999/);
    expect(await server.rows("select count(*) as n from users where email = 'x@x.test'")).toEqual([{ n: 0 }]);
  });
});

describe("explain without tenancy (6)", () => {
  it("refuses a tenant instead of ignoring it", async () => {
    const { tenancy: _, ...config } = tenancyConfig();
    const database = await testDatabase();
    const app = await createApp({
      connection: database.connection,
      config: { ...config, auth: { ...config.auth, allow_register: false } },
    });
    try {
      expect(() => app.explain({ role: "member", permission: "data.entity.read", entity: "notes", tenant: 1 })).toThrow(
        /tenant: tenant isolation is not enabled/,
      );
      expect(app.explain({ role: "member", permission: "data.entity.read", entity: "notes" }).tenant).toBeUndefined();
    } finally {
      await app.close();
      await database.close();
    }
  });
});
