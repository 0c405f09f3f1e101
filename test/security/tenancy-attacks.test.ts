/**
 * Tenant isolation (§6) red-teamed over HTTP: a caller in account A trying to read, count, detect, modify or
 * link to account B's rows, or to step out of its account — through where (relation paths, `$exists`), `with`
 * on many-to-many links, reference routes, writes to many rows, unique and reference 409s, the scope column,
 * the tenant entity itself, users and roles, tokens, API keys, explain and the auth routes, with the guard on
 * and off. Every refused write is followed by a check that the database is unchanged.
 */

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { boolean, em, entity, relation, text } from "citadel";
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, login } from "../helpers/auth.js";
import { type Row, startServer, type TestResponse, type TestServer } from "../helpers/server.js";
import { PASSWORD, PEOPLE, type Person, seedTenants, tenancyConfig } from "../tenancy/fixture.js";

/** Account ids and people as the seed makes them (fixture.ts): A = 1, B = 2. */
const A = 1;
const B = 2;
const ID = { alice: 1, bob: 2, adam: 3, carol: 4, root: 5 } as const;
/** Notes: 1 alice's (A, public), 2 bob's (A), 3 carol's (B, public); comments: 1 on note 1 (A), 2 on note 3 (B). */
const CAROLS_NOTE = 3;
const CAROLS_COMMENT = 2;
/** Tags added by `seed`: 1 red (A), 2 blue (B), 3 secret-b (B). */
const RED = 1;
const BLUE = 2;
const SECRET_B = 3;

const apikey = (key: string) => ({ apikey: key });
const q = (value: unknown) => encodeURIComponent(JSON.stringify(value));

/** The fixture's seed, tags in both accounts, and a link from A's note to B's tag (as a trusted bug might make). */
async function seed(input: { app: TestServer["app"] }): Promise<void> {
  await seedTenants(input);
  await input.app.module.data.create("tags", [
    { name: "red", account_id: A },
    { name: "blue", account_id: B },
    { name: "secret-b", account_id: B },
  ]);
}

/** Everything a refused write could touch, as stored. */
async function snapshot(
  server: TestServer,
  tables = ["accounts", "users", "notes", "comments", "tags", "notes_tags"],
): Promise<Record<string, Row[]>> {
  const out: Record<string, Row[]> = {};
  for (const table of tables) out[table] = await server.rows(`select * from ${table} order by 1, 2`);
  // a key's last use is bookkeeping, not a write a request makes
  out.keys = await server.rows(
    "select id, name, kind, role, tenant, prefix, hash, revoked_at, replaced_by from citadel_api_keys order by id",
  );
  return out;
}

/** Same status and byte-identical body: nothing tells the two apart (§4.10). */
function expectSame(a: TestResponse, b: TestResponse) {
  expect(a.status, a.text).toBe(b.status);
  expect(a.text).toBe(b.text);
}

/** A refusal that names no value of account B. */
function expectNoLeak(res: TestResponse) {
  for (const secret of ["carol", "b.test", "Account B", "secret-b", "blue", "on carol's"])
    expect(res.text.toLowerCase()).not.toContain(secret.toLowerCase());
}

async function loginAll(server: TestServer): Promise<Record<Person, Record<string, string>>> {
  const as = {} as Record<Person, Record<string, string>>;
  for (const [name, p] of Object.entries(PEOPLE)) as[name as Person] = bearer(await login(server, p.email, PASSWORD));
  return as;
}

