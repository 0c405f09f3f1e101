/**
 * Write attacks (§2.4, §3.6, §4.3, §4.6, §4.8, §4.10): moving rows out of the filter, batches mixing allowed and
 * refused rows, crafted many-row wheres, mass assignment of system/hidden/privileged fields, reference oracles.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Booted, boot, dbRows } from "../guard/helpers.js";
import { BOOT, expectNoSecrets, ID, NOT_FOUND, P, securityApp } from "./fixture.js";

let b: Booted<void>;
beforeAll(async () => {
  b = await boot(securityApp, BOOT);
});
afterAll(() => b.server.close());

const projects = () => dbRows(b.server, "SELECT id, name, owner_id, budget, public FROM projects ORDER BY id");
const count = async (table: string) =>
  ((await dbRows(b.server, `SELECT count(*) AS n FROM ${table}`))[0] as { n: number }).n;

describe("the write check (§4.6)", () => {
  it.each([
    ["someone else's owner_id", { name: "x", owner_id: ID.bob }],
    ["no owner", { name: "x" }],
    ["a null owner", { name: "x", owner_id: null }],
  ])("create with %s is 403 and writes nothing", async (_, row) => {
    const before = await count("projects");
    const res = await b.as("alice", "POST", "/api/data/projects", row);
    expect(res.status, res.text).toBe(403);
    expect(res.body.error).toMatchObject({ permission: "data.entity.create", entity: "projects" });
    expect(await count("projects")).toBe(before);
  });

  it("a batch mixing an allowed and a refused row is 403 as a whole (all or nothing)", async () => {
    const before = await count("tasks");
    for (const batch of [
      [
        { title: "mine", owner_id: ID.alice },
        { title: "planted", owner_id: ID.bob },
      ],
      [{ title: "mine", owner_id: ID.alice }, { title: "no owner" }],
    ]) {
      const res = await b.as("alice", "POST", "/api/data/tasks", batch);
      expect(res.status, res.text).toBe(403);
    }
    expect(await count("tasks")).toBe(before);
  });

  it.each([
    ["owner_id to someone else", { owner_id: ID.bob }],
    ["owner_id to null", { owner_id: null }],
  ])("update moving the filter's key (%s) is 403 and changes nothing", async (_, patch) => {
    const before = await projects();
    const res = await b.as("alice", "PATCH", `/api/data/projects/${P.alicePrivate}`, patch);
    expect(res.status, res.text).toBe(403);
    const many = await b.as("alice", "PATCH", "/api/data/projects", { update: patch, where: { id: { $gt: 0 } } });
    expect(many.status, many.text).toBe(403);
    expect(await projects()).toEqual(before);
  });

  it("a readable row outside the update filter is 403; an unreadable one is 404", async () => {
    const before = await projects();
    const readable = await b.as("alice", "PATCH", `/api/data/projects/${P.bobPublic}`, { name: "pwned" });
    expect(readable.status).toBe(403);
    const hidden = await b.as("alice", "PATCH", `/api/data/projects/${P.bobPrivate}`, { name: "pwned" });
    expect(hidden.text).toBe(NOT_FOUND);
    expect(await projects()).toEqual(before);
  });

  it("update/delete many with a crafted where reach only rows inside both filters", async () => {
    const before = await projects();
    const where = { $or: [{ id: P.bobPrivate }, { id: P.bobPublic }, { owner_id: ID.bob }, { public: true }] };
    const res = await b.as("alice", "PATCH", "/api/data/projects", { update: { name: "pwned" }, where });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data.map((r: { id: number }) => r.id)).toEqual([P.alicePublic]);
    expect((await projects()).filter((p) => p.owner_id === ID.bob)).toEqual(
      before.filter((p) => p.owner_id === ID.bob),
    );
    await b.as("alice", "PATCH", `/api/data/projects/${P.alicePublic}`, { name: "Alice public" });

    const tasksBefore = await dbRows(b.server, "SELECT id FROM tasks ORDER BY id");
    for (const prefix of ["/api/data", "/api/data/entity"]) {
      const del = await b.as("alice", "DELETE", `${prefix}/tasks`, { $or: [{ id: 2 }, { owner_id: ID.bob }] });
      expect(del.status, del.text).toBe(200);
      expect(del.body.data).toEqual([]);
      const upd = await b.as("alice", "PATCH", `${prefix}/tasks`, { update: { title: "x" }, where: { id: 2 } });
      expect(upd.body.data).toEqual([]);
    }
    expect(await dbRows(b.server, "SELECT id, title FROM tasks WHERE id = 2")).toEqual([{ id: 2, title: "B-secret" }]);
    expect(await dbRows(b.server, "SELECT id FROM tasks ORDER BY id")).toEqual(tasksBefore);
  });

  it.each([
    ["a missing where", { update: { name: "x" } }],
    ["an empty where", { update: { name: "x" }, where: {} }],
    ["a null where", { update: { name: "x" }, where: null }],
    ["an always-true empty $and", { update: { name: "x" }, where: { $and: [] } }],
    ["an empty $and object", { update: { name: "x" }, where: { $and: {} } }],
  ])("update many with %s is 400 and changes nothing", async (_, body) => {
    const before = await projects();
    const res = await b.as("alice", "PATCH", "/api/data/projects", body);
    expect(res.status, res.text).toBe(400);
    expect(await projects()).toEqual(before);
  });

  it.each([["{}"], ["null"], ['{"$and":[]}'], ['{"$or":[{"$and":[]}]}']])(
    "delete many with where %s is 400 and deletes nothing",
    async (where) => {
      const before = await count("tasks");
      const res = await b.as("alice", "DELETE", "/api/data/tasks", where);
      expect(res.status, res.text).toBe(400);
      expect(await count("tasks")).toBe(before);
    },
  );
});

describe("mass assignment (§2.4, §3.6, §4.8)", () => {
  it.each([
    ["id", { id: 77 }],
    ["created_at", { created_at: "2000-01-01T00:00:00.000Z" }],
    ["updated_at", { updated_at: "2000-01-01T00:00:00.000Z" }],
    ["a hidden field", { secret: "mine" }],
    ["__proto__", JSON.parse('{"__proto__":{"polluted":"yes"}}')],
    ["constructor", { constructor: { prototype: { polluted: "yes" } } }],
    ["toString", { toString: "x" }],
  ])("create/update with %s is refused and writes nothing", async (_, extra) => {
    const before = await count("projects");
    const snapshot = await dbRows(b.server, "SELECT * FROM projects ORDER BY id");
    const created = await b.as("alice", "POST", "/api/data/projects", { name: "m", owner_id: ID.alice, ...extra });
    expect([400, 403], created.text).toContain(created.status);
    const updated = await b.as("alice", "PATCH", `/api/data/projects/${P.alicePrivate}`, { name: "m", ...extra });
    expect([400, 403], updated.text).toContain(updated.status);
    const many = await b.as("alice", "PATCH", "/api/data/projects", { update: extra, where: { id: P.alicePrivate } });
    expect([400, 403], many.text).toContain(many.status);
    expect(await count("projects")).toBe(before);
    expect(await dbRows(b.server, "SELECT * FROM projects ORDER BY id")).toEqual(snapshot);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expectNoSecrets(created, ["TOPSECRET"]);
  });

  it("a member cannot change their own role, password hash or token version through the data API", async () => {
    const before = await dbRows(
      b.server,
      "SELECT role, password_hash, token_version FROM users WHERE id = ?",
      ID.alice,
    );
    for (const patch of [
      { role: "admin" },
      { ROLE: "admin" },
      { password_hash: "x" },
      { token_version: 0 },
      { password: "newpassword1" },
    ]) {
      const res = await b.as("alice", "PATCH", `/api/data/users/${ID.alice}`, patch);
      expect([400, 403], `${JSON.stringify(patch)}: ${res.text}`).toContain(res.status);
      const many = await b.as("alice", "PATCH", "/api/data/users", { update: patch, where: { id: ID.alice } });
      expect([400, 403]).toContain(many.status);
    }
    const role = await b.as("alice", "PATCH", `/api/data/users/${ID.alice}`, { role: "admin" });
    expect(role.status).toBe(403);
    expect(
      await dbRows(b.server, "SELECT role, password_hash, token_version FROM users WHERE id = ?", ID.alice),
    ).toEqual(before);
    const ok = await b.as("alice", "PATCH", `/api/data/users/${ID.alice}`, { nickname: "al" });
    expect(ok.status).toBe(200);
    expect(ok.body.data).not.toHaveProperty("password_hash");
    expect(ok.body.data).not.toHaveProperty("token_version");
  });

  it("a write's answer shows only what the caller may read (no omitted budget)", async () => {
    const res = await b.as("alice", "POST", "/api/data/projects", { name: "new", budget: 5, owner_id: ID.alice });
    expect(res.status, res.text).toBe(201);
    expect(res.body.data).not.toHaveProperty("budget");
    expect(res.body.data).not.toHaveProperty("secret");
    const upd = await b.as("alice", "PATCH", `/api/data/projects/${res.body.data.id}`, { budget: 6 });
    expect(upd.body.data).not.toHaveProperty("budget");
    await b.as("root", "DELETE", `/api/data/projects/${res.body.data.id}`);
  });

  it("an entity without any write permission is 403 for every write", async () => {
    const before = await count("notes");
    expect((await b.as("alice", "POST", "/api/data/notes", { body: "x" })).status).toBe(403);
    expect((await b.as("alice", "PATCH", "/api/data/notes/1", { body: "x" })).status).toBe(403);
    expect((await b.as("alice", "DELETE", "/api/data/notes/1")).status).toBe(403);
    expect((await b.as("alice", "DELETE", "/api/data/notes", { id: 1 })).status).toBe(403);
    expect(await count("notes")).toBe(before);
  });
});

describe("oracles and reach through writes", () => {
  it("referencing a row the caller cannot read answers exactly like referencing a missing row", async () => {
    const before = await count("tasks");
    const hidden = await b.as("alice", "POST", "/api/data/tasks", {
      title: "probe",
      owner_id: ID.alice,
      project_id: P.bobPrivate,
    });
    const missing = await b.as("alice", "POST", "/api/data/tasks", {
      title: "probe",
      owner_id: ID.alice,
      project_id: 999,
    });
    const leaked = await dbRows(
      b.server,
      "SELECT id FROM tasks WHERE project_id = ? AND title = 'probe'",
      P.bobPrivate,
    );
    for (const t of leaked) await b.as("root", "DELETE", `/api/data/tasks/${t.id}`);
    expect(hidden.status, `hidden: ${hidden.text} / missing: ${missing.text}`).toBe(missing.status);
    expect(hidden.body).toEqual(missing.body);
    expect(await count("tasks")).toBe(before);
  });

  it("a role that may update but not read gets only the id back (§4.10)", async () => {
    const res = await b.as("blind", "PATCH", "/api/data/notes/1", { body: "note on Alice public" });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toEqual({ id: 1 });
    const hidden = await b.as("blind", "GET", "/api/data/notes/1");
    expect(hidden.status).toBe(403);
  });

  it("a role that may update but not read cannot filter on the fields it cannot read (§4.8)", async () => {
    const before = await dbRows(b.server, "SELECT * FROM notes ORDER BY id");
    const probe = await b.as("blind", "PATCH", "/api/data/notes", {
      update: {},
      where: { body: { $like: "note B conf*" } },
    });
    expect(probe.status, `blind update-many answered: ${probe.text}`).toBe(400);
    const sorted = await b.as("blind", "DELETE", "/api/data/notes", { body: { $like: "zzz*" } });
    expect(sorted.status, sorted.text).toBe(400);
    expect(await dbRows(b.server, "SELECT body FROM notes ORDER BY id")).toEqual(before.map((n) => ({ body: n.body })));
  });

  it("a deny on one id also holds on the many-row routes (§4.3: any matching deny wins)", async () => {
    const before = await dbRows(b.server, "SELECT name FROM projects WHERE id = ?", P.alicePublic);
    expect(before).toHaveLength(1);
    const one = await b.as("keeper", "PATCH", `/api/data/projects/${P.alicePublic}`, { name: "pwned" });
    expect(one.status).toBe(403);
    const many = await b.as("keeper", "PATCH", "/api/data/projects", {
      update: { name: "pwned" },
      where: { id: P.alicePublic },
    });
    const del = await b.as("keeper", "DELETE", "/api/data/projects", { id: P.alicePublic });
    const row = await dbRows(b.server, "SELECT name FROM projects WHERE id = ?", P.alicePublic);
    expect(row, `update many: ${many.text}; delete many: ${del.text}`).toEqual(before);
  });
});
