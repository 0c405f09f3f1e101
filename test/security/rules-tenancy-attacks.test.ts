/**
 * Red-team pass over rule expressions and field rules (§9) where they meet tenant isolation (§6), API keys (§5),
 * the auth routes' user object and the change feed (§8), over HTTP against a real server on the engine under
 * test. `rules-attacks.test.ts` covers a single-tenant app; this file covers what tenancy and keys add:
 * `context.account_id`, `@is_superadmin()`, `exists(…)` into a scoped entity, key-only principals (no user:
 * `user.*` is unknown) and keys with and without a tenant. Each test is named after the rule it protects.
 *
 * The app: accounts A and B; `docs` (owned by their author) and `flags`, both scoped. Members of an account read
 * a doc that is public, theirs, or whose `code` names a flag (`exists(flags, name == outer.code)`), update theirs
 * or any doc while a flag `open-edit` exists, and read a doc's `secret` where they own it or a flag `reveal`
 * exists; a user's `bio` is readable only while a flag `reveal` exists. Every `exists(flags, …)` must look at
 * the caller's own account's flags only: a flag in account B must never open a row or a field of account A.
 */
import { boolean, type CitadelConfig, em, entity, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer } from "../helpers/auth.js";
import { type Row, startServer, type TestServer } from "../helpers/server.js";
import { openFeed } from "../helpers/sse.js";

const A = 1;
const B = 2;
const PASSWORD = "rules-tenancy-password";

const schema = em(
  {
    docs: entity(
      "docs",
      { title: text().required(), code: text(), public: boolean().default(false), secret: text(), note: text() },
      {
        field_rules: {
          secret: { read: "@owns_record() or exists(flags, name == 'reveal')" },
          // a field rule naming the tenant column: the caller's own account's rows only
          note: { read: "account_id == context.account_id" },
        },
      },
    ),
    flags: entity("flags", { name: text().required() }),
    users: entity("users", { bio: text() }, { field_rules: { bio: { read: "exists(flags, name == 'reveal')" } } }),
  },
  ({ docs, users }) => [relation(docs, "author").manyToOne(users, { owner: true })],
);

const READ = "data.entity.read";
const onDocs = { entity: "docs" };

function config(): CitadelConfig {
  return {
    data: schema.toJSON(),
    feed: { poll_ms: 50 },
    auth: {
      enabled: true,
      jwt: { secret: "rules-tenancy-secret-0123456789-abcdefghijkl" },
      password: { argon2: { memory_cost: 1024, time_cost: 1, parallelism: 1 } },
      rate_limit: { max_per_email: 10_000, max_per_address: 10_000 },
      api_keys: { enabled: true, publishable_role: "keyrole" },
      roles: {
        member: {
          permissions: [
            {
              permission: READ,
              policies: [
                {
                  condition: onDocs,
                  effect: "allow",
                  rule: "public == true or @owns_record() or exists(flags, name == outer.code)",
                },
                { condition: { entity: "flags" }, effect: "allow" },
                { condition: { entity: "users" }, effect: "allow", rule: "id == user.id" },
              ],
            },
            {
              permission: "data.entity.create",
              policies: [{ condition: { entity: { $in: ["docs", "flags"] } }, effect: "allow" }],
            },
            {
              permission: "data.entity.update",
              policies: [
                { condition: onDocs, effect: "filter", rule: "@owns_record() or exists(flags, name == 'open-edit')" },
              ],
            },
          ],
        },
        // what keys act as: the key's account's docs, by rule
        keyrole: {
          permissions: [
            {
              permission: READ,
              policies: [{ condition: onDocs, effect: "filter", rule: "account_id == context.account_id" }],
            },
          ],
        },
        // a role that only a user can satisfy: its rules name the caller's user
        ownerrole: {
          permissions: [
            { permission: READ, policies: [{ condition: onDocs, effect: "filter", rule: "@owns_record()" }] },
            {
              permission: READ,
              effect: "deny",
              policies: [{ condition: onDocs, rule: "not (author_id == user.id)" }],
            },
            {
              permission: "data.entity.update",
              policies: [{ condition: onDocs, effect: "filter", rule: "@owns_record()" }],
            },
          ],
        },
        superadmin: { implicit_allow: true },
      },
    },
    tenancy: { enabled: true, register: "closed", superadmin_role: "superadmin" },
  };
}