describe("tenant isolation under attack (6)", () => {
  let server: TestServer;
  let as: Record<Person, Record<string, string>>;
  let before: Record<string, Row[]>;

  const get = (path: string, who: Record<string, string> = {}) => server.request("GET", path, undefined, who);
  /** A write that must be refused with `status`, leaving every table as it was. */
  const refused = async (status: number, res: TestResponse | Promise<TestResponse>) => {
    const r = await res;
    expect(r.status, r.text).toBe(status);
    expectNoLeak(r);
    expect(await snapshot(server)).toEqual(before);
    return r;
  };

  beforeAll(async () => {
    server = await startServer(tenancyConfig(), { options: { seed } });
    // the trusted slip: A's note linked to B's tag in the junction table
    await server.rows("insert into notes_tags (notes_id, tags_id) values (1, 1), (3, 2), (1, 3)");
    as = await loginAll(server);
    before = await snapshot(server);
  });
  afterAll(() => server?.close());

  describe("reads", () => {
    it("a where naming B's account only narrows, on list, count and exists", async () => {
      for (const where of [
        { account_id: B },
        { $or: [{ account_id: B }, { id: { $gt: 0 } }] },
        { $not: { account_id: A } },
        { id: CAROLS_NOTE },
        { title: "carol's note" },
      ]) {
        const list = await get(`/api/data/notes?where=${q(where)}`, as.adam);
        expect(list.status, list.text).toBe(200);
        expect(list.body.data.every((n: Row) => n.account_id === A)).toBe(true);
        expect(list.body.meta.total).toBe(2);
        const count = await server.request("POST", "/api/data/notes/fn/count", where, as.adam);
        expect(count.body.count).toBe(list.body.data.length);
      }
      const exists = await get(`/api/data/notes/exists?where=${q({ id: CAROLS_NOTE })}`, as.alice);
      expect(exists.body.data.exists).toBe(false);
      const count = await get(`/api/data/notes/count?where=${q({ slug: "hello" })}`, as.alice);
      expect(count.body.data.count).toBe(1);
    });

    it("relation paths reach only the caller's account", async () => {
      for (const where of [
        { author: { email: "carol@b.test" } },
        { "author.email": { $like: "carol*" } },
        { comments: { $some: { body: "on carol's" } } },
        { tags: { $some: { name: "blue" } } },
        { tags: { $some: { id: SECRET_B } } },
      ]) {
        const res = await server.request("POST", "/api/data/notes/fn/count", where, as.alice);
        expect(res.status, res.text).toBe(200);
        expect(res.body.count, JSON.stringify(where)).toBe(0);
      }
      // what the planted link would tell if the hop were not scoped: $every over B's tag
      const every = await server.request(
        "POST",
        "/api/data/notes/fn/count",
        { id: 1, tags: { $every: { name: "red" } } },
        as.alice,
      );
      expect(every.body.count).toBe(1);
      // from B's side: carol's comments through a path to A's note
      const fromB = await server.request("POST", "/api/data/tags/fn/count", { notes: { $some: { id: 1 } } }, as.carol);
      expect(fromB.body.count).toBe(0);
    });

    it("$exists over any entity is scoped to the caller's account", async () => {
      const probe = (entity: string, where: unknown) =>
        server.request("POST", "/api/data/notes/fn/count", { $exists: { entity, where } }, as.alice);
      // sanity: the same probe over A's own rows answers
      expect((await probe("users", { email: "bob@a.test" })).body.count).toBe(2);
      for (const [entity, where] of [
        ["users", { email: "carol@b.test" }],
        ["users", { id: ID.carol }],
        ["users", { id: ID.root }],
        ["notes", { id: CAROLS_NOTE }],
        ["comments", { body: { $like: "*carol*" } }],
        ["tags", { name: "secret-b" }],
        ["accounts", { id: B }],
        ["accounts", { slug: "b" }],
      ] as const) {
        const res = await probe(entity, where);
        expect(res.status, res.text).toBe(200);
        expect(res.body.count, `${entity} ${JSON.stringify(where)}`).toBe(0);
      }
      // nested: a relation inside $exists, and @row across it
      const nested = await probe("comments", { note: { author: { email: "carol@b.test" } } });
      expect(nested.body.count).toBe(0);
      // the junction table is not an entity to probe
      const junction = await probe("notes_tags", { tags_id: SECRET_B });
      expect(junction.status, junction.text).toBe(400);
      expectNoLeak(junction);
    });

    it("with on a many-to-many link and reference routes never show B's rows", async () => {
      const one = await get("/api/data/notes/1?with=tags,author,comments", as.alice);
      expect(one.status, one.text).toBe(200);
      expect(one.body.data.tags.map((t: Row) => t.id)).toEqual([RED]);
      expect(one.body.data.author.id).toBe(ID.alice);
      const list = await server.request("POST", "/api/data/notes/query", { with: { tags: {} } }, as.alice);
      expect(list.body.data.flatMap((n: Row) => n.tags.map((t: Row) => t.id))).toEqual([RED]);
      const related = await get("/api/data/notes/1/tags", as.alice);
      expect(related.body.data.map((t: Row) => t.id)).toEqual([RED]);
      expect(related.body.meta.total).toBe(1);
      // from B's side, its tag's notes do not include A's
      const back = await get(`/api/data/tags/${SECRET_B}/notes`, as.carol);
      expect(back.status, back.text).toBe(200);
      expect(back.body.data).toEqual([]);
      const withBack = await get(`/api/data/tags/${SECRET_B}?with=notes`, as.carol);
      expect(withBack.body.data.notes).toEqual([]);
      // users → notes, accounts have no path out
      const users = await get("/api/data/users?with=notes", as.adam);
      expect(users.body.data.flatMap((u: Row) => u.notes.map((n: Row) => n.account_id))).not.toContain(B);
    });

    it("another account's row is the same 404 as a missing one on every route", async () => {
      const pairs: [string, string][] = [
        [`/api/data/notes/${CAROLS_NOTE}`, "/api/data/notes/999"],
        [`/api/data/comments/${CAROLS_COMMENT}`, "/api/data/comments/999"],
        [`/api/data/tags/${BLUE}`, "/api/data/tags/999"],
        [`/api/data/users/${ID.carol}`, "/api/data/users/999"],
        [`/api/data/users/${ID.root}`, "/api/data/users/999"],
        [`/api/data/accounts/${B}`, "/api/data/accounts/999"],
        [`/api/data/notes/${CAROLS_NOTE}/comments`, "/api/data/notes/999/comments"],
        [`/api/data/notes/${CAROLS_NOTE}/tags`, "/api/data/notes/999/tags"],
        [`/api/data/comments/${CAROLS_COMMENT}/note`, "/api/data/comments/999/note"],
        [`/api/data/users/${ID.carol}/notes`, "/api/data/users/999/notes"],
        [`/api/data/tags/${SECRET_B}/notes`, "/api/data/tags/999/notes"],
      ];
      for (const who of [as.alice, as.adam]) {
        for (const [theirs, missing] of pairs) {
          const a = await get(theirs, who);
          expect(a.status, theirs).toBe(404);
          expectSame(a, await get(missing, who));
        }
      }
    });

    it("lists of users and accounts, and the auth routes, stay inside the account", async () => {
      const users = await get("/api/data/users", as.alice);
      expect(users.body.data.map((u: Row) => u.email).sort()).toEqual(["adam@a.test", "alice@a.test", "bob@a.test"]);
      expect(users.body.meta.total).toBe(3);
      const accounts = await get("/api/data/accounts", as.adam);
      expect(accounts.body.data.map((a: Row) => a.id)).toEqual([A]);
      const count = await get(`/api/data/accounts/count?where=${q({ slug: "b" })}`, as.adam);
      expect(count.body.data.count).toBe(0);
      const me = await get("/api/auth/me", as.alice);
      expect(me.status, me.text).toBe(200);
      expect(me.body.user.account_id).toBe(A);
      expectNoLeak(me);
      // the anonymous role reads only public notes, and with no account none of them
      const anonymous = await get(`/api/data/notes?where=${q({ public: true })}`);
      expect(anonymous.body.data).toEqual([]);
      expect((await get("/api/data/notes/1")).status).toBe(404);
    });
  });

  describe("writes", () => {
    it("one-row writes to B's rows are the 404 of a missing row, and change nothing", async () => {
      const cases: [string, string, string, unknown][] = [
        ["PATCH", `/api/data/notes/${CAROLS_NOTE}`, "/api/data/notes/999", { title: "pwned" }],
        ["DELETE", `/api/data/notes/${CAROLS_NOTE}`, "/api/data/notes/999", undefined],
        ["PATCH", `/api/data/comments/${CAROLS_COMMENT}`, "/api/data/comments/999", { body: "pwned" }],
        ["DELETE", `/api/data/tags/${BLUE}`, "/api/data/tags/999", undefined],
        ["PATCH", `/api/data/users/${ID.carol}`, "/api/data/users/999", { role: "admin" }],
        ["DELETE", `/api/data/users/${ID.carol}`, "/api/data/users/999", undefined],
        ["PATCH", `/api/data/users/${ID.root}`, "/api/data/users/999", { role: "member" }],
        ["PATCH", `/api/data/accounts/${B}`, "/api/data/accounts/999", { name: "pwned" }],
        ["DELETE", `/api/data/accounts/${B}`, "/api/data/accounts/999", undefined],
      ];
      for (const [method, theirs, missing, body] of cases) {
        const res = await refused(404, server.request(method, theirs, body, as.adam));
        expectSame(res, await server.request(method, missing, body, as.adam));
      }
      await refused(404, server.request("PATCH", `/api/data/notes/${CAROLS_NOTE}`, { title: "x" }, as.alice));
    });

    it("writes to many rows never reach B's rows", async () => {
      const wheres = [
        { id: CAROLS_NOTE },
        { id: { $in: [CAROLS_NOTE] } },
        { account_id: B },
        { title: "carol's note" },
        { author: { email: "carol@b.test" } },
        { $exists: { entity: "users", where: { email: "carol@b.test" } } },
      ];
      for (const where of wheres) {
        const update = await server.request("PATCH", "/api/data/notes", { where, update: { title: "x" } }, as.adam);
        expect(update.status, update.text).toBe(200);
        expect(update.body.data).toEqual([]);
        const del = await server.request("DELETE", "/api/data/notes", where, as.adam);
        expect(del.status, del.text).toBe(200);
        expect(del.body.data).toEqual([]);
      }
      for (const [entity, where] of [
        ["users", { email: "carol@b.test" }],
        ["users", { id: { $in: [ID.carol, ID.root] } }],
        ["accounts", { id: B }],
        ["tags", { name: { $like: "*b*" } }],
        ["comments", { note_id: CAROLS_NOTE }],
      ] as const) {
        const update = await server.request(
          "PATCH",
          `/api/data/${entity}`,
          { where, update: entity === "users" ? { role: "reader" } : entity === "tags" ? {} : { name: "x" } },
          as.adam,
        );
        if (update.status === 200)
          expect(update.body.data.every((r: Row) => r.account_id === undefined || r.account_id === A)).toBe(true);
        if (entity !== "tags") {
          const del = await server.request("DELETE", `/api/data/${entity}`, where, as.adam);
          expect(del.status, del.text).toBe(200);
          expect(del.body.data).toEqual([]);
        }
      }
      expect(await snapshot(server)).toEqual(before);
    });

    it("the scope column cannot be written on any path", async () => {
      await refused(400, server.request("POST", "/api/data/notes", { title: "x", account_id: B }, as.alice));
      await refused(400, server.request("POST", "/api/data/notes", { title: "x", account_id: A }, as.alice));
      await refused(400, server.request("POST", "/api/data/notes", { title: "x", account_id: null }, as.alice));
      await refused(
        400,
        server.request("POST", "/api/data/notes", [{ title: "ok" }, { title: "x", account_id: B }], as.adam),
      );
      await refused(400, server.request("POST", "/api/data/tags", [{ name: "t", account_id: B }], as.alice));
      await refused(400, server.request("PATCH", "/api/data/notes/1", { account_id: B }, as.alice));
      await refused(
        400,
        server.request("PATCH", "/api/data/notes", { where: { id: 1 }, update: { account_id: B } }, as.adam),
      );
      await refused(400, server.request("PATCH", `/api/data/users/${ID.bob}`, { account_id: B }, as.adam));
      await refused(
        400,
        server.request("POST", "/api/data/users", { email: "mole@a.test", account_id: B, role: "member" }, as.adam),
      );
      await refused(400, server.request("PATCH", `/api/data/accounts/${A}`, { id: B }, as.adam));
    });

    it("a reference to B's row gets the answer a missing row gets", async () => {
      const pairs: [string, string, Row, Row][] = [
        ["POST", "/api/data/comments", { body: "x", note_id: CAROLS_NOTE }, { body: "x", note_id: 999 }],
        ["PATCH", "/api/data/comments/1", { note_id: CAROLS_NOTE }, { note_id: 999 }],
        ["POST", "/api/data/notes", { title: "x", author_id: ID.carol }, { title: "x", author_id: 999 }],
        ["POST", "/api/data/notes", { title: "x", author_id: ID.root }, { title: "x", author_id: 999 }],
        ["PATCH", "/api/data/notes/1", { author_id: ID.carol }, { author_id: 999 }],
      ];
      for (const [method, path, theirs, missing] of pairs) {
        const who = path.startsWith("/api/data/comments") && method === "POST" ? as.alice : as.adam;
        const a = await server.request(method, path, theirs, who);
        expect(a.status, `${path} ${a.text}`).toBeGreaterThanOrEqual(400);
        expectSame(a, await server.request(method, path, missing, who));
        expectNoLeak(a);
        expect(await snapshot(server)).toEqual(before);
      }
      // in a create of many, in update-many
      await refused(
        409,
        server.request(
          "POST",
          "/api/data/comments",
          [
            { body: "ok", note_id: 1 },
            { body: "x", note_id: CAROLS_NOTE },
          ],
          as.alice,
        ),
      );
      await refused(
        409,
        server.request("PATCH", "/api/data/comments", { where: { id: 1 }, update: { note_id: CAROLS_NOTE } }, as.adam),
      );
    });

    it("unique values are unique per account: B's values neither collide nor leak", async () => {
      // B's tag name and note slug are free in A
      const blue = await server.request("POST", "/api/data/tags", { name: "secret-b" }, as.alice);
      expect(blue.status, blue.text).toBe(201);
      expect(blue.body.data.account_id).toBe(A);
      // A's own collision is a 409 naming no value of B's
      const taken = await server.request("POST", "/api/data/tags", { name: "secret-b" }, as.alice);
      expect(taken.status, taken.text).toBe(409);
      const moved = await server.request("PATCH", `/api/data/tags/${RED}`, { name: "secret-b" }, as.adam);
      expect(moved.status, moved.text).toBe(409);
      expectSame(taken, await server.request("POST", "/api/data/tags", { name: "secret-b" }, as.adam));
      // B still has its one tag of that name, and nothing else moved
      expect(await server.rows("select account_id from tags where name = 'secret-b' order by id")).toEqual([
        { account_id: B },
        { account_id: A },
      ]);
      await server.request("DELETE", `/api/data/tags/${blue.body.data.id}`, undefined, as.adam);
      expect(await snapshot(server)).toEqual(before);
    });
  });

  describe("the tenant entity", () => {
    it("a tenant admin cannot create accounts, whatever the slug", async () => {
      await refused(403, server.request("POST", "/api/data/accounts", { name: "evil" }, as.adam));
      // B's slug and a free one get the same answer
      const fresh = await refused(
        403,
        server.request("POST", "/api/data/accounts", { name: "x", slug: "zz" }, as.adam),
      );
      const bSlug = await refused(403, server.request("POST", "/api/data/accounts", { name: "x", slug: "b" }, as.adam));
      expectSame(bSlug, fresh);
      await refused(403, server.request("POST", "/api/data/accounts", [{ name: "e1" }, { name: "e2" }], as.adam));
      await refused(403, server.request("POST", "/api/data/accounts", { name: "evil" }, as.alice));
    });

    it("a member cannot change its account", async () => {
      await refused(403, server.request("PATCH", `/api/data/accounts/${A}`, { name: "mine" }, as.alice));
    });
  });

  describe("users and roles", () => {
    it("no grant of the superadmin role from inside an account, on any path", async () => {
      const superadmin = { role: "superadmin" };
      await refused(403, server.request("PATCH", `/api/data/users/${ID.adam}`, superadmin, as.adam));
      await refused(403, server.request("PATCH", `/api/data/users/${ID.alice}`, superadmin, as.adam));
      await refused(
        403,
        server.request("PATCH", "/api/data/users", { where: { id: { $gt: 0 } }, update: superadmin }, as.adam),
      );
      await refused(403, server.request("POST", "/api/data/users", { email: "su@a.test", ...superadmin }, as.adam));
      await refused(
        403,
        server.request(
          "POST",
          "/api/data/users",
          [
            { email: "ok@a.test", role: "member" },
            { email: "su@a.test", ...superadmin },
          ],
          as.adam,
        ),
      );
      // a member may not touch users at all, its own row included
      await refused(403, server.request("PATCH", `/api/data/users/${ID.alice}`, { role: "admin" }, as.alice));
      await refused(403, server.request("POST", "/api/data/users", { email: "x@a.test" }, as.alice));
    });

    it("a tenant admin adds users to its own account only", async () => {
      const res = await server.request("POST", "/api/data/users", { email: "new@a.test", role: "member" }, as.adam);
      expect(res.status, res.text).toBe(201);
      expect(await server.rows("select account_id from users where email = 'new@a.test'")).toEqual([{ account_id: A }]);
      // the one allowed cross-tenant signal: a taken email (§6.3)
      const taken = await server.request("POST", "/api/data/users", { email: "carol@b.test" }, as.adam);
      expect(taken.status, taken.text).toBe(409);
      expect(taken.text).not.toContain("Account B");
      await server.request("DELETE", `/api/data/users/${res.body.data.id}`, undefined, as.adam);
      expect(await snapshot(server)).toEqual(before);
    });
  });

  describe("API keys and explain", () => {
    let bKey: { id: number; key: string };
    let bSecret: { id: number; key: string };

    beforeAll(async () => {
      const reader = await server.request(
        "POST",
        "/api/system/keys",
        { name: "b-reader", kind: "publishable", role: "reader", tenant: B },
        as.root,
      );
      expect(reader.status, reader.text).toBe(201);
      bKey = reader.body.data;
      const secret = await server.request(
        "POST",
        "/api/system/keys",
        { name: "b-srv", kind: "secret", tenant: B },
        as.root,
      );
      expect(secret.status, secret.text).toBe(201);
      bSecret = secret.body.data;
      before = await snapshot(server);
    });

    it("a tenant admin neither sees nor manages B's keys", async () => {
      const list = await get("/api/system/keys", as.adam);
      expect(list.status, list.text).toBe(200);
      expect(list.body.data).toEqual([]);
      for (const id of [bKey.id, bSecret.id]) {
        const rotate = await refused(404, server.request("POST", `/api/system/keys/${id}/rotate`, {}, as.adam));
        expect(rotate.text).toBe(
          (await server.request("POST", "/api/system/keys/9999/rotate", {}, as.adam)).text.replace("9999", String(id)),
        );
        await refused(404, server.request("DELETE", `/api/system/keys/${id}`, undefined, as.adam));
        const explained = await get(`/api/system/explain?key=${id}&permission=data.entity.read&entity=notes`, as.adam);
        expect(explained.status, explained.text).toBe(404);
      }
      // a member has no key management at all
      await refused(403, server.request("GET", "/api/system/keys", undefined, as.alice));
      await refused(403, server.request("POST", "/api/system/keys", { name: "x", kind: "secret" }, as.alice));
    });

    it("a tenant admin creates keys for its own account only, never a superadmin's", async () => {
      await refused(403, server.request("POST", "/api/system/keys", { name: "x", kind: "secret", tenant: B }, as.adam));
      await refused(
        403,
        server.request("POST", "/api/system/keys", { name: "x", kind: "secret", role: "superadmin" }, as.adam),
      );
      await refused(
        403,
        server.request("POST", "/api/system/keys", { name: "x", kind: "publishable", role: "superadmin" }, as.adam),
      );
      await refused(
        400,
        server.request("POST", "/api/system/keys", { name: "x", kind: "secret", tenant: "2" }, as.adam),
      );
    });

    it("a key of one account and a user of another are refused together", async () => {
      for (const who of [as.alice, as.adam, as.root]) {
        const res = await get("/api/data/notes", { ...who, ...apikey(bKey.key) });
        expect(res.status, res.text).toBe(403);
        expectNoLeak(res);
      }
      const carol = await get("/api/data/notes", { ...as.carol, ...apikey(bKey.key) });
      expect(carol.status, carol.text).toBe(200);
      expect(carol.body.data.map((n: Row) => n.id)).toEqual([CAROLS_NOTE]);
      // a secret key of B beside A's user, on a write
      await refused(
        403,
        server.request("POST", "/api/data/notes", { title: "x" }, { ...as.adam, ...apikey(bSecret.key) }),
      );
    });

    it("a key of A, secret (guard bypassed) or not, stays inside A", async () => {
      const made = await server.request("POST", "/api/system/keys", { name: "a-srv", kind: "secret" }, as.adam);
      expect(made.status, made.text).toBe(201);
      expect(made.body.data.tenant).toBe(A);
      const key = apikey(made.body.data.key);
      try {
        before = await snapshot(server);
        const notes = await get("/api/data/notes", key);
        expect(notes.body.data.map((n: Row) => n.account_id)).toEqual([A, A]);
        expect((await get(`/api/data/notes/${CAROLS_NOTE}`, key)).status).toBe(404);
        expect((await get("/api/data/accounts", key)).body.data.map((a: Row) => a.id)).toEqual([A]);
        await refused(404, server.request("PATCH", `/api/data/notes/${CAROLS_NOTE}`, { title: "x" }, key));
        await refused(400, server.request("POST", "/api/data/notes", { title: "x", account_id: B }, key));
        await refused(403, server.request("POST", "/api/data/accounts", { name: "x" }, key));
        await refused(403, server.request("POST", "/api/data/users", { email: "su@a.test", role: "superadmin" }, key));
        await refused(403, server.request("PATCH", `/api/data/users/${ID.adam}`, { role: "superadmin" }, key));
        // its key management is A's too
        expect((await get("/api/system/keys", key)).body.data.every((k: Row) => k.tenant === A)).toBe(true);
        await refused(404, server.request("DELETE", `/api/system/keys/${bKey.id}`, undefined, key));
        await refused(403, server.request("POST", "/api/system/keys", { name: "x", kind: "secret", tenant: B }, key));
      } finally {
        await server.request("DELETE", `/api/system/keys/${made.body.data.id}`, undefined, as.root);
        before = await snapshot(server);
      }
    });

    it("B's publishable key acts inside B only", async () => {
      const res = await get("/api/data/notes", apikey(bKey.key));
      expect(res.body.data.map((n: Row) => n.id)).toEqual([CAROLS_NOTE]);
      expect((await get("/api/data/notes/1", apikey(bKey.key))).status).toBe(404);
    });

    it("explain for a tenant admin is its own account's: asking for another's is 403, not a silent answer for its own", async () => {
      const explained = (tenant: string) =>
        get(`/api/system/explain?role=member&permission=data.entity.read&entity=notes${tenant}`, as.adam);
      const other = await explained(`&tenant=${B}`);
      expect(other.status, other.text).toBe(403);
      expect(other.body.error.message).toContain("explains for that account only");
      for (const tenant of [`&tenant=${A}`, ""]) {
        const res = await explained(tenant);
        expect(res.status, res.text).toBe(200);
        expect(res.body.data.tenant).toEqual({ field: "account_id", scope: A });
      }
      expect(
        (await get("/api/system/explain?role=member&permission=data.entity.read&entity=notes", as.alice)).status,
      ).toBe(403);
    });
  });
});

