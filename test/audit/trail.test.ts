/**
 * The audit trail (§7.1–§7.4) over HTTP: every auth event, denial and mutation is one entry with its actor and
 * no secret, written with the mutation (a refused write leaves none), append-only on the engine, chained so
 * that an entry altered by hand is named by verify, listed under `system.audit.read`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, login } from "../helpers/auth.js";
import { type Row, startServer, type TestServer } from "../helpers/server.js";
import { PASSWORD, seedTenants, tenancyConfig } from "../tenancy/fixture.js";

const config = () => tenancyConfig({ audit: { enabled: true, redact: ["notes.slug"] } });

describe("audit trail (7)", () => {
  let server: TestServer;
  let root: Record<string, string>;

  const entries = async (where: Row = {}): Promise<Row[]> => {
    const q = encodeURIComponent(JSON.stringify(where));
    const res = await server.request("GET", `/api/system/audit?where=${q}&limit=1000`, undefined, root);
    expect(res.status, res.text).toBe(200);
    return res.body.data;
  };

  beforeAll(async () => {
    server = await startServer(config(), { options: { seed: seedTenants } });
    root = bearer(await login(server, "root@test.com", PASSWORD));
  });
  afterAll(() => server?.close());

  it("records a mutation with its actor, request and changes, redacted, in one entry per row", async () => {
    const alice = bearer(await login(server, "alice@a.test", PASSWORD));
    const created = await server.request("POST", "/api/data/notes", { title: "audited", slug: "s1" }, alice);
    expect(created.status, created.text).toBe(201);
    const id = created.body.data.id;
    const updated = await server.request("PATCH", `/api/data/notes/${id}`, { title: "audited 2" }, alice);
    expect(updated.status, updated.text).toBe(200);
    const deleted = await server.request("DELETE", `/api/data/notes/${id}`, undefined, alice);
    expect(deleted.status, deleted.text).toBe(200);
    const found = await entries({ entity: "notes", row_id: id });
    expect(found.map((e) => e.action)).toEqual(["data.create", "data.update", "data.delete"]);
    const [create, update, remove] = found as [Row, Row, Row];
    expect(create.actor).toMatchObject({ user_id: 1, role: "member", account_id: 1, key_id: null });
    expect(create.actor.ip).toEqual(expect.any(String));
    expect(create.request_id).toBe(created.headers.get("x-request-id"));
    expect(create.changes).toMatchObject({
      title: [null, "audited"],
      slug: [null, "[redacted]"],
      account_id: [null, 1],
    });
    expect(update.changes).toEqual({ title: ["audited", "audited 2"] });
    expect(remove.changes.title).toEqual(["audited 2", null]);
    expect(create.policy_hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("hidden and redacted fields are [redacted] whatever their value, null included: a null tells as much (7.2)", async () => {
    // a user made through the data API has no password: its null hash must not say so
    const adam = bearer(await login(server, "adam@a.test", PASSWORD));
    const user = await server.request("POST", "/api/data/users", { email: "no-password@a.test" }, adam);
    expect(user.status, user.text).toBe(201);
    const [created] = await entries({ action: "data.create", entity: "users", row_id: user.body.data.id });
    expect(created!.changes).toMatchObject({
      email: [null, "no-password@a.test"],
      password_hash: [null, "[redacted]"],
      token_version: [null, "[redacted]"],
    });
    // notes.slug is in audit.redact: set from null, back to null, deleted while null; unchanged, it is not listed
    const alice = bearer(await login(server, "alice@a.test", PASSWORD));
    const note = await server.request("POST", "/api/data/notes", { title: "slugless" }, alice);
    expect(note.status, note.text).toBe(201);
    const id = note.body.data.id;
    for (const body of [{ slug: "slug-for-a-while" }, { title: "slugless 2" }, { slug: null }]) {
      const res = await server.request("PATCH", `/api/data/notes/${id}`, body, alice);
      expect(res.status, res.text).toBe(200);
    }
    expect((await server.request("DELETE", `/api/data/notes/${id}`, undefined, alice)).status).toBe(200);
    const found = await entries({ entity: "notes", row_id: id });
    expect(found.map((e) => [e.action, e.changes.slug])).toEqual([
      ["data.create", [null, "[redacted]"]],
      ["data.update", ["[redacted]", "[redacted]"]],
      ["data.update", undefined],
      ["data.update", ["[redacted]", "[redacted]"]],
      ["data.delete", ["[redacted]", null]],
    ]);
    expect(JSON.stringify(found)).not.toContain("slug-for-a-while");
  });

  it("a refused write leaves no entry; the refusal is an access.denied entry", async () => {
    const carol = bearer(await login(server, "carol@b.test", PASSWORD));
    const before = (await entries({ action: { $like: "data.*" } })).length;
    const refused = await server.request("PATCH", "/api/data/notes/2", { title: "x" }, carol);
    expect(refused.status).toBe(404);
    const taken = await server.request("POST", "/api/data/notes", { title: "dup", slug: "hello" }, carol);
    expect(taken.status).toBe(409);
    expect((await entries({ action: { $like: "data.*" } })).length).toBe(before);
    const denied = await server.request("POST", "/api/data/users", { email: "x@b.test" }, carol);
    expect(denied.status).toBe(403);
    const [entry] = await entries({ action: "access.denied", request_id: denied.headers.get("x-request-id") });
    expect(entry).toMatchObject({ entity: "users", actor: { user_id: 4, role: "member", account_id: 2 } });
  });

  it("records auth events and rejected credentials, never a password, token or key", async () => {
    const failed = await server.request("POST", "/api/auth/password/login", {
      email: "alice@a.test",
      password: "wrong",
    });
    expect(failed.status).toBe(401);
    const token = await login(server, "bob@a.test", PASSWORD);
    const rejected = await server.request("GET", "/api/data/notes", undefined, bearer(`${token}x`));
    expect(rejected.status).toBe(401);
    const key = await server.request("POST", "/api/system/keys", { name: "k", kind: "publishable", tenant: 1 }, root);
    expect(key.status).toBe(201);
    const badKey = await server.request("GET", "/api/data/notes", undefined, { apikey: `${key.body.data.key}x` });
    expect(badKey.status).toBe(401);
    const all = await entries();
    const actions = new Set(all.map((e) => e.action));
    for (const action of ["auth.login_failed", "auth.login", "auth.token_rejected", "key.create", "key.rejected"])
      expect(actions, action).toContain(action);
    const text = JSON.stringify(all);
    for (const secret of [PASSWORD, "wrong", token, key.body.data.key, "$argon2"]) expect(text).not.toContain(secret);
    expect(all.find((e) => e.action === "key.create")).toMatchObject({
      entity: "citadel_api_keys",
      row_id: key.body.data.id,
    });
  });

  it("trusted code's user and key management is recorded too, without an actor (the CLI, seeds)", async () => {
    const auth = server.app.module.auth;
    const seeded = await entries({ action: "data.create", entity: "users", row_id: 1 });
    expect(seeded).toHaveLength(1);
    expect(seeded[0]).toMatchObject({
      actor: { user_id: null, role: null, ip: null },
      changes: { email: [null, "alice@a.test"] },
    });
    await auth.users.create({ email: "eve@a.test", password: PASSWORD, account_id: 1 });
    await auth.users.setRole("eve@a.test", "reader");
    await auth.users.setPassword("eve@a.test", `${PASSWORD}-2`);
    const eve = await auth.users.delete("eve@a.test");
    const key = await auth.apiKeys!.create({ name: "cli", kind: "secret" });
    const rotated = await auth.apiKeys!.rotate(key.id, { grace_seconds: 0 });
    await auth.apiKeys!.revoke(rotated.id);
    const mine = await entries({ entity: "users", row_id: eve.id });
    // each change of the row is one data.* entry (7.2), beside the auth event it is
    expect(mine.map((e) => e.action)).toEqual([
      "data.create",
      "data.update",
      "auth.role_change",
      "data.update",
      "auth.password_change",
      "data.delete",
    ]);
    // users.create gives the default registration role, as the CLI does; the role change revokes tokens
    expect(mine[1]!.changes).toEqual({ role: ["admin", "reader"], token_version: ["[redacted]", "[redacted]"] });
    expect(mine[2]!.changes).toEqual({ role: ["admin", "reader"] });
    expect(mine[3]!.changes).toEqual({
      password_hash: ["[redacted]", "[redacted]"],
      token_version: ["[redacted]", "[redacted]"],
    });
    expect(mine[5]!.changes.email).toEqual(["eve@a.test", null]);
    for (const entry of mine)
      expect(entry.actor).toEqual({ user_id: null, role: null, key_id: null, account_id: null, ip: null });
    const keys = await entries({ entity: "citadel_api_keys", row_id: { $in: [key.id, rotated.id] } });
    // the rotation is recorded on the key it hands out, which is then revoked
    expect(keys.map((e) => [e.action, e.row_id, e.actor.user_id])).toEqual([
      ["key.create", key.id, null],
      ["key.rotate", rotated.id, null],
      ["key.revoke", rotated.id, null],
    ]);
    const text = JSON.stringify([...mine, ...keys]);
    for (const secret of [PASSWORD, key.key, rotated.key, "$argon2"]) expect(text).not.toContain(secret);
  });

  it("a failed login keeps the email tried, never other text; a refused key-and-user pair names both", async () => {
    const typo = await server.request("POST", "/api/auth/password/login", { email: "hunter2-secret", password: "x" });
    expect(typo.status).toBe(401);
    const [failed] = await entries({ action: "auth.login_failed", request_id: typo.headers.get("x-request-id") });
    expect(failed!.reason).toContain("not an email address");
    expect(JSON.stringify(failed)).not.toContain("hunter2");
    const key = await server.request("POST", "/api/system/keys", { name: "a", kind: "publishable", tenant: 1 }, root);
    const carol = bearer(await login(server, "carol@b.test", PASSWORD));
    const mixed = await server.request("GET", "/api/data/notes", undefined, { ...carol, apikey: key.body.data.key });
    expect(mixed.status).toBe(403);
    const [denied] = await entries({ action: "access.denied", request_id: mixed.headers.get("x-request-id") });
    expect(denied!.actor).toMatchObject({ user_id: 4, key_id: key.body.data.id });
  });

  it("the table refuses UPDATE and DELETE on the engine itself", async () => {
    await expect(server.rows("update citadel_audit set reason = 'x' where id = 1")).rejects.toThrow(/append-only/);
    await expect(server.rows("delete from citadel_audit where id = 1")).rejects.toThrow(/append-only/);
    expect((await server.app.audit!.verify()).ok).toBe(true);
  });

  it("a tenant admin reads its own account's entries only", async () => {
    const adam = bearer(await login(server, "adam@a.test", PASSWORD));
    const res = await server.request("GET", "/api/system/audit?limit=1000", undefined, adam);
    expect(res.status, res.text).toBe(200);
    expect(res.body.data.length).toBeGreaterThan(0);
    expect(new Set(res.body.data.map((e: Row) => e.account_id))).toEqual(new Set([1]));
    const alice = bearer(await login(server, "alice@a.test", PASSWORD));
    expect((await server.request("GET", "/api/system/audit", undefined, alice)).status).toBe(403);
  });

  it("a superadmin's write to another account's row is that account's entry, not its own account's (6.2, 7.4)", async () => {
    const { auth } = server.app.module;
    await auth.createUser({ email: "ops@a.test", password: PASSWORD, role: "superadmin", account_id: 1 });
    await auth.createUser({ email: "bea@b.test", password: PASSWORD, role: "admin", account_id: 2 });
    const ops = bearer(await login(server, "ops@a.test", PASSWORD));
    const [note] = await server.rows("select id from notes where account_id = ? order by id limit 1", 2);
    const patched = await server.request("PATCH", `/api/data/notes/${note!.id}`, { title: "B's secret plan" }, ops);
    expect(patched.status, patched.text).toBe(200);

    const where = encodeURIComponent(JSON.stringify({ entity: "notes", row_id: note!.id, action: "data.update" }));
    const read = async (email: string) => {
      const res = await server.request(
        "GET",
        `/api/system/audit?where=${where}`,
        undefined,
        bearer(await login(server, email, PASSWORD)),
      );
      expect(res.status, res.text).toBe(200);
      return res.body.data as Row[];
    };
    expect(await read("adam@a.test")).toEqual([]);
    const [entry, ...more] = await read("bea@b.test");
    expect(more).toEqual([]);
    expect(entry).toMatchObject({ account_id: 2, actor: { role: "superadmin", account_id: 1 } });
    expect(entry!.changes.title[1]).toBe("B's secret plan");
    expect((await server.app.audit!.verify()).ok).toBe(true);
  });
});

describe("the policy hash (7.1)", () => {
  /** The policy hash of the fixture's app with `rule` reading and writing notes' slugs (none: no field rules). */
  const hashWith = async (rule?: string): Promise<string> => {
    const config = tenancyConfig({ audit: { enabled: true } });
    const notes = (config.data as { entities: Record<string, { config?: object }> }).entities.notes!;
    if (rule) notes.config = { ...notes.config, field_rules: { slug: { read: rule, write: rule } } };
    const server = await startServer(config);
    try {
      return server.app.audit!.policyHash;
    } finally {
      await server.close();
    }
  };

  it("covers the entities' field rules, which decide who reads and writes a field (9.4)", async () => {
    const [none, strict, open] = [await hashWith(), await hashWith("@has_role('admin')"), await hashWith("true")];
    expect(new Set([none, strict, open]).size).toBe(3);
    expect(await hashWith("@has_role('admin')")).toBe(strict);
  });
});

