/**
 * §4.14 owners: a many-to-one relation to users marked `owner: true` is set by the server on create, a body
 * naming another user is 403 (unless implicit_allow), callers without a user get no owner, and `$owner: true`
 * in a policy filter means "the owner column equals @user.id".
 */
import { createApp, em, entity, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANON, type Booted, boot, dbRows, guardedApp } from "../guard/helpers.js";

const schema = em(
  { notes: entity("notes", { body: text().required() }), users: entity("users", {}) },
  ({ notes, users }) => [relation(notes, "writer").manyToOne(users, { owner: true })],
);

const mine = { effect: "filter" as const, filter: { $owner: true } };
const app = guardedApp(schema, {
  anonymous: { is_default: true, permissions: ["data.entity.create"] },
  member: {
    permissions: [
      { permission: "data.entity.read", policies: [{ condition: { entity: "notes" }, ...mine }] },
      { permission: "data.entity.create", policies: [{ condition: { entity: "notes" }, effect: "allow" }] },
      { permission: "data.entity.update", policies: [{ condition: { entity: "notes" }, ...mine }] },
    ],
  },
  admin: { implicit_allow: true },
});

let b: Booted<void>;
beforeAll(async () => {
  b = await boot(app, { users: { ann: "member", bob: "member", root: "admin" } });
});
afterAll(() => b.server.close());

describe("owners (4.14)", () => {
  it("create sets the owner to the caller when the body omits it (4.14)", async () => {
    const res = await b.as("ann", "POST", "/api/data/notes", { body: "ann's" });
    expect(res.status, res.text).toBe(201);
    expect(res.body.data.writer_id).toBe(b.ids.ann);
    expect(await dbRows(b.server, `SELECT writer_id FROM notes WHERE id = ${res.body.data.id}`)).toEqual([
      { writer_id: b.ids.ann },
    ]);
  });

  it("a body naming another user as the owner is 403 and writes nothing (4.14)", async () => {
    const before = await dbRows(b.server, "SELECT count(*) AS n FROM notes");
    const res = await b.as("ann", "POST", "/api/data/notes", { body: "spoof", writer_id: b.ids.bob });
    expect(res.status).toBe(403);
    expect(res.body.error.message).toContain("writer_id");
    expect(await dbRows(b.server, "SELECT count(*) AS n FROM notes")).toEqual(before);
    const many = await b.as("ann", "POST", "/api/data/notes", [{ body: "ok" }, { body: "x", writer_id: b.ids.bob }]);
    expect(many.status).toBe(403);
    expect(await dbRows(b.server, "SELECT count(*) AS n FROM notes")).toEqual(before);
  });

  it("naming oneself is fine; implicit_allow may name anyone (4.14)", async () => {
    expect((await b.as("ann", "POST", "/api/data/notes", { body: "me", writer_id: b.ids.ann })).status).toBe(201);
    const root = await b.as("root", "POST", "/api/data/notes", { body: "for bob", writer_id: b.ids.bob });
    expect(root.status, root.text).toBe(201);
    expect(root.body.data.writer_id).toBe(b.ids.bob);
  });

  it("an update cannot move a row to another owner (4.14)", async () => {
    const created = await b.as("ann", "POST", "/api/data/notes", { body: "keep" });
    const id = created.body.data.id;
    const res = await b.as("ann", "PATCH", `/api/data/notes/${id}`, { writer_id: b.ids.bob });
    expect(res.status).toBe(403);
    expect(await dbRows(b.server, `SELECT writer_id FROM notes WHERE id = ${id}`)).toEqual([{ writer_id: b.ids.ann }]);
  });

  it("$owner: true filters reads to the caller's own rows (4.14)", async () => {
    const annRows = await b.as("ann", "GET", "/api/data/notes");
    expect(annRows.body.data.length).toBeGreaterThan(0);
    for (const row of annRows.body.data) expect(row.writer_id).toBe(b.ids.ann);
    const bobRows = await b.as("bob", "GET", "/api/data/notes");
    for (const row of bobRows.body.data) expect(row.writer_id).toBe(b.ids.bob);
  });

  it("a caller without a user creates rows without an owner and cannot name one (4.14)", async () => {
    const res = await b.as(ANON, "POST", "/api/data/notes", { body: "anon" });
    expect(res.status, res.text).toBe(201);
    expect(await dbRows(b.server, `SELECT writer_id FROM notes WHERE id = ${res.body.data.id}`)).toEqual([
      { writer_id: null },
    ]);
    expect((await b.as(ANON, "POST", "/api/data/notes", { body: "x", writer_id: b.ids.ann })).status).toBe(403);
  });
});