/** notes with a code (unique by an explicit index) and a one-to-one link to shared slots; only notes are scoped. */
const schema = em(
  {
    notes: entity("notes", { title: text().required(), code: text(), public: boolean().default(false) }),
    comments: entity("comments", { body: text() }),
    tags: entity("tags", { name: text() }),
    slots: entity("slots", { label: text() }),
    users: entity("users", {}),
  },
  ({ notes, slots, users }) => [
    relation(notes, "author").manyToOne(users, { owner: true }),
    relation(notes, "slot").oneToOne(slots),
  ],
);

/** Accounts A and B, A's admin, two shared slots, and B's note holding code B-SECRET and slot 1. */
async function accountsSeed({ app }: { app: TestServer["app"] }): Promise<void> {
  await app.module.data.create("accounts", [{ name: "Account A" }, { name: "Account B" }]);
  await app.module.auth.createUser({ email: "adam@a.test", password: PASSWORD, role: "admin", account_id: A });
  await app.module.data.create("slots", [{ label: "s1" }, { label: "s2" }]);
  await app.module.data.create("notes", [{ title: "b", code: "B-SECRET", slot_id: 1, account_id: B }]);
}

/** The fixture's config with `auth` fields replaced. */
function withAuth(auth: Record<string, unknown>) {
  const base = tenancyConfig();
  return tenancyConfig({ auth: { ...base.auth, ...auth } });
}

