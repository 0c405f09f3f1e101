/**
 * §13 `examples/rls`: basefyio's "Security & Row-Level Security" page walked statement by statement over HTTP, as
 * anonymous, as users A and B, with a publishable (anon) key and a secret (service) key, with the attacks the page
 * implies; every refused write is checked against the database itself (§4.5, 4.6, 4.10, 4.14, 5.1, 5.4, 5.5).
 *
 * Not expressible, or not Citadel's to express (see also examples/rls/config.ts):
 * - "SET LOCAL ROLE inside a transaction", "ALTER TABLE … ENABLE / FORCE ROW LEVEL SECURITY": Citadel's guard is
 *   not the database's; it filters every query Citadel itself sends (so there is nothing to enable per table, and
 *   it is on whenever roles are configured, §1.9), but a client connected to the database directly is not guarded.
 * - RLS answers a command no policy grants with an empty result ("0 rows"); Citadel answers 403 naming the
 *   permission and entity (§4.9), still without any data.
 * - "Data Engine Security": `_projectId` tenant isolation is §6, which has not landed (a key's `tenant` is 400).
 * - "Audit Logging": the audit trail and outbox are §7 and §8, which have not landed.
 * - HTTPS via Traefik, "avoid storing secrets in the database": deployment advice, nothing to test here.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import rls from "../../examples/rls/config.js";
import { bearer } from "../helpers/auth.js";
import {
  type Booted,
  boot,
  dbRows,
  expectForbidden,
  expectNotFound,
  idsOf,
  insert,
  principals,
  q,
  refusedWithout,
  sorted,
} from "./helpers.js";

type Ids = Record<"profileA" | "profileB" | "pubA" | "draftA" | "pubB" | "draftB", number>;

const READ = "data.entity.read";
const CREATE = "data.entity.create";
const UPDATE = "data.entity.update";
const DELETE = "data.entity.delete";

describe("examples/rls: basefyio's RLS page as Citadel policies (§13)", () => {
  let b: Booted<Ids>;
  let keys: { pk: string; sk: string };
  /** who → headers: no credentials, a user's token, the anon key, the anon key with a token, the service key */
  const who: Record<string, () => Record<string, string>> = {
    anon: () => ({}),
    a: () => bearer(b.tokens.a),
    b: () => bearer(b.tokens.b),
    pk: () => ({ apikey: keys.pk }),
    "pk + a": () => ({ apikey: keys.pk, ...bearer(b.tokens.a) }),
    sk: () => ({ apikey: keys.sk }),
  };
  const { as, ok } = principals(() => b.server, who);
  /** Everything the database holds, to prove a refused write wrote nothing. */
  const database = async () => ({
    profiles: await dbRows(b.server, "SELECT id, user_id, username, bio FROM profiles ORDER BY id"),
    posts: await dbRows(b.server, "SELECT id, author_id, title, content, published FROM posts ORDER BY id"),
  });
  /** `attempt` is refused as `check` says and the database is as it was. */
  const refused = refusedWithout(database);

  beforeAll(async () => {
    b = await boot(rls, {
      users: { a: "authenticated", b: "authenticated" },
      rows: async (ctx, ids) => {
        const [profileA, profileB] = await insert(ctx, "profiles", [
          { username: "alice", bio: "A's private bio", user_id: ids.a },
          { username: "bob", bio: "B's private bio", user_id: ids.b },
        ]);
        const [pubA, draftA, pubB, draftB] = await insert(ctx, "posts", [
          { title: "A public", published: true, author_id: ids.a },
          { title: "A draft", published: false, author_id: ids.a },
          { title: "B public", published: true, author_id: ids.b },
          { title: "B secret draft", published: false, author_id: ids.b },
        ]);
        return {
          profileA: profileA!.id,
          profileB: profileB!.id,
          pubA: pubA!.id,
          draftA: draftA!.id,
          pubB: pubB!.id,
          draftB: draftB!.id,
        };
      },
    });
    const apiKeys = b.server.app.module.auth.apiKeys!;
    keys = {
      pk: (await apiKeys.create({ name: "anon key", kind: "publishable" })).key,
      sk: (await apiKeys.create({ name: "service key", kind: "secret" })).key,
    };
  });
  afterAll(async () => {
    await b?.server.close();
  });

  describe("Authentication flow and API keys (§5.1)", () => {
    it('"Anonymous access (anon key, no JWT) → database role: anon": the publishable key reads what no credentials read', async () => {
      for (const name of ["anon", "pk"]) {
        const res = await ok(name, "GET", "/api/data/posts");
        expect({ name, ids: idsOf(res) }).toEqual({ name, ids: sorted([b.rows.pubA, b.rows.pubB]) });
        expect(res.body.meta).toMatchObject({ count: 2, total: 2 });
        expectForbidden(await as(name, "GET", "/api/data/profiles"), READ, "profiles");
      }
    });

    it('"Authenticated access (anon key + JWT Bearer) → database role: authenticated": the user\'s role applies', async () => {
      const res = await ok("pk + a", "GET", "/api/data/profiles");
      expect(idsOf(res)).toEqual([b.rows.profileA]);
    });

    it('"Server → Service Key → service_role (bypasses RLS)": the secret key reads every profile and every post', async () => {
      const profiles = await ok("sk", "GET", "/api/data/profiles");
      expect(idsOf(profiles)).toEqual(sorted([b.rows.profileA, b.rows.profileB]));
      const drafts = await ok("sk", "GET", `/api/data/posts?where=${q({ published: false })}`);
      expect(idsOf(drafts)).toEqual(sorted([b.rows.draftA, b.rows.draftB]));
    });

    it('"Never expose your service key in … browser DevTools": a secret key sent by a page is the one 401 (5.4)', async () => {
      const res = await b.server.request("GET", "/api/data/profiles", undefined, {
        ...who.sk!(),
        origin: "https://app.example.com",
      });
      expect(res.status, res.text).toBe(401);
      expect(res.body).toEqual({ error: { code: "unauthorized", message: "invalid or missing API key" } });
      expect(res.text).not.toContain("private bio");
    });

    it('"Anon Key | Client-side | RLS Enforced": the publishable key cannot create profiles or posts (4.14)', async () => {
      for (const [entity, body] of [
        ["profiles", { username: "mallory" }],
        ["posts", { title: "spam", published: true }],
      ] as const)
        await refused(
          () => as("pk", "POST", `/api/data/${entity}`, body),
          (res) => expectForbidden(res, CREATE, entity),
        );
    });

    it('"Without RLS, the anon role can read everything": the guard is on, anon reads neither users nor profiles (1.9)', async () => {
      expectForbidden(await as("anon", "GET", "/api/data/users"), READ, "users");
      expectForbidden(await as("anon", "GET", `/api/data/profiles/${b.rows.profileA}`), READ, "profiles");
      expectForbidden(await as("anon", "GET", "/api/data/profiles/count"), READ, "profiles");
    });
  });

  describe('"Users read own data" ON profiles FOR SELECT TO authenticated USING (user_id = auth.uid())', () => {
    it("each user lists only their own profile, and the totals count only it (4.5)", async () => {
      for (const [name, own] of [
        ["a", b.rows.profileA],
        ["b", b.rows.profileB],
      ] as const) {
        const res = await ok(name, "GET", "/api/data/profiles");
        expect({ name, ids: idsOf(res), meta: res.body.meta }).toMatchObject({
          name,
          ids: [own],
          meta: { count: 1, total: 1 },
        });
      }
    });

    it("B reading A's profile by id is 404, byte-identical to a profile that does not exist (4.5, 4.10)", async () => {
      const hidden = await as("b", "GET", `/api/data/profiles/${b.rows.profileA}`);
      const missing = await as("b", "GET", "/api/data/profiles/999999");
      expectNotFound(hidden);
      expect(hidden.text).toBe(missing.text);
    });

    it("B's where, count, exists and query never reveal A's profile (4.3a, 4.5)", async () => {
      // each where, and what B may see of it: B's own profile at most
      const wheres: [where: unknown, visible: number[]][] = [
        [{ user_id: b.ids.a }, []],
        [{ username: "alice" }, []],
        [{ $or: [{ user_id: b.ids.a }, { id: { $gt: 0 } }] }, [b.rows.profileB]],
        [{ $not: { user_id: b.ids.b } }, []],
        [{ bio: { $like: "A's*" } }, []],
      ];
      for (const [where, widest] of wheres) {
        const list = await ok("b", "GET", `/api/data/profiles?where=${q(where)}`);
        expect({ where, ids: idsOf(list), total: list.body.meta.total }).toEqual({ where, ids: widest, total: 1 });
        const count = await ok("b", "GET", `/api/data/profiles/count?where=${q(where)}`);
        expect({ where, count: count.body.data.count }).toEqual({ where, count: widest.length });
        const exists = await ok("b", "POST", "/api/data/entity/profiles/fn/exists", where);
        expect({ where, exists: exists.body.exists }).toEqual({ where, exists: widest.length > 0 });
        const query = await ok("b", "POST", "/api/data/profiles/query", { where });
        expect({ where, ids: idsOf(query) }).toEqual({ where, ids: widest });
        expect(list.text + query.text).not.toContain("A's private bio");
      }
    });

    it("with and relation paths never reach A's profile: users are unreadable, and an $exists hop is read as B (4.5, 4.13)", async () => {
      const own = await ok("b", "GET", `/api/data/profiles/${b.rows.profileB}?with=user`);
      expect(own.body.data).not.toHaveProperty("user");
      expect(own.text).not.toContain("@test.com");
      // a published post exists; the question "is there a profile of A?" must read as "no" for B
      const probe = { $exists: { entity: "profiles", where: { user_id: b.ids.a } } };
      const res = await ok("b", "GET", `/api/data/posts?where=${q(probe)}`);
      expect(idsOf(res)).toEqual([]);
      const own2 = await ok(
        "b",
        "GET",
        `/api/data/posts?where=${q({ $exists: { entity: "profiles", where: { user_id: b.ids.b } } })}`,
      );
      expect(idsOf(own2)).toEqual(sorted([b.rows.pubA, b.rows.pubB]));
    });
  });

  describe('"Users insert own profile" ON profiles FOR INSERT TO authenticated WITH CHECK (user_id = auth.uid())', () => {
    it("A creates a profile; the server sets user_id to A when the body leaves it out (4.14)", async () => {
      const res = await ok("a", "POST", "/api/data/profiles", { username: "alice-2" });
      expect(res.status).toBe(201);
      const [row] = await dbRows(b.server, "SELECT user_id FROM profiles WHERE id = ?", res.body.data.id);
      expect(row).toEqual({ user_id: b.ids.a });
      const named = await ok("a", "POST", "/api/data/profiles", { username: "alice-3", user_id: b.ids.a });
      expect(named.body.data).toMatchObject({ username: "alice-3", user_id: b.ids.a });
    });

    it("A creating a profile for B is 403 and writes nothing, alone or inside a batch (4.6, 4.14)", async () => {
      await refused(
        () => as("a", "POST", "/api/data/profiles", { username: "bob-by-alice", user_id: b.ids.b }),
        (res) => expectForbidden(res, CREATE, "profiles"),
      );
      await refused(
        () =>
          as("a", "POST", "/api/data/profiles", [{ username: "fine" }, { username: "bob-by-alice", user_id: b.ids.b }]),
        (res) => expectForbidden(res, CREATE, "profiles"),
      );
    });

    it("anonymous creating a profile is 403 and writes nothing, with or without a user_id (4.14)", async () => {
      for (const body of [{ username: "ghost" }, { username: "ghost", user_id: b.ids.a }])
        await refused(
          () => as("anon", "POST", "/api/data/profiles", body),
          (res) => expectForbidden(res, CREATE, "profiles"),
        );
    });
  });

  describe('"Users update own data" ON profiles FOR UPDATE TO authenticated USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid())', () => {
    it("USING: A updates own profile", async () => {
      const res = await ok("a", "PATCH", `/api/data/profiles/${b.rows.profileA}`, { bio: "A's new private bio" });
      expect(res.body.data).toMatchObject({ id: b.rows.profileA, bio: "A's new private bio" });
    });

    it("USING: B updating A's profile is 404 (B cannot read it) and writes nothing (4.5, 4.10)", async () => {
      await refused(
        () => as("b", "PATCH", `/api/data/profiles/${b.rows.profileA}`, { bio: "hijacked" }),
        (res) => {
          expectNotFound(res);
          expect(res.text).not.toContain("alice");
        },
      );
    });

    it("USING: B's update many with a where matching everything reaches only B's profile (4.5)", async () => {
      const res = await ok("b", "PATCH", "/api/data/profiles", { update: { bio: "bulk" }, where: { id: { $gt: 0 } } });
      expect(idsOf(res)).toEqual([b.rows.profileB]);
      const bios = await dbRows(b.server, "SELECT id FROM profiles WHERE bio = ? ORDER BY id", "bulk");
      expect(bios).toEqual([{ id: b.rows.profileB }]);
    });

    it("WITH CHECK: A moving own profile to B (user_id = B) is 403 and writes nothing, one row or many (4.6)", async () => {
      await refused(
        () => as("a", "PATCH", `/api/data/profiles/${b.rows.profileA}`, { user_id: b.ids.b }),
        (res) => expectForbidden(res, UPDATE, "profiles"),
      );
      await refused(
        () => as("a", "PATCH", "/api/data/profiles", { update: { user_id: b.ids.b }, where: { id: { $gt: 0 } } }),
        (res) => expectForbidden(res, UPDATE, "profiles"),
      );
    });

    it("no DELETE policy on profiles: A cannot delete even own profile (RLS: 0 rows; Citadel: 403)", async () => {
      await refused(
        () => as("a", "DELETE", `/api/data/profiles/${b.rows.profileA}`),
        (res) => expectForbidden(res, DELETE, "profiles"),
      );
    });
  });

  describe('"Public posts readable" ON posts FOR SELECT TO anon, authenticated USING (published = true)', () => {
    it("anonymous, the anon key and both users see exactly the published posts", async () => {
      for (const name of ["anon", "pk", "a", "b", "pk + a"]) {
        const res = await ok(name, "GET", "/api/data/posts");
        expect({ name, ids: idsOf(res) }).toEqual({ name, ids: sorted([b.rows.pubA, b.rows.pubB]) });
        expect(res.text).not.toContain("draft");
      }
    });

    it("a draft is 404 for everyone but the service key, its own author included, as under the page's policies (4.5)", async () => {
      for (const [name, draft] of [
        ["anon", b.rows.draftA],
        ["b", b.rows.draftA],
        ["a", b.rows.draftA],
        ["pk", b.rows.draftB],
      ] as const) {
        const hidden = await as(name, "GET", `/api/data/posts/${draft}`);
        expectNotFound(hidden);
        expect(hidden.text).toBe((await as(name, "GET", "/api/data/posts/999999")).text);
      }
      expect((await ok("sk", "GET", `/api/data/posts/${b.rows.draftB}`)).body.data.title).toBe("B secret draft");
    });

    it("a where on drafts, count and exists stay inside published = true (4.3a)", async () => {
      const where = { $or: [{ published: false }, { title: "B secret draft" }] };
      for (const name of ["anon", "a"]) {
        expect(idsOf(await ok(name, "GET", `/api/data/posts?where=${q(where)}`))).toEqual([]);
        expect((await ok(name, "GET", `/api/data/posts/count?where=${q(where)}`)).body.data).toEqual({ count: 0 });
        expect((await ok(name, "POST", "/api/data/entity/posts/fn/exists", where)).body.exists).toBe(false);
      }
    });
  });

  describe('"Authors edit own posts" ON posts FOR UPDATE TO authenticated USING (author_id = auth.uid())', () => {
    it("A updates own published post", async () => {
      const res = await ok("a", "PATCH", `/api/data/posts/${b.rows.pubA}`, { content: "edited by A" });
      expect(res.body.data).toMatchObject({ id: b.rows.pubA, content: "edited by A" });
    });

    it("B updating A's post is 403 (readable, outside B's update filter) and writes nothing (4.5, 4.16)", async () => {
      await refused(
        () => as("b", "PATCH", `/api/data/posts/${b.rows.pubA}`, { title: "hijacked" }),
        (res) => expectForbidden(res, UPDATE, "posts"),
      );
    });

    it("USING without WITH CHECK is also the check (as in PostgreSQL): A cannot move a post to B (4.6, 4.14)", async () => {
      await refused(
        () => as("a", "PATCH", `/api/data/posts/${b.rows.pubA}`, { author_id: b.ids.b }),
        (res) => expectForbidden(res, UPDATE, "posts"),
      );
      await refused(
        () => as("a", "PATCH", "/api/data/posts", { update: { author_id: b.ids.b }, where: { id: { $gt: 0 } } }),
        (res) => expectForbidden(res, UPDATE, "posts"),
      );
    });

    it("A's own draft is 404 to A's update: the page's SELECT policy hides it (PostgreSQL: 0 rows updated)", async () => {
      await refused(() => as("a", "PATCH", `/api/data/posts/${b.rows.draftA}`, { published: true }), expectNotFound);
    });

    it("anonymous and the anon key cannot update a post (403, nothing written)", async () => {
      for (const name of ["anon", "pk"])
        await refused(
          () => as(name, "PATCH", `/api/data/posts/${b.rows.pubA}`, { title: "x" }),
          (res) => expectForbidden(res, UPDATE, "posts"),
        );
    });
  });

  describe("beyond the page's SQL (its heading: authors insert and delete their own posts)", () => {
    it("A creates a post, owned by A; creating one for B is 403; anonymous creating one is 403 (4.6, 4.14)", async () => {
      const res = await ok("a", "POST", "/api/data/posts", { title: "A new", published: true });
      const [row] = await dbRows(b.server, "SELECT author_id FROM posts WHERE id = ?", res.body.data.id);
      expect(row).toEqual({ author_id: b.ids.a });
      await refused(
        () => as("a", "POST", "/api/data/posts", { title: "B's, by A", published: true, author_id: b.ids.b }),
        (r) => expectForbidden(r, CREATE, "posts"),
      );
      await refused(
        () => as("anon", "POST", "/api/data/posts", { title: "anonymous" }),
        (r) => expectForbidden(r, CREATE, "posts"),
      );
    });

    it("B deleting A's post is 403 and deletes nothing; A deletes own post (4.5)", async () => {
      const [own] = (await b.server.app.module.data.create("posts", [
        { title: "A to delete", published: true, author_id: b.ids.a },
      ])) as { id: number }[];
      await refused(
        () => as("b", "DELETE", `/api/data/posts/${own!.id}`),
        (res) => expectForbidden(res, DELETE, "posts"),
      );
      await ok("a", "DELETE", `/api/data/posts/${own!.id}`);
      expect(await dbRows(b.server, "SELECT id FROM posts WHERE id = ?", own!.id)).toEqual([]);
    });
  });

  describe('"service_role — Server-side admin (bypasses all RLS)": the secret key (5.1, 4.14)', () => {
    it("creates a profile for any user, updates and moves others' rows, deletes a profile", async () => {
      const created = await ok("sk", "POST", "/api/data/profiles", { username: "bob-2", user_id: b.ids.b });
      expect(created.body.data).toMatchObject({ username: "bob-2", user_id: b.ids.b });
      await ok("sk", "PATCH", `/api/data/profiles/${b.rows.profileB}`, { bio: "set by the service" });
      await ok("sk", "PATCH", `/api/data/posts/${b.rows.draftB}`, { author_id: b.ids.a });
      await ok("sk", "DELETE", `/api/data/profiles/${created.body.data.id}`);
      expect(await database()).toMatchObject({
        profiles: expect.arrayContaining([expect.objectContaining({ id: b.rows.profileB, bio: "set by the service" })]),
        posts: expect.arrayContaining([expect.objectContaining({ id: b.rows.draftB, author_id: b.ids.a })]),
      });
      expect(await dbRows(b.server, "SELECT id FROM profiles WHERE id = ?", created.body.data.id)).toEqual([]);
    });

    it('"Rotate compromised keys": after a rotation without grace the old service key is the one 401 (5.5)', async () => {
      const apiKeys = b.server.app.module.auth.apiKeys!;
      const leaked = await apiKeys.create({ name: "leaked service key", kind: "secret" });
      const fresh = await apiKeys.rotate(leaked.id, { grace_seconds: 0 });
      const old = await b.server.request("GET", "/api/data/profiles", undefined, { apikey: leaked.key });
      expect(old.status, old.text).toBe(401);
      const now = await b.server.request("GET", "/api/data/profiles", undefined, { apikey: fresh.key });
      expect(now.status, now.text).toBe(200);
    });
  });
});