describe("audit of reads (7.1, audit.reads)", () => {
  let server: TestServer;
  afterAll(() => server?.close());

  it("records each answered read with its where, rows returned and duration; none without reads: true", async () => {
    server = await startServer(
      tenancyConfig({ audit: { enabled: true, reads: true, redact: ["notes.slug", "users.email"] } }),
      {
        options: { seed: seedTenants },
      },
    );
    const alice = bearer(await login(server, "alice@a.test", PASSWORD));
    const where = encodeURIComponent(JSON.stringify({ public: true }));
    const listed = await server.request("GET", `/api/data/notes?where=${where}`, undefined, alice);
    expect(listed.status).toBe(200);
    expect((await server.request("GET", "/api/data/notes/3", undefined, alice)).status).toBe(404);
    expect((await server.request("GET", "/api/data/notes/1", undefined, alice)).status).toBe(200);
    const reads = await server.rows(
      "select entity, row_id, request_id, reason from citadel_audit where action = 'data.read'",
    );
    expect(reads).toHaveLength(2);
    expect(reads[0]).toMatchObject({ entity: "notes", row_id: null, request_id: listed.headers.get("x-request-id") });
    expect(reads[0]!.reason).toMatch(/^list, where \{"public":true\}: 1 rows in \d+\.\d ms$/);
    expect(reads[1]).toMatchObject({ entity: "notes", row_id: 1 });
    // a where comparing a redacted field keeps the comparison, not the value
    const bySlug = encodeURIComponent(JSON.stringify({ $or: [{ slug: { $eq: "hello" } }, { title: "x" }] }));
    expect((await server.request("GET", `/api/data/notes?where=${bySlug}`, undefined, alice)).status).toBe(200);
    const [last] = await server.rows(
      "select reason from citadel_audit where action = 'data.read' order by id desc limit 1",
    );
    expect(last!.reason).toContain('{"$or":[{"slug":{"$eq":"[redacted]"}},{"title":"x"}]}');
  });

  it("a where naming a redacted field through a relation path or $exists keeps the comparison, not the value (7.2)", async () => {
    const alice = bearer(await login(server, "alice@a.test", PASSWORD));
    const reads: [string, Row, string][] = [
      ["comments", { "note.slug": "hello" }, '{"note.slug":"[redacted]"}'],
      [
        "comments",
        { note: { slug: { $in: ["hello", "bob"] }, title: "bob's note" } },
        '{"note":{"slug":{"$in":["[redacted]","[redacted]"]},"title":"bob\'s note"}}',
      ],
      ["notes", { "author.email": "bob@a.test" }, '{"author.email":"[redacted]"}'],
      [
        "notes",
        { $or: [{ author: { email: { $eq: "carol@b.test" } } }, { tags: { $none: { name: "urgent" } } }] },
        '{"$or":[{"author":{"email":{"$eq":"[redacted]"}}},{"tags":{"$none":{"name":"urgent"}}}]}',
      ],
      [
        "comments",
        { $exists: { entity: "notes", where: { slug: "hello", id: "@row.note_id" } } },
        '{"$exists":{"entity":"notes","where":{"id":"@row.note_id","slug":"[redacted]"}}}',
      ],
    ];
    for (const [entity, where, kept] of reads) {
      const q = encodeURIComponent(JSON.stringify(where));
      const res = await server.request("GET", `/api/data/${entity}?where=${q}`, undefined, alice);
      expect(res.status, res.text).toBe(200);
      const [last] = await server.rows(
        "select entity, reason from citadel_audit where action = 'data.read' order by id desc limit 1",
      );
      expect(last!.entity).toBe(entity);
      expect(last!.reason).toContain(`where ${kept}:`);
    }
    const recorded = await server.rows("select reason from citadel_audit where action = 'data.read'");
    for (const secret of ["hello", "bob@a.test", "carol@b.test"])
      expect(recorded.filter((r) => String(r.reason).includes(secret))).toEqual([]);
  });

  it("reads are not recorded by default", async () => {
    const quiet = await startServer(tenancyConfig({ audit: { enabled: true } }), { options: { seed: seedTenants } });
    try {
      const alice = bearer(await login(quiet, "alice@a.test", PASSWORD));
      expect((await quiet.request("GET", "/api/data/notes", undefined, alice)).status).toBe(200);
      expect(await quiet.rows("select count(*) as n from citadel_audit where action = 'data.read'")).toEqual([
        { n: 0 },
      ]);
    } finally {
      await quiet.close();
    }
  });
});