describe("tenant isolation with the guard off (6.1)", () => {
  let server: TestServer;
  let as: Record<Person, Record<string, string>>;
  let before: Record<string, Row[]>;
  const refused = async (status: number, res: Promise<TestResponse>) => {
    const r = await res;
    expect(r.status, r.text).toBe(status);
    expectNoLeak(r);
    expect(await snapshot(server)).toEqual(before);
  };

  beforeAll(async () => {
    server = await startServer(withAuth({ guard: { enabled: false } }), { options: { seed, log: () => {} } });
    as = await loginAll(server);
    before = await snapshot(server);
  });
  afterAll(() => server?.close());

  it("an open guard is still one account: no rows without one, only its own with one", async () => {
    for (const entity of ["notes", "users", "accounts", "tags"]) {
      const res = await server.request("GET", `/api/data/${entity}`);
      expect(res.status, res.text).toBe(200);
      expect(res.body.data).toEqual([]);
    }
    const alice = await server.request("GET", "/api/data/notes", undefined, as.alice);
    expect(alice.body.data.map((n: Row) => n.id)).toEqual([1, 2]);
    const users = await server.request("GET", "/api/data/users", undefined, as.alice);
    expect(users.body.data.every((u: Row) => u.account_id === A)).toBe(true);
    expect((await server.request("GET", `/api/data/notes/${CAROLS_NOTE}`, undefined, as.alice)).status).toBe(404);
    const exists = await server.request(
      "POST",
      "/api/data/notes/fn/count",
      { $exists: { entity: "users", where: { email: "carol@b.test" } } },
      as.alice,
    );
    expect(exists.body.count).toBe(0);
  });

  it("an open guard writes nothing outside the account", async () => {
    await refused(403, server.request("POST", "/api/data/notes", { title: "anonymous" }));
    await refused(404, server.request("PATCH", `/api/data/notes/${CAROLS_NOTE}`, { title: "x" }, as.alice));
    await refused(404, server.request("DELETE", `/api/data/users/${ID.carol}`, undefined, as.alice));
    await refused(403, server.request("POST", "/api/data/accounts", { name: "x" }, as.alice));
    await refused(400, server.request("POST", "/api/data/notes", { title: "x", account_id: B }, as.alice));
    await refused(400, server.request("PATCH", `/api/data/users/${ID.alice}`, { account_id: B }, as.alice));
    await refused(403, server.request("PATCH", `/api/data/users/${ID.alice}`, { role: "superadmin" }, as.alice));
    await refused(409, server.request("POST", "/api/data/comments", { body: "x", note_id: CAROLS_NOTE }, as.alice));
    const many = await server.request("DELETE", "/api/data/notes", { id: { $gt: 0 }, account_id: B }, as.alice);
    expect(many.body.data).toEqual([]);
    await refused(403, server.request("POST", "/api/system/keys", { name: "x", kind: "secret" }, as.alice));
  });
});

