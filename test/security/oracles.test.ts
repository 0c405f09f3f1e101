/**
 * Oracles and injection in reads (§2.3, §4.3a, §4.5, §4.8, §4.10): 404 vs 403 vs 400, meta counts, count/exists,
 * hidden and omitted fields in where/sort/select, odd ids and entity names, SQL in names, the explain endpoint.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANON, type Booted, boot, dbRows, q } from "../guard/helpers.js";
import { BOOT, expectNoSecrets, NOT_FOUND, P, securityApp } from "./fixture.js";

let b: Booted<void>;
beforeAll(async () => {
  b = await boot(securityApp, BOOT);
});
afterAll(() => b.server.close());

const PREFIXES = ["/api/data", "/api/data/entity"];

describe("no row oracles (§4.10)", () => {
  for (const prefix of PREFIXES)
    it(`${prefix}: a row outside the filter and a missing row answer byte-identical 404s on every route`, async () => {
      const hidden = P.bobPrivate;
      for (const [method, suffix, body] of [
        ["GET", "", undefined],
        ["GET", "?with=tasks", undefined],
        ["GET", "?select=id", undefined],
        ["HEAD", "", undefined],
        ["PATCH", "", { name: "pwned" }],
        ["DELETE", "", undefined],
      ] as const) {
        const a = await b.as("alice", method, `${prefix}/projects/${hidden}${suffix}`, body);
        const m = await b.as("alice", method, `${prefix}/projects/999${suffix}`, body);
        expect(a.status, `${method} ${suffix}: ${a.text}`).toBe(m.status);
        expect(a.text).toBe(m.text);
        if (method !== "HEAD" && method !== "DELETE") expect(a.text, method).toBe(NOT_FOUND);
      }
      // tasks: alice cannot delete (403 for her own? no: she owns task 1), bob's task 2 is hidden from her
      const del = await b.as("alice", "DELETE", `${prefix}/tasks/2`);
      const delMissing = await b.as("alice", "DELETE", `${prefix}/tasks/999`);
      expect(del.text).toBe(delMissing.text);
      expect(del.text).toBe(NOT_FOUND);
      expect(await dbRows(b.server, "SELECT name FROM projects WHERE id = 3")).toEqual([{ name: "Bob private" }]);
      expect(await dbRows(b.server, "SELECT id FROM tasks WHERE id = 2")).toHaveLength(1);
    });

  it.each(["01", "03", "1e3", "-1", "0", "+3", "3.0", "0x3", "3%20", "%203", "99999999999999999999", "3abc", "１"])(
    "id %s never reaches a hidden row and never errors",
    async (id) => {
      const res = await b.as("alice", "GET", `/api/data/projects/${id}`);
      expect([200, 404]).toContain(res.status);
      if (res.status === 200) expect(res.body.data.id).not.toBe(P.bobPrivate);
      expectNoSecrets(res);
      const patch = await b.as("alice", "PATCH", `/api/data/projects/${id}`, { name: "x" });
      expect([200, 404]).toContain(patch.status);
    },
  );

  it("exists and count answer the same for a hidden row and a missing one", async () => {
    for (const prefix of PREFIXES) {
      const hidden = await b.as(ANON, "POST", `${prefix}/projects/fn/exists`, { id: P.bobPrivate });
      const missing = await b.as(ANON, "POST", `${prefix}/projects/fn/exists`, { id: 999 });
      expect(hidden.body).toEqual({ entity: "projects", exists: false });
      expect(hidden.text).toBe(missing.text);
      const count = await b.as(ANON, "POST", `${prefix}/projects/fn/count`, { id: P.bobPrivate });
      expect(count.body).toEqual({ entity: "projects", count: 0 });
      const get = await b.as(ANON, "GET", `${prefix}/projects/exists?where=${q({ id: P.bobPrivate })}`);
      expect(get.body).toEqual({ data: { exists: false } });
    }
  });
});

describe("the caller's where only narrows (§4.3a, §4.5)", () => {
  const widening = [
    { $or: [{ public: false }, { id: { $gt: 0 } }] },
    { $not: { public: true } },
    { $or: [{ public: true }, { public: false }] },
    { id: { $in: [1, 2, 3, 4] } },
    { $or: [{ $and: [] }] },
    { $not: { $or: [] } },
  ];
  it.each(widening)("anonymous where %j sees only public rows, and meta counts only them", async (where) => {
    const res = await b.as(ANON, "GET", `/api/data/projects?where=${q(where)}&limit=1`);
    expect(res.status, res.text).toBe(200);
    for (const r of res.body.data) expect([P.alicePublic, P.bobPublic]).toContain(r.id);
    expect(res.body.meta.total).toBe(2);
    expect(res.body.meta.count).toBeLessThanOrEqual(2);
    const count = await b.as(ANON, "GET", `/api/data/projects/count?where=${q(where)}`);
    expect(count.body.data.count).toBeLessThanOrEqual(2);
    const viaBody = await b.as(ANON, "POST", "/api/data/projects/query", { where, limit: 100 });
    for (const r of viaBody.body.data) expect([P.alicePublic, P.bobPublic]).toContain(r.id);
    expectNoSecrets(viaBody);
  });

  it("offset past the end still counts only visible rows", async () => {
    const res = await b.as(ANON, "GET", "/api/data/projects?offset=50");
    expect(res.body.meta).toMatchObject({ items: 0, count: 2, total: 2 });
  });

  it("placeholders sent by a client are plain values, never bound to the caller's claims", async () => {
    const typed = await b.as("alice", "GET", `/api/data/tasks?where=${q({ owner_id: "@user.id" })}`);
    expect(typed.status).toBe(400);
    const text = await b.as("alice", "GET", `/api/data/projects?where=${q({ name: "@user.email" })}`);
    expect(text.body.data).toEqual([]);
    const obj = await b.as("alice", "GET", `/api/data/tasks?where=${q({ owner_id: { placeholder: "user.id" } })}`);
    expect(obj.status).toBe(400);
  });
});

describe("hidden and omitted fields cannot be named (§4.8)", () => {
  const hiddenCases: [string, string, string][] = [
    ["anonymous", "projects", "budget"],
    ["anonymous", "projects", "secret"],
    ["alice", "projects", "budget"],
    ["alice", "users", "password_hash"],
    ["alice", "users", "token_version"],
    ["vic", "users", "email"],
    ["vic", "tasks", "owner_id"],
  ];
  for (const [who, entity, field] of hiddenCases) {
    const as = who === "anonymous" ? ANON : who;
    it(`${who}: ${entity}.${field} in where/sort/select/count/exists is 400 like an unknown field`, async () => {
      const where = q({ [field]: { $isnull: false } });
      const paths = [
        `/api/data/${entity}?where=${where}`,
        `/api/data/${entity}?sort=-${field}`,
        `/api/data/${entity}?sort=${q({ by: field, dir: "desc" })}`,
        `/api/data/${entity}?select=id,${field}`,
        `/api/data/${entity}?select=id&select=${field}`,
        `/api/data/${entity}/count?where=${where}`,
        `/api/data/${entity}/exists?where=${where}`,
        `/api/data/entity/${entity}?where=${where}`,
      ];
      for (const path of paths) {
        const res = await b.as(as, "GET", path);
        expect(res.status, `${path}: ${res.text}`).toBe(400);
        expect(res.body.error.message).toContain(`unknown field "${field}"`);
        expectNoSecrets(res, ["TOPSECRET", "$argon2", "alice@test.com"]);
      }
      for (const [path, body] of [
        [`/api/data/${entity}/query`, { where: { [field]: { $isnull: false } } }],
        [`/api/data/${entity}/query`, { sort: [{ by: field }] }],
        [`/api/data/${entity}/query`, { select: ["id", field] }],
        [`/api/data/${entity}/fn/count`, { [field]: { $isnull: false } }],
        [`/api/data/${entity}/fn/exists`, { [field]: { $isnull: false } }],
      ] as const) {
        const res = await b.as(as, "POST", path, body);
        expect(res.status, `${path} ${JSON.stringify(body)}: ${res.text}`).toBe(400);
      }
    });
  }

  it("an unknown-field error does not list the entity's fields", async () => {
    const res = await b.as(ANON, "GET", `/api/data/projects?where=${q({ nope: 1 })}`);
    expect(res.status).toBe(400);
    for (const f of ["secret", "budget", "owner_id"]) expect(res.text).not.toContain(f);
  });
});

describe("names never become SQL (§2.3)", () => {
  const evil = [
    'name" OR 1=1 --',
    "name; DROP TABLE projects; --",
    "id) UNION SELECT password_hash FROM users --",
    "projects.secret",
    "secret--",
    "NAME",
    "näme",
  ];
  it.each(evil)("field %j in where, sort, select and with is a 400", async (name) => {
    for (const path of [
      `/api/data/projects?where=${q({ [name]: 1 })}`,
      `/api/data/projects?sort=${encodeURIComponent(name)}`,
      `/api/data/projects?select=${encodeURIComponent(name)}`,
      `/api/data/projects?with=${encodeURIComponent(name)}`,
      `/api/data/projects?with=${q({ tasks: { select: [name] } })}`,
      `/api/data/projects?sort=${q({ by: "id", dir: name })}`,
    ]) {
      const res = await b.as("alice", "GET", path);
      expect(res.status, `${path}: ${res.text}`).toBe(400);
      expectNoSecrets(res, ["TOPSECRET", "$argon2", "SQLITE", "syntax"]);
    }
    expect(await dbRows(b.server, "SELECT count(*) AS n FROM projects")).toEqual([{ n: 4 }]);
  });

  it.each(["PROJECTS", "projects;--", "projects%00", "proj%C3%A9cts", "sqlite_master", "projects_tags", "__proto__"])(
    "entity name %s is a 404 (no table outside the schema is reachable)",
    async (name) => {
      const res = await b.as("alice", "GET", `/api/data/${name}`);
      expect(res.status, res.text).toBe(404);
      const write = await b.as("alice", "POST", `/api/data/${name}`, { name: "x" });
      expect(write.status).toBe(404);
    },
  );

  it("a junction table is not an entity: nobody can list or write its links", async () => {
    const res = await b.as("alice", "GET", "/api/data/projects_tags");
    expect(res.status).toBe(404);
    const w = await b.as("alice", "POST", "/api/data/projects_tags", { projects_id: 3, tags_id: 1 });
    expect(w.status).toBe(404);
  });

  it("like patterns: % and _ are literals, only * is a wildcard", async () => {
    const res = await b.as(ANON, "GET", `/api/data/projects?where=${q({ name: { $ilike: "%" } })}`);
    expect(res.body.data).toEqual([]);
    const glob = await b.as(ANON, "GET", `/api/data/projects?where=${q({ name: { $like: "[AB]*" } })}`);
    expect(glob.body.data).toEqual([]);
  });
});

describe("explain is for callers granted system.explain", () => {
  const path = "/api/system/explain?role=member&permission=data.entity.read&entity=projects";
  it.each([ANON, "alice", "vic", "keeper"])("%s gets 403 and no SQL", async (who) => {
    const res = await b.as(who, "GET", path);
    expect(res.status, res.text).toBe(403);
    expect(res.text).not.toContain("where");
    expect(res.text).not.toContain("select");
  });
  it("admin gets the explanation", async () => {
    const res = await b.as("root", "GET", path);
    expect(res.status).toBe(200);
    expect(res.body.data.decision).toBe("filter");
  });
});
