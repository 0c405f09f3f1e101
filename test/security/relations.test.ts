/**
 * Attacks through relations (§4.5, §4.8): `with` (nested, inverse, many-to-many, unreadable targets), reference
 * routes `/:entity/:id/:relation` and their bknd aliases. Nothing outside each entity's own read scope may leak.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANON, type Booted, boot, q } from "../guard/helpers.js";
import { BOOT, expectNoSecrets, ids, NOT_FOUND, P, securityApp } from "./fixture.js";

let b: Booted<void>;
beforeAll(async () => {
  b = await boot(securityApp, BOOT);
});
afterAll(() => b.server.close());

// biome-ignore lint/suspicious/noExplicitAny: arbitrary JSON rows
type Row = Record<string, any>;

describe("with: each relation under its own read scope", () => {
  it("anonymous: projects with tasks shows only public projects and done tasks", async () => {
    const res = await b.as(ANON, "GET", "/api/data/projects?with=tasks");
    expect(res.status, res.text).toBe(200);
    expect(ids(res)).toEqual([P.alicePublic, P.bobPublic]);
    const tasks = res.body.data.flatMap((p: Row) => p.tasks.map((t: Row) => t.id));
    expect(tasks).toEqual([1]);
    for (const p of res.body.data) expect(p).not.toHaveProperty("budget");
    expectNoSecrets(res);
  });

  it("anonymous: a visible task's private project comes back as null (many-to-one)", async () => {
    const res = await b.as(ANON, "GET", "/api/data/tasks?with=project");
    expect(res.status, res.text).toBe(200);
    const byId = Object.fromEntries(res.body.data.map((t: Row) => [t.id, t]));
    expect(Object.keys(byId).map(Number)).toEqual([1, 4]);
    expect(byId[1].project).toMatchObject({ id: P.alicePublic });
    expect(byId[1].project).not.toHaveProperty("budget");
    expect(byId[4].project).toBeNull();
    expectNoSecrets(res);
  });

  it("anonymous: many-to-many from the tag side never reaches a private project", async () => {
    const res = await b.as(ANON, "GET", "/api/data/tags?with=projects");
    expect(res.status, res.text).toBe(200);
    const linked = Object.fromEntries(res.body.data.map((t: Row) => [t.name, t.projects.map((p: Row) => p.id)]));
    expect(linked).toEqual({ red: [P.alicePublic], blue: [] });
    expectNoSecrets(res);
  });

  it("anonymous: nested with (tags → projects → tasks → project) stays inside every scope", async () => {
    const spec = { projects: { with: { tasks: { with: { project: {} } } } } };
    const res = await b.as(ANON, "GET", `/api/data/tags?with=${q(spec)}`);
    expect(res.status, res.text).toBe(200);
    expectNoSecrets(res);
    const tasks = res.body.data.flatMap((t: Row) => t.projects.flatMap((p: Row) => p.tasks));
    expect(tasks.map((t: Row) => t.id)).toEqual([1]);
  });

  it("anonymous: a relation to an unreadable entity is omitted, whatever its options say", async () => {
    const plain = await b.as(ANON, "GET", "/api/data/projects?with=owner");
    expect(plain.status, plain.text).toBe(200);
    for (const p of plain.body.data) expect(p).not.toHaveProperty("owner");
    for (const where of [{ email: { $like: "alice*" } }, { password_hash: { $isnull: false } }, { nope: 1 }]) {
      const probe = await b.as(ANON, "GET", `/api/data/projects?with=${q({ owner: { where } })}`);
      expect(probe.status).toBe(200);
      expect(probe.text, "with-where on an unreadable target is an oracle").toBe(plain.text);
    }
    const notes = await b.as(ANON, "GET", "/api/data/projects?with=notes");
    expect(notes.status).toBe(200);
    expectNoSecrets(notes);
    for (const p of notes.body.data) expect(p).not.toHaveProperty("notes");
  });

  it("member: notes (no read permission) are omitted from with, even deeply nested", async () => {
    const res = await b.as("alice", "GET", `/api/data/tasks?with=${q({ project: { with: { notes: {} } } })}`);
    expect(res.status, res.text).toBe(200);
    expect(res.text).not.toContain("note on");
    expectNoSecrets(res);
  });

  it("member: inverse relations from users are filtered (bob's tasks on alice's project stay hidden)", async () => {
    const res = await b.as("alice", "GET", "/api/data/users?with=tasks,projects");
    expect(res.status, res.text).toBe(200);
    expect(ids(res)).toEqual([1]);
    const [me] = res.body.data;
    expect(me.tasks.map((t: Row) => t.id)).toEqual([1]);
    expect(me.projects.map((p: Row) => p.id)).toEqual([P.alicePublic, P.alicePrivate]);
    const viaProject = await b.as("alice", "GET", `/api/data/projects/${P.alicePublic}?with=tasks`);
    expect(viaProject.body.data.tasks.map((t: Row) => t.id)).toEqual([1]);
    expectNoSecrets(res);
  });

  it("member: with over users never exposes password_hash or token_version", async () => {
    const res = await b.as("alice", "GET", "/api/data/projects?with=owner");
    expect(res.status, res.text).toBe(200);
    const owners = res.body.data.map((p: Row) => p.owner);
    expect(owners.filter((o: Row | null) => o !== null).map((o: Row) => o.id)).toEqual([1, 1]);
    expectNoSecrets(res);
  });

  it.each([
    ["select a hidden field", { owner: { select: "password_hash" } }],
    ["select an omitted field", { tasks: { with: { project: { select: ["budget"] } } } }],
    ["where on a hidden field", { owner: { where: { token_version: 0 } } }],
    ["where on an omitted field", { tasks: { with: { project: { where: { budget: { $gt: 250 } } } } } }],
    ["sort on a hidden field", { owner: { sort: "-password_hash" } }],
    ["sort on an omitted field", { tasks: { with: { project: { sort: { by: "budget", dir: "desc" } } } } }],
    ["where on a relation's own hidden field", { tasks: { where: { secret: "TOPSECRET" } } }],
  ])("member: %s inside with is 400 (no oracle)", async (_, spec) => {
    const res = await b.as("alice", "GET", `/api/data/projects?with=${q(spec)}`);
    expect(res.status, res.text).toBe(400);
    // the message may echo the name the caller typed, never a value
    expectNoSecrets(res, ["TOPSECRET", "$argon2", "Bob private", 'budget":']);
    const body = await b.as("alice", "POST", "/api/data/projects/query", { with: spec });
    expect(body.status, body.text).toBe(400);
  });

  it("with limits cannot exceed the configured maximum", async () => {
    const res = await b.as(ANON, "GET", `/api/data/projects?with=${q({ tasks: { limit: 100000 } })}`);
    expect(res.status).toBe(400);
  });
});

describe("reference routes /:entity/:id/:relation (and the bknd aliases)", () => {
  for (const prefix of ["/api/data", "/api/data/entity"]) {
    it(`${prefix}: the related rows of a visible row are filtered by the target's scope`, async () => {
      const res = await b.as(ANON, "GET", `${prefix}/tasks/4/project`);
      expect(res.status, res.text).toBe(200);
      expect(res.body.data).toEqual([]);
      expect(res.body.meta).toMatchObject({ count: 0, total: 0 });
      const inverse = await b.as(ANON, "GET", `${prefix}/projects/${P.alicePublic}/tasks`);
      expect(ids(inverse)).toEqual([1]);
      expect(inverse.body.meta).toMatchObject({ count: 1, total: 1 });
      const tags = await b.as(ANON, "GET", `${prefix}/tags/2/projects`);
      expect(tags.body.data).toEqual([]);
      expectNoSecrets(tags);
    });

    it(`${prefix}: a hidden parent is 404, byte-identical to a missing one`, async () => {
      for (const rel of ["tasks", "notes", "tags", "owner", "nope"]) {
        const hidden = await b.as(ANON, "GET", `${prefix}/projects/${P.bobPrivate}/${rel}`);
        const missing = await b.as(ANON, "GET", `${prefix}/projects/999/${rel}`);
        expect(missing.status).toBe(404);
        expect(hidden.status, `${rel}: ${hidden.text}`).toBe(404);
        expect(hidden.text).toBe(missing.text);
        if (rel !== "nope") expect(hidden.text).toBe(NOT_FOUND);
      }
    });

    it(`${prefix}: an unreadable target entity is 403 and shows none of its rows`, async () => {
      const res = await b.as("alice", "GET", `${prefix}/projects/${P.alicePublic}/notes`);
      expect(res.status, res.text).toBe(403);
      expect(res.text).not.toContain("note on");
      const owner = await b.as(ANON, "GET", `${prefix}/projects/${P.alicePublic}/owner`);
      expect(owner.status).toBe(403);
    });

    it(`${prefix}: the caller's where on a reference route cannot widen it`, async () => {
      const where = q({ $or: [{ done: false }, { id: { $gt: 0 } }] });
      const res = await b.as(ANON, "GET", `${prefix}/projects/${P.alicePublic}/tasks?where=${where}`);
      expect(ids(res)).toEqual([1]);
      const hiddenField = await b.as(ANON, "GET", `${prefix}/tasks/1/project?where=${q({ budget: 100 })}`);
      expect(hiddenField.status).toBe(400);
    });
  }
});

describe("a relation whose key column the caller may not read (§4.8)", () => {
  // viewer's policy omits owner_id: the owner of a project is not theirs to know
  it("projects list and select do not expose owner_id", async () => {
    const res = await b.as("vic", "GET", "/api/data/projects");
    expect(res.status, res.text).toBe(200);
    for (const p of res.body.data) expect(p).not.toHaveProperty("owner_id");
    const where = await b.as("vic", "GET", `/api/data/projects?where=${q({ owner_id: 2 })}`);
    expect(where.status).toBe(400);
  });

  it("with=owner does not reveal the omitted owner_id", async () => {
    const res = await b.as("vic", "GET", "/api/data/projects?with=owner");
    const owners = res.status === 200 ? res.body.data.map((p: Row) => p.owner?.id ?? null) : [];
    expect(
      owners.filter((o: number | null) => o !== null),
      `owner ids leaked: ${res.text}`,
    ).toEqual([]);
  });

  it("users?with=projects does not reveal the omitted projects.owner_id", async () => {
    const res = await b.as("vic", "GET", "/api/data/users?with=projects");
    const linked = res.status === 200 ? res.body.data.flatMap((u: Row) => u.projects ?? []) : [];
    expect(linked, `ownership leaked: ${res.text}`).toEqual([]);
  });

  it("the reference route /projects/:id/owner does not reveal the omitted owner_id", async () => {
    const res = await b.as("vic", "GET", `/api/data/projects/${P.bobPrivate}/owner`);
    const found = res.status === 200 ? res.body.data : [];
    expect(found, `owner leaked: ${res.text}`).toEqual([]);
  });
});