describe("tokens, registration and server code (6.1, 6.4)", () => {
  let server: TestServer;
  let as: Record<Person, Record<string, string>>;

  beforeAll(async () => {
    server = await startServer(tenancyConfig(), { options: { seed } });
    as = await loginAll(server);
  });
  afterAll(() => server?.close());

  it("moving a user to another account revokes its tokens", async () => {
    // bob's notes stay in A: detached first, for no reference crosses tenants (6.2, test/tenancy/links.test.ts)
    const update = { author_id: null };
    const detached = await server.request(
      "PATCH",
      "/api/data/notes",
      { update, where: { author_id: ID.bob } },
      as.root,
    );
    expect(detached.status, detached.text).toBe(200);
    const moved = await server.request("PATCH", `/api/data/users/${ID.bob}`, { account_id: B }, as.root);
    expect(moved.status, moved.text).toBe(200);
    expect((await server.request("GET", "/api/data/notes", undefined, as.bob)).status).toBe(401);
    expect((await server.request("GET", "/api/auth/me", undefined, as.bob)).status).toBe(401);
    expect((await server.request("GET", "/api/data/notes", undefined, as.alice)).status).toBe(200);
    const bob = bearer(await login(server, PEOPLE.bob.email, PASSWORD));
    const notes = await server.request("GET", "/api/data/notes", undefined, bob);
    expect(notes.body.data.map((n: Row) => n.account_id)).toEqual([B]);
    // out of every account: the old token goes too
    const out = await server.request("PATCH", `/api/data/users/${ID.bob}`, { account_id: null }, as.root);
    expect(out.status, out.text).toBe(200);
    expect((await server.request("GET", "/api/data/notes", undefined, bob)).status).toBe(401);
    const none = bearer(await login(server, PEOPLE.bob.email, PASSWORD));
    expect((await server.request("GET", "/api/data/notes", undefined, none)).body.data).toEqual([]);
  });

  it("registration cannot join or name an existing account", async () => {
    const before = await snapshot(server);
    const attempts: unknown[] = [
      { account: { name: "x", id: B } },
      { account: { name: "x", account_id: B } },
      { account: { id: B } },
      { account: B },
      { account: "Account B" },
      { account: { name: "x" }, account_id: B },
      { account: { name: "x" }, role: "superadmin" },
      {},
    ];
    for (const extra of attempts) {
      const res = await server.request("POST", "/api/auth/password/register", {
        email: "mole@b.test",
        password: PASSWORD,
        ...(extra as Row),
      });
      expect(res.status, `${JSON.stringify(extra)} ${res.text}`).toBe(400);
      expect(await snapshot(server)).toEqual(before);
    }
    const ok = await server.request("POST", "/api/auth/password/register", {
      email: "dora@d.test",
      password: PASSWORD,
      account: { name: "Account B" },
    });
    expect(ok.status, ok.text).toBe(201);
    expect(ok.body.user.account_id).not.toBe(B);
    const notes = await server.request("GET", "/api/data/notes", undefined, bearer(ok.body.token));
    expect(notes.body.data).toEqual([]);
    const accounts = await server.request("GET", "/api/data/accounts", undefined, bearer(ok.body.token));
    expect(accounts.body.data.map((a: Row) => a.id)).toEqual([ok.body.user.account_id]);
  });

  it("rows server code writes without an account are nobody's but the superadmin's", async () => {
    const [row] = (await server.app.module.data.create("notes", [{ title: "orphan", public: true }])) as Row[];
    for (const who of [as.alice, as.carol, {}]) {
      expect((await server.request("GET", `/api/data/notes/${row!.id}`, undefined, who)).status).toBe(404);
      const count = await server.request("POST", "/api/data/notes/fn/count", { title: "orphan" }, who);
      expect(count.body.count ?? 0).toBe(0);
    }
    expect((await server.request("GET", `/api/data/notes/${row!.id}`, undefined, as.root)).status).toBe(200);
  });

  it("registration is refused when accounts come from admins", async () => {
    const closed = await startServer(
      tenancyConfig({ tenancy: { enabled: true, register: "closed", superadmin_role: "superadmin" } }),
      { options: { seed } },
    );
    try {
      const before = await snapshot(closed);
      const res = await closed.request("POST", "/api/auth/password/register", {
        email: "z@z.test",
        password: PASSWORD,
        account: { name: "z" },
      });
      expect(res.status, res.text).toBe(403);
      expect(await snapshot(closed)).toEqual(before);
    } finally {
      await closed.close();
    }
  });
});