/** Ids as the seed makes them. */
const ids: Record<string, number> = {};

async function seed({ app }: { app: TestServer["app"] }) {
  const [a, b] = (await app.module.data.create("accounts", [
    { name: "Account A", slug: "a" },
    { name: "Account B", slug: "b" },
  ])) as Row[];
  expect([a!.id, b!.id]).toEqual([A, B]);
  const people = { alice: A, bob: A, carol: B, root: undefined } as const;
  for (const [name, account] of Object.entries(people)) {
    const user = await app.module.auth.createUser({
      email: `${name}@test.com`,
      password: PASSWORD,
      role: name === "root" ? "superadmin" : "member",
      ...(account ? { account_id: account } : {}),
      ...(name === "alice" ? { bio: "alice-bio-hidden" } : {}),
    });
    ids[name] = user.id as number;
  }
  const docs = (await app.module.data.create("docs", [
    // bob's public doc: alice reads it, but not its secret
    { title: "a-public", public: true, secret: "bob-secret", note: "a-note", author_id: ids.bob, account_id: A },
    // bob's private doc whose code names a flag A does not have
    { title: "a-flagged", code: "probe", secret: "s2", author_id: ids.bob, account_id: A },
    { title: "b-public", public: true, secret: "carol-secret", note: "b-note", author_id: ids.carol, account_id: B },
  ])) as Row[];
  for (const d of docs) ids[d.title as string] = d.id as number;
}