describe("owners and API keys (4.14, 5.1)", () => {
  let k: Booted<void>;
  // a role that reads users, so the owner it names is a row it may reference (4.17)
  const service = {
    permissions: [
      "data.entity.read",
      { permission: "data.entity.create", policies: [{ condition: { entity: "notes" }, effect: "allow" as const }] },
    ],
  };
  const auth = app.config!.auth!;
  const keyed = {
    config: { ...app.config, auth: { ...auth, roles: { ...auth.roles, service }, api_keys: { enabled: true } } },
  };
  beforeAll(async () => {
    k = await boot(keyed, { users: { ann: "member", bob: "member", root: "admin" } });
  });
  afterAll(() => k.server.close());
  const key = async (kind: "secret" | "publishable") =>
    (await k.server.app.module.auth.apiKeys!.create({ name: kind, kind, role: "service" })).key;

  it("a secret key acting as a role names any owner: its server writes on behalf of users (4.14)", async () => {
    const sk = await key("secret");
    const res = await k.server.request(
      "POST",
      "/api/data/notes",
      { body: "for bob", writer_id: k.ids.bob },
      { apikey: sk },
    );
    expect(res.status, res.text).toBe(201);
    expect(await dbRows(k.server, `SELECT writer_id FROM notes WHERE id = ${res.body.data.id}`)).toEqual([
      { writer_id: k.ids.bob },
    ]);
    // and explain agrees: no owner pinned for it, the role's owner pinned for its users (4.15)
    const keys = await k.as("root", "GET", "/api/system/keys");
    const id = keys.body.data.find((x: { kind: string }) => x.kind === "secret").id;
    const explained = (query: string) =>
      k.as("root", "GET", `/api/system/explain?permission=data.entity.create&entity=notes&${query}`);
    expect((await explained(`key=${id}`)).body.data.owner).toBeUndefined();
    expect((await explained("role=service")).body.data.owner).toBe("writer_id");
  });

  it("a publishable key acting as the same role may not name an owner (4.14)", async () => {
    const pk = await key("publishable");
    const before = await dbRows(k.server, "SELECT count(*) AS n FROM notes");
    const res = await k.server.request("POST", "/api/data/notes", { body: "x", writer_id: k.ids.bob }, { apikey: pk });
    expect(res.status, res.text).toBe(403);
    expect(res.body.error.message).toContain("writer_id");
    expect(await dbRows(k.server, "SELECT count(*) AS n FROM notes")).toEqual(before);
  });
});

describe("owner config (4.14)", () => {
  it("only a many-to-one relation to users can be the owner; $owner needs one (4.14, 1.5)", async () => {
    const bad = em({ notes: entity("notes", { body: text() }), tags: entity("tags", {}) }, ({ notes, tags }) => [
      relation(notes, "tag").manyToOne(tags, { owner: true }),
    ]);
    await expect(createApp({ connection: { url: ":memory:" }, config: { data: bad.toJSON() } })).rejects.toThrow(
      /owner/,
    );
    const noOwner = em({ tags: entity("tags", { name: text() }), users: entity("users", {}) });
    await expect(
      createApp({
        connection: { url: ":memory:" },
        config: {
          data: noOwner.toJSON(),
          auth: {
            enabled: true,
            jwt: { secret: "x".repeat(32) },
            roles: { member: { permissions: [{ permission: "data.entity.read", policies: [mine] }] } },
          },
        },
      }),
    ).rejects.toThrow(/no owner relation/);
  });
});