describe("unique per account, explicit indexes too (6.3)", () => {
  it("a unique index from config.data.indices collides within the account only", async () => {
    const base = tenancyConfig();
    const server = await startServer(
      tenancyConfig({
        data: { ...schema.toJSON(), indices: { notes_code: { entity: "notes", fields: ["code"], unique: true } } },
        tenancy: { ...base.tenancy!, entities: ["notes"] },
      }),
      { options: { seed: accountsSeed } },
    );
    try {
      const adam = bearer(await login(server, "adam@a.test", PASSWORD));
      const free = await server.request("POST", "/api/data/notes", { title: "y", code: "B-SECRET" }, adam);
      expect(free.status, free.text).toBe(201);
      expect(free.body.data.account_id).toBe(A);
      const before = await snapshot(server, ["notes", "slots"]);
      const taken = await server.request("POST", "/api/data/notes", { title: "z", code: "B-SECRET" }, adam);
      expect(taken.status, taken.text).toBe(409);
      expect(await snapshot(server, ["notes", "slots"])).toEqual(before);
    } finally {
      await server.close();
    }
  });
});

/** The JWKS test's identity provider (test/auth/jwks.test.ts), signing `account_id` claims. */
describe("external tokens: the account claim (6.1)", () => {
  const ISSUER = "https://idp.example.test";
  const AUDIENCE = "citadel-app";
  let idp: Server;
  let privateKey: CryptoKey;
  let server: TestServer;
  const external = (claims: Record<string, unknown>) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid: "k1" })
      .setSubject("idp|42")
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime("10m")
      .sign(privateKey);

  beforeAll(async () => {
    let publicKey: CryptoKey;
    ({ privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true }));
    const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    idp = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => idp.listen(0, "127.0.0.1", resolve));
    const { port } = idp.address() as AddressInfo;
    const base = tenancyConfig();
    const jwks = { url: `http://127.0.0.1:${port}/jwks.json`, issuer: ISSUER, audience: AUDIENCE };
    server = await startServer(withAuth({ jwt: { ...base.auth!.jwt, jwks } }), { options: { seed } });
  });
  afterAll(async () => {
    await server?.close();
    await new Promise((resolve) => idp?.close(resolve));
  });

  it("only a positive integer account claim binds; anything else is no account", async () => {
    const notes = async (claims: Record<string, unknown>) => {
      const res = await server.request("GET", "/api/data/notes", undefined, bearer(await external(claims)));
      expect(res.status, res.text).toBe(200);
      return res.body.data.map((n: Row) => n.account_id);
    };
    expect(await notes({ role: "reader", account_id: A })).toEqual([A, A]);
    for (const account_id of [String(B), B + 0.5, 0, -B, [B], { id: B }, null, true])
      expect(await notes({ role: "reader", account_id }), JSON.stringify(account_id)).toEqual([]);
    expect(await notes({ role: "reader" })).toEqual([]);
  });

  it("an external user of one account cannot write into another", async () => {
    const before = await snapshot(server);
    const token = bearer(await external({ role: "member", account_id: A, id: ID.carol }));
    for (const [method, path, body, status] of [
      ["PATCH", `/api/data/notes/${CAROLS_NOTE}`, { title: "x" }, 404],
      ["POST", "/api/data/notes", { title: "x", account_id: B }, 400],
      ["POST", "/api/data/comments", { body: "x", note_id: CAROLS_NOTE }, 409],
    ] as const) {
      const res = await server.request(method, path, body, token);
      expect(res.status, res.text).toBe(status);
    }
    expect(await snapshot(server)).toEqual(before);
  });
});