describe("rules under tenancy and API keys (5, 6, 8, 9)", () => {
  let server: TestServer;
  const as: Record<string, Record<string, string>> = {};
  const keys: Record<string, string> = {};

  const titles = async (headers: Record<string, string>, path = "/api/data/docs") => {
    const res = await server.request("GET", path, undefined, headers);
    expect(res.status, res.text).toBe(200);
    return (res.body.data as Row[]).map((r) => r.title as string).sort();
  };

  beforeAll(async () => {
    server = await startServer(config(), { options: { seed } });
    for (const who of ["alice", "bob", "carol", "root"]) {
      const res = await server.request("POST", "/api/auth/password/login", {
        email: `${who}@test.com`,
        password: PASSWORD,
      });
      expect(res.status, res.text).toBe(200);
      as[who] = bearer(res.body.token);
      // the login's user object already hides what a rule hides (checked below for alice)
      if (who === "alice") as.aliceLogin = res.body.user;
    }
    const key = async (name: string, body: Row) => {
      const res = await server.request("POST", "/api/system/keys", { name, ...body }, as.root);
      expect(res.status, res.text).toBe(201);
      keys[name] = res.body.data.key;
    };
    await key("pkA", { kind: "publishable", role: "keyrole", tenant: A });
    await key("pkNone", { kind: "publishable", role: "keyrole" });
    await key("skRole", { kind: "secret", role: "keyrole" });
    await key("pkOwner", { kind: "publishable", role: "ownerrole", tenant: A });
    await key("skOwner", { kind: "secret", role: "ownerrole", tenant: A });
    await key("pkSuper", { kind: "publishable", role: "superadmin", tenant: A });
    // account B's flags, made by B's own member: they must open nothing in account A
    for (const name of ["probe", "reveal", "open-edit"]) {
      const res = await server.request("POST", "/api/data/flags", { name }, as.carol);
      expect(res.status, res.text).toBe(201);
    }
  });
  afterAll(() => server?.close());

  it("6.1, 9.1: a rule's exists(…) sees the caller's account's rows only: another account's flag opens no row", async () => {
    expect(await titles(as.alice!)).toEqual(["a-public"]);
    const one = await server.request("GET", `/api/data/docs/${ids["a-flagged"]}`, undefined, as.alice);
    expect(one.status, one.text).toBe(404);
    const count = await server.request("GET", "/api/data/docs/count", undefined, as.alice);
    expect(count.body.data?.count ?? count.body.count, count.text).toBe(1);
    // the oracle the hole would be: alice cannot learn B's flag names from her own rows either
    const guess = await server.request("POST", "/api/data/docs", { title: "guess", code: "reveal" }, as.bob);
    expect(guess.status, guess.text).toBe(201);
    expect(await titles(as.alice!)).toEqual(["a-public"]);
    await server.rows("delete from docs where id = ?", guess.body.data.id);
  });

  it("6.1, 9.4: a field rule's exists(…) sees the caller's account only: another account's flag reveals no value", async () => {
    const res = await server.request("GET", "/api/data/docs", undefined, as.alice);
    expect(res.status, res.text).toBe(200);
    expect(res.text).not.toContain("bob-secret");
    expect(res.body.data[0]).not.toHaveProperty("secret");
    const sorted = await server.request(
      "GET",
      `/api/data/docs?where=${q({ secret: "bob-secret" })}`,
      undefined,
      as.alice,
    );
    expect(sorted.body.data, sorted.text).toEqual([]);
  });

  it("6.1, 4.6, 9.1: a write rule's exists(…) sees the caller's account only: another account's flag grants no update", async () => {
    const res = await server.request("PATCH", `/api/data/docs/${ids["a-public"]}`, { title: "hijacked" }, as.alice);
    expect(res.status, res.text).toBe(403);
    const [row] = await server.rows("select title from docs where id = ?", ids["a-public"]);
    expect(row!.title).toBe("a-public");
  });

  it("9.4, 3: the auth routes' user object (login, /me) hides a field whose rule's exists(…) holds only in another account", async () => {
    expect(as.aliceLogin).not.toHaveProperty("bio");
    const me = await server.request("GET", "/api/auth/me", undefined, as.alice);
    expect(me.status, me.text).toBe(200);
    expect(me.body.user).not.toHaveProperty("bio");
    expect(me.text).not.toContain("alice-bio-hidden");
  });

  it("9.4, 6.2: a field rule on the tenant column shows the field in the caller's account only, never to a caller without one", async () => {
    const alice = await server.request("GET", `/api/data/docs/${ids["a-public"]}`, undefined, as.alice);
    expect(alice.body.data.note, alice.text).toBe("a-note");
    // root has no account: context.account_id is unknown, so the rule does not hold on any row
    const root = await server.request("GET", "/api/data/docs", undefined, as.root);
    expect(root.status, root.text).toBe(200);
    expect(root.body.data.length).toBeGreaterThanOrEqual(3);
    for (const row of root.body.data as Row[]) expect(row).not.toHaveProperty("note");
  });

  it("5.1, 6.1, 9.1: context.account_id is a key's tenant; a tenant-less publishable key and a secret key without a tenant get no rows from it", async () => {
    expect(await titles({ apikey: keys.pkA! })).toEqual(["a-flagged", "a-public"]);
    expect(await titles({ apikey: keys.pkNone! })).toEqual([]);
    // a secret key without a tenant reaches every account, but the rule has no account to compare with
    expect(await titles({ apikey: keys.skRole! })).toEqual([]);
  });

  it("5.1, 4.12, 9.1: a key without a user fails closed on user.* and @owns_record() rules, reads and writes alike", async () => {
    for (const key of [keys.pkOwner!, keys.skOwner!]) {
      expect(await titles({ apikey: key })).toEqual([]);
      const one = await server.request("GET", `/api/data/docs/${ids["a-public"]}`, undefined, { apikey: key });
      expect(one.status, one.text).toBe(404);
      const write = await server.request("PATCH", `/api/data/docs/${ids["a-public"]}`, { title: "x" }, { apikey: key });
      expect([403, 404]).toContain(write.status);
    }
    const [row] = await server.rows("select title from docs where id = ?", ids["a-public"]);
    expect(row!.title).toBe("a-public");
  });

  it("5.1, 6.1: a key and a user token together act as the user, inside one account; a key of another account is 403", async () => {
    // alice's role with A's key: her own reads, not the key's wider keyrole
    expect(await titles({ apikey: keys.pkA!, ...as.alice })).toEqual(["a-public"]);
    const carol = await server.request("GET", "/api/data/docs", undefined, { apikey: keys.pkA!, ...as.carol });
    expect(carol.status, carol.text).toBe(403);
    // a tenant-less key does not lend carol anything either
    expect(await titles({ apikey: keys.pkNone!, ...as.carol })).toEqual(["b-public"]);
  });

  it("6.1, 9.1: @is_superadmin() holds for a key acting as the superadmin role, yet a key with a tenant stays in its account", async () => {
    const res = await server.request("GET", "/api/data/docs", undefined, { apikey: keys.pkSuper! });
    expect(res.status, res.text).toBe(200);
    expect((res.body.data as Row[]).map((r) => r.title).sort()).toEqual(["a-flagged", "a-public"]);
    expect(res.text).not.toContain("carol-secret");
  });

  it("4.15, 6.1: explain shows the tenant inside a rule's exists(…), as enforcement applies it", async () => {
    const res = await server.request(
      "GET",
      `/api/system/explain?role=member&permission=${READ}&entity=docs&tenant=${A}`,
      undefined,
      as.root,
    );
    expect(res.status, res.text).toBe(200);
    const inner = String(res.body.data?.where ?? res.body.where).split(/exists/i)[1] ?? "";
    expect(inner, res.text).toMatch(
      /^ \(select 1 as "one" from "flags" as "(\w+)" where \("\1"\."account_id" = (\?|\$\d+)/,
    );
  });

  it("8.2, 6.1, 9.1, 9.4: the feed sends no row another account's flag would open, leaves per-row fields out, and deletes a row that leaves the rule", async () => {
    const feed = await openFeed(server.url, "/api/data/docs/changes", as.alice);
    expect(feed.status, JSON.stringify(feed.body)).toBe(200);
    const made = await server.request(
      "POST",
      "/api/data/docs",
      [
        { title: "feed-flagged", code: "probe", secret: "feed-secret" },
        { title: "feed-leaving", public: true, secret: "feed-secret", note: "feed-note" },
      ],
      as.bob,
    );
    expect(made.status, made.text).toBe(201);
    const [flagged, leaving] = (made.body.data as Row[]).map((r) => r.id as number);
    await server.request(
      "POST",
      "/api/data/docs",
      { title: "feed-b", public: true, secret: "feed-b-secret" },
      as.carol,
    );
    const left = await server.request("PATCH", `/api/data/docs/${leaving}`, { public: false }, as.bob);
    expect(left.status, left.text).toBe(200);
    await feed.until((e) => e.event === "delete" && e.data.id === leaving, "the delete of the row that left the rule");
    const marker = await server.request("POST", "/api/data/docs", { title: "feed-marker", public: true }, as.bob);
    await feed.until((e) => e.data.id === marker.body.data.id, "the marker");
    const changes = feed.changes();
    expect(changes.map((e) => e.data.id)).not.toContain(flagged);
    expect(changes.map((e) => e.data.record?.title)).not.toContain("feed-b");
    for (const e of changes) {
      expect(e.data.record ?? {}).not.toHaveProperty("secret");
      expect(JSON.stringify(e.data)).not.toContain("feed-secret");
    }
    // a member's feed of flags, and a key's feed: their own account only
    const keyFeed = await openFeed(server.url, "/api/data/docs/changes", { apikey: keys.pkNone! });
    if (keyFeed.status === 200) {
      const m2 = await server.request("POST", "/api/data/docs", { title: "feed-marker-2", public: true }, as.bob);
      const owner = await openFeed(server.url, "/api/data/docs/changes", as.bob);
      await server.request("PATCH", `/api/data/docs/${m2.body.data.id}`, { title: "feed-marker-3" }, as.bob);
      await owner.until((e) => e.data.record?.title === "feed-marker-3", "bob's marker");
      expect(keyFeed.changes()).toEqual([]);
      owner.close();
    }
    keyFeed.close();
    feed.close();
  });
});

const q = (value: unknown) => encodeURIComponent(JSON.stringify(value));