describe("holes the review found, closed (6.1, 6.2, 6.3)", () => {
  it("a key acting as the superadmin role stays inside its account, and a tenant admin cannot make one", async () => {
    const server = await startServer(withAuth({ api_keys: { enabled: true, secret_role: "superadmin" } }), {
      options: { seed },
    });
    try {
      const as = await loginAll(server);
      const before = await snapshot(server);
      const minted = await server.request("POST", "/api/system/keys", { name: "a-srv", kind: "secret" }, as.adam);
      expect(minted.status, minted.text).toBe(403);
      expect(await snapshot(server)).toEqual(before);
      // root may make one for account B: it acts as superadmin inside B only
      const made = await server.request("POST", "/api/system/keys", { name: "b", kind: "secret", tenant: B }, as.root);
      expect(made.status, made.text).toBe(201);
      const key = apikey(made.body.data.key);
      const notes = await server.request("GET", "/api/data/notes", undefined, key);
      expect(notes.body.data.map((n: Row) => n.account_id)).toEqual([B]);
      const account = await server.request("POST", "/api/data/accounts", { name: "evil" }, key);
      expect(account.status, account.text).toBe(403);
      expect(await server.rows("select count(*) as n from accounts")).toEqual([{ n: 2 }]);
    } finally {
      await server.close();
    }
  });

  it("an account's unique values are a superadmin's to write: no 409 tells one account about another", async () => {
    const server = await startServer(tenancyConfig(), { options: { seed } });
    try {
      const as = await loginAll(server);
      const before = await snapshot(server);
      for (const slug of ["b", "fresh"]) {
        const patched = await server.request("PATCH", `/api/data/accounts/${A}`, { slug }, as.adam);
        expect(patched.status, patched.text).toBe(403);
        const registered = await server.request("POST", "/api/auth/password/register", {
          email: `r-${slug}@x.test`,
          password: PASSWORD,
          account: { name: "x", slug },
        });
        expect(registered.status, registered.text).toBe(400);
        expect(await snapshot(server)).toEqual(before);
      }
      // the rest of its account stays the tenant admin's to edit
      const renamed = await server.request("PATCH", `/api/data/accounts/${A}`, { name: "A, renamed" }, as.adam);
      expect(renamed.status, renamed.text).toBe(200);
      const byRoot = await server.request("PATCH", `/api/data/accounts/${A}`, { slug: "a2" }, as.root);
      expect(byRoot.status, byRoot.text).toBe(200);
    } finally {
      await server.close();
    }
  });

  it("a one-to-one from a scoped entity is unique per account", async () => {
    const config = tenancyConfig({ data: schema.toJSON() });
    const server = await startServer(
      { ...config, tenancy: { ...config.tenancy, entities: ["notes"] } },
      {
        options: { seed: accountsSeed },
      },
    );
    try {
      const adam = bearer(await login(server, "adam@a.test", PASSWORD));
      // B's note holds slot 1: A linking it answers as linking the free slot 2 does
      for (const slot of [1, 2]) {
        const res = await server.request("POST", "/api/data/notes", { title: "x", slot_id: slot }, adam);
        expect(res.status, res.text).toBe(201);
      }
    } finally {
      await server.close();
    }
  });

  it("deleting an account that still has rows is a 409, not a 500", async () => {
    const logged: string[] = [];
    const server = await startServer(tenancyConfig(), { options: { seed, log: (m) => logged.push(m) } });
    try {
      const as = await loginAll(server);
      const before = await snapshot(server);
      for (const [who, id] of [
        [as.adam, A],
        [as.root, B],
      ] as const) {
        const res = await server.request("DELETE", `/api/data/accounts/${id}`, undefined, who);
        expect(res.status, res.text).toBe(409);
        expect(await snapshot(server)).toEqual(before);
      }
      expect(logged.filter((m) => m.includes("unexpected"))).toEqual([]);
    } finally {
      await server.close();
    }
  });
});
