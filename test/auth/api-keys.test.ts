/**
 * API keys over HTTP (§5): each principal — anonymous, publishable key, publishable key + user, keys with a role
 * of their own, secret key — on list / read / create / update / delete in PocketBase's scenario-table style,
 * then `require`, expiry, revocation, rotation grace, origins, addresses, browsers and management (§5.5).
 */
import { createApp } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Booted } from "../guard/helpers.js";
import { ANON, idsOf, insert, type Row, scenarios } from "../guard/helpers.js";
import { bearer, login } from "../helpers/auth.js";
import { startServer, type TestServer } from "../helpers/server.js";
import {
  apikey,
  createKey,
  eventually,
  expectInvalidKey,
  INVALID_KEY_BODY,
  keysConfig,
  PASSWORD,
} from "./api-keys-fixture.js";

type Ids = Record<"alice" | "bob" | "root" | "p1" | "p2" | "p3" | "p4", number>;

/** A server with users alice and bob (role user), root (admin), and posts p1 (alice, published), p2 (alice,
 * draft), p3 (bob, published), p4 (bob, published; deleted by the secret key). */
async function seeded(config = keysConfig()) {
  const ids = {} as Ids;
  const server = await startServer(config, {
    options: {
      seed: async (ctx) => {
        for (const [name, role] of [
          ["alice", "user"],
          ["bob", "user"],
          ["root", "admin"],
        ] as const)
          ids[name] = (await ctx.app.module.auth.createUser({ email: `${name}@test.com`, password: PASSWORD, role }))
            .id as number;
        const posts = await insert(ctx, "posts", [
          { title: "alice published", published: true, author_id: ids.alice },
          { title: "alice draft", published: false, author_id: ids.alice },
          { title: "bob published", published: true, author_id: ids.bob },
          { title: "bob to delete", published: true, author_id: ids.bob },
        ]);
        [ids.p1, ids.p2, ids.p3, ids.p4] = posts.map((p: Row) => p.id as number) as [number, number, number, number];
      },
    },
  });
  return { server, ids };
}

describe("who a key acts as (5.1, 5.3)", () => {
  let server: TestServer;
  let b: Booted<Ids>;
  beforeAll(async () => {
    const s = await seeded();
    server = s.server;
    const token = (name: string) => login(server, `${name}@test.com`, PASSWORD);
    const [alice, root] = [await token("alice"), await token("root")];
    const admin = bearer(root);
    const pk = (await createKey(server, admin, { name: "web", kind: "publishable" })).key;
    const pkReader = (await createKey(server, admin, { name: "web reader", kind: "publishable", role: "reader" })).key;
    const sk = (await createKey(server, admin, { name: "backend", kind: "secret" })).key;
    const skReader = (await createKey(server, admin, { name: "reporting", kind: "secret", role: "reader" })).key;
    const principals: Record<string, Record<string, string>> = {
      [ANON]: {},
      alice: bearer(alice),
      root: admin,
      pk: apikey(pk),
      "pk as Bearer": bearer(pk),
      "pk + alice": { ...apikey(pk), ...bearer(alice) },
      "pk(reader)": apikey(pkReader),
      sk: apikey(sk),
      "sk as Bearer": bearer(sk),
      "sk + alice": { ...apikey(sk), ...bearer(alice) },
      "sk(reader)": apikey(skReader),
    };
    b = {
      server,
      ids: s.ids,
      tokens: {},
      rows: s.ids,
      as: (who, method, path, body) => server.request(method, path, body, principals[who]),
    };
  });
  afterAll(async () => {
    await server?.close();
  });

  const published = (x: Booted<Ids>) => [x.rows.p1, x.rows.p3, x.rows.p4];
  const all = (x: Booted<Ids>) => [x.rows.p1, x.rows.p2, x.rows.p3, x.rows.p4];

  for (const who of [ANON, "pk", "pk as Bearer"])
    it(`${who} lists only published posts, like the default role (5.1)`, async () => {
      const res = await b.as(who, "GET", "/api/data/posts");
      expect(res.status, res.text).toBe(200);
      expect(idsOf(res)).toEqual(published(b));
    });

  for (const who of ["pk + alice", "pk(reader)", "sk", "sk as Bearer", "sk(reader)", "sk + alice"])
    it(`${who} lists every post (5.1)`, async () => {
      const res = await b.as(who, "GET", "/api/data/posts");
      expect(res.status, res.text).toBe(200);
      expect(idsOf(res)).toEqual(all(b));
    });

  scenarios(
    () => b,
    [
      {
        name: "pk cannot read a draft: 404 as for anonymous (5.1, 4.10)",
        as: "pk",
        req: (x) => `GET /api/data/posts/${x.rows.p2}`,
        status: 404,
      },
      {
        name: "pk + alice reads her draft: the user's role applies (5.1)",
        as: "pk + alice",
        req: (x) => `GET /api/data/posts/${x.rows.p2}`,
        status: 200,
        expected: { data: { title: "alice draft" } },
      },
      {
        name: "sk reads a draft: it bypasses the guard (5.1)",
        as: "sk",
        req: (x) => `GET /api/data/posts/${x.rows.p2}`,
        status: 200,
      },
      {
        name: "pk cannot create (5.1)",
        as: "pk",
        req: "POST /api/data/posts",
        body: { title: "x" },
        status: 403,
        forbidden: ["data.entity.create", "posts"],
      },
      {
        name: "pk(reader) cannot create: its own role applies (5.1)",
        as: "pk(reader)",
        req: "POST /api/data/posts",
        body: { title: "x" },
        status: 403,
        forbidden: ["data.entity.create", "posts"],
      },
      {
        name: "sk(reader) cannot create: a secret key with a role acts as it (5.1)",
        as: "sk(reader)",
        req: "POST /api/data/posts",
        body: { title: "x" },
        status: 403,
        forbidden: ["data.entity.create", "posts"],
      },
      {
        name: "pk + alice creates as alice (5.1)",
        as: "pk + alice",
        req: "POST /api/data/posts",
        body: (x) => ({ title: "by alice", author_id: x.ids.alice }),
        status: 201,
      },
      {
        name: "sk creates (5.1)",
        as: "sk",
        req: "POST /api/data/posts",
        body: { title: "by the backend" },
        status: 201,
      },
      {
        name: "pk cannot update (5.1)",
        as: "pk",
        req: (x) => `PATCH /api/data/posts/${x.rows.p1}`,
        body: { title: "y" },
        status: 403,
        forbidden: ["data.entity.update", "posts"],
      },
      {
        name: "pk + alice updates her own post (5.1, 4.5)",
        as: "pk + alice",
        req: (x) => `PATCH /api/data/posts/${x.rows.p1}`,
        body: { title: "alice edited" },
        status: 200,
      },
      {
        name: "pk + alice cannot update bob's post (5.1, 4.5)",
        as: "pk + alice",
        req: (x) => `PATCH /api/data/posts/${x.rows.p3}`,
        body: { title: "y" },
        status: 403,
      },
      {
        name: "sk updates any post (5.1)",
        as: "sk",
        req: (x) => `PATCH /api/data/posts/${x.rows.p3}`,
        body: { title: "bob edited by backend" },
        status: 200,
      },
      {
        name: "pk cannot delete (5.1)",
        as: "pk",
        req: (x) => `DELETE /api/data/posts/${x.rows.p3}`,
        status: 403,
        forbidden: ["data.entity.delete", "posts"],
      },
      {
        name: "pk + alice cannot delete (5.1)",
        as: "pk + alice",
        req: (x) => `DELETE /api/data/posts/${x.rows.p1}`,
        status: 403,
        forbidden: ["data.entity.delete", "posts"],
      },
      { name: "sk deletes (5.1)", as: "sk", req: (x) => `DELETE /api/data/posts/${x.rows.p4}`, status: 200 },
      { name: "pk may not manage keys (5.5)", as: "pk", req: "GET /api/system/keys", status: 403 },
      { name: "pk + alice may not manage keys (5.5)", as: "pk + alice", req: "GET /api/system/keys", status: 403 },
      { name: "sk(reader) may not manage keys (5.5)", as: "sk(reader)", req: "GET /api/system/keys", status: 403 },
      { name: "sk manages keys: a trusted caller (5.5)", as: "sk", req: "GET /api/system/keys", status: 200 },
      {
        name: "an admin manages keys through implicit_allow (5.5, 4.2)",
        as: "root",
        req: "GET /api/system/keys",
        status: 200,
      },
      { name: "anonymous may not manage keys (5.5)", as: ANON, req: "GET /api/system/keys", status: 403 },
    ],
  );

  it("pk + alice's create is written (5.1)", async () => {
    const rows = await server.rows("select author_id from posts where title = ?", "by alice");
    expect(rows).toEqual([{ author_id: b.ids.alice }]);
  });

  it("a key alone is no user: /api/auth/me is 401 (5.1)", async () => {
    expect((await b.as("pk", "GET", "/api/auth/me")).status).toBe(401);
    expect((await b.as("sk", "GET", "/api/auth/me")).status).toBe(401);
  });

  it("an apikey header and a key as Bearer together are 401 (5.3)", async () => {
    const both = { ...(await (async () => ({}))()), apikey: "pk_live_x", authorization: "Bearer pk_live_y" };
    expectInvalidKey(await server.request("GET", "/api/data/posts", undefined, both));
  });
});

describe("auth.api_keys.require (5)", () => {
  let server: TestServer;
  let pk: string;
  let alice: string;
  beforeAll(async () => {
    ({ server } = await seeded(keysConfig({ require: true })));
    const key = await server.app.module.auth.apiKeys!.create({ name: "web", kind: "publishable" });
    pk = key.key;
    const res = await server.request(
      "POST",
      "/api/auth/password/login",
      { email: "alice@test.com", password: PASSWORD },
      apikey(pk),
    );
    expect(res.status, res.text).toBe(200);
    alice = res.body.token;
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each([
    ["anonymous, no key", {}],
    ["a user token alone", () => bearer(alice)],
    ["a bad key", { apikey: "pk_live_nope" }],
  ])("%s: every /api route is 401 (5)", async (_, headers) => {
    const h = typeof headers === "function" ? headers() : headers;
    for (const path of ["/api/data/posts", "/api/auth/me", "/api/auth/strategies", "/api/system/keys"])
      expectInvalidKey(await server.request("GET", path, undefined, h));
    expectInvalidKey(
      await server.request("POST", "/api/auth/password/login", { email: "alice@test.com", password: PASSWORD }, h),
    );
  });

  it("with the key: the default role; with the key and a token: the user (5)", async () => {
    const anon = await server.request("GET", "/api/data/posts", undefined, apikey(pk));
    expect(anon.status, anon.text).toBe(200);
    expect(anon.body.data).toHaveLength(3);
    const user = await server.request("GET", "/api/data/posts", undefined, { ...apikey(pk), ...bearer(alice) });
    expect(user.body.data).toHaveLength(4);
    expect((await server.request("GET", "/api/auth/me", undefined, { ...apikey(pk), ...bearer(alice) })).status).toBe(
      200,
    );
  });
});

describe("keys that stop working (5.4, 5.5)", () => {
  let server: TestServer;
  let admin: Record<string, string>;
  const works = async (key: string) =>
    (await server.request("GET", "/api/data/posts", undefined, apikey(key))).status === 200;
  beforeAll(async () => {
    ({ server } = await seeded());
    admin = bearer(await login(server, "root@test.com", PASSWORD));
  });
  afterAll(async () => {
    await server?.close();
  });

  it("an expired key is 401 on the next request (5.2, 5.4)", async () => {
    const expires_at = new Date(Date.now() + 3_600_000).toISOString();
    const { id, key } = await createKey(server, admin, { name: "short", kind: "publishable", expires_at });
    expect(await works(key)).toBe(true);
    await server.rows(
      "update citadel_api_keys set expires_at = ? where id = ?",
      new Date(Date.now() - 1000).toISOString(),
      id,
    );
    expectInvalidKey(await server.request("GET", "/api/data/posts", undefined, apikey(key)));
  });

  it("revocation takes effect on the next request (5.5)", async () => {
    const { id, key } = await createKey(server, admin, { name: "revoked", kind: "secret" });
    expect(await works(key)).toBe(true);
    const res = await server.request("DELETE", `/api/system/keys/${id}`, undefined, admin);
    expect(res.status, res.text).toBe(200);
    expect(res.body.data.revoked_at).toEqual(expect.any(String));
    expectInvalidKey(await server.request("GET", "/api/data/posts", undefined, apikey(key)));
    expect((await server.request("POST", `/api/system/keys/${id}/rotate`, {}, admin)).status).toBe(409);
  });

  it("rotation: a new key at once; the old one works until the grace ends, then 401 (5.5)", async () => {
    const old = await createKey(server, admin, { name: "rotated", kind: "publishable", role: "reader" });
    const res = await server.request("POST", `/api/system/keys/${old.id}/rotate`, { grace_seconds: 3600 }, admin);
    expect(res.status, res.text).toBe(201);
    const renewed = res.body.data;
    expect(renewed).toMatchObject({ name: "rotated", kind: "publishable", role: "reader" });
    expect(renewed.key).not.toBe(old.key);
    expect(await works(old.key)).toBe(true);
    expect(await works(renewed.key)).toBe(true);
    // the old key was rotated already: its replacement is what rotates next
    expect((await server.request("POST", `/api/system/keys/${old.id}/rotate`, {}, admin)).status).toBe(409);

    const short = await server.request("POST", `/api/system/keys/${renewed.id}/rotate`, { grace_seconds: 1 }, admin);
    expect(short.status, short.text).toBe(201);
    await eventually(async () => !(await works(renewed.key)));
    expectInvalidKey(await server.request("GET", "/api/data/posts", undefined, apikey(renewed.key)));
    expect(await works(short.body.data.key)).toBe(true);

    const none = await server.request("POST", `/api/system/keys/${short.body.data.id}/rotate`, undefined, admin);
    expect(none.status, none.text).toBe(201);
    expectInvalidKey(await server.request("GET", "/api/data/posts", undefined, apikey(short.body.data.key)));
    expect(await works(none.body.data.key)).toBe(true);
  });

  it("rotations of one key side by side: one makes a key, the others are 409 and make none (5.5)", async () => {
    const old = await createKey(server, admin, { name: "raced", kind: "publishable", role: "reader" });
    const before = (await server.rows("SELECT id FROM citadel_api_keys")).length;
    const rotate = () => server.request("POST", `/api/system/keys/${old.id}/rotate`, { grace_seconds: 60 }, admin);
    const answers = await Promise.all(Array.from({ length: 6 }, rotate));
    const made = answers.filter((a) => a.status === 201);
    expect(answers.map((a) => a.status).sort()).toEqual([201, 409, 409, 409, 409, 409]);
    expect((await server.rows("SELECT id FROM citadel_api_keys")).length).toBe(before + 1);
    const stored = await server.rows("SELECT replaced_by FROM citadel_api_keys WHERE id = ?", old.id);
    expect(stored).toEqual([{ replaced_by: made[0]!.body.data.id }]);
  });

  it("a publishable key works only from its allowed origins (5.2, 5.4)", async () => {
    const { key } = await createKey(server, admin, {
      name: "app only",
      kind: "publishable",
      allowed_origins: ["https://app.example.com"],
    });
    const from = (origin?: string) =>
      server.request("GET", "/api/data/posts", undefined, { ...apikey(key), ...(origin ? { origin } : {}) });
    expect((await from("https://app.example.com")).status).toBe(200);
    expectInvalidKey(await from("https://evil.example"));
    expectInvalidKey(await from());
  });

  it("a secret key works only from its allowed addresses (5.2, 5.4)", async () => {
    const here = await createKey(server, admin, { name: "here", kind: "secret", allowed_ips: ["127.0.0.1"] });
    const range = await createKey(server, admin, { name: "range", kind: "secret", allowed_ips: ["127.0.0.0/8"] });
    const elsewhere = await createKey(server, admin, {
      name: "elsewhere",
      kind: "secret",
      allowed_ips: ["10.1.2.3", "10.0.0.0/8"],
    });
    expect(await works(here.key)).toBe(true);
    expect(await works(range.key)).toBe(true);
    expectInvalidKey(await server.request("GET", "/api/data/posts", undefined, apikey(elsewhere.key)));
    // without trust_proxy, X-Forwarded-For cannot choose the address
    expectInvalidKey(
      await server.request("GET", "/api/data/posts", undefined, {
        ...apikey(elsewhere.key),
        "x-forwarded-for": "10.1.2.3",
      }),
    );
  });

  it("a secret key sent by a browser is 401 and counted (5.4)", async () => {
    const { key } = await createKey(server, admin, { name: "leaked", kind: "secret" });
    const keys = server.app.module.auth.apiKeys!;
    const before = keys.incidents().secret_key_from_browser;
    expectInvalidKey(
      await server.request("GET", "/api/data/posts", undefined, { ...apikey(key), origin: "https://page.example" }),
    );
    expectInvalidKey(
      await server.request("GET", "/api/data/posts", undefined, {
        ...bearer(key),
        "sec-fetch-mode": "cors",
        "sec-fetch-site": "same-origin",
      }),
    );
    expectInvalidKey(
      await server.request("GET", "/api/data/posts", undefined, {
        ...apikey(key),
        "sec-fetch-mode": "no-cors",
        "sec-fetch-site": "cross-site",
      }),
    );
    expect(keys.incidents().secret_key_from_browser).toBe(before + 3);
    // a navigation (typing the URL) is not a page's request; Node's fetch sends Sec-Fetch-Mode: cors alone
    expect(
      (await server.request("GET", "/api/data/posts", undefined, { ...apikey(key), "sec-fetch-mode": "cors" })).status,
    ).toBe(200);
    expect(
      (await server.request("GET", "/api/data/posts", undefined, { ...apikey(key), "sec-fetch-mode": "navigate" }))
        .status,
    ).toBe(200);
    expect(await works(key)).toBe(true);
  });

  it("last_used_at is set by a request with the key (5.2)", async () => {
    const { id, key } = await createKey(server, admin, { name: "used", kind: "publishable" });
    const shown = async () =>
      (await server.request("GET", "/api/system/keys", undefined, admin)).body.data.find((k: Row) => k.id === id);
    expect((await shown()).last_used_at).toBeNull();
    expect(await works(key)).toBe(true);
    expect((await shown()).last_used_at).toEqual(expect.any(String));
  });
});

describe("one 401 for every key that does not work (5.4, 5.6)", () => {
  it("unknown, wrong secret, malformed, revoked, expired, wrong origin, wrong IP, browser, missing: identical bodies", async () => {
    const { server } = await seeded(keysConfig({ require: true }));
    try {
      const keys = server.app.module.auth.apiKeys!;
      const good = await keys.create({ name: "good", kind: "secret" });
      const revoked = await keys.create({ name: "revoked", kind: "publishable" });
      await keys.revoke(revoked.id);
      const expired = await keys.create({ name: "expired", kind: "publishable", expires_at: "2999-01-01T00:00:00Z" });
      await server.rows(
        "update citadel_api_keys set expires_at = ? where id = ?",
        "2000-01-01T00:00:00.000Z",
        expired.id,
      );
      const origin = await keys.create({ name: "origin", kind: "publishable", allowed_origins: ["https://a.example"] });
      const ip = await keys.create({ name: "ip", kind: "secret", allowed_ips: ["192.0.2.1"] });
      const flip = (c: string) => (c === "a" ? "b" : "a");
      const wrongSecret = good.key.slice(0, -1) + flip(good.key.slice(-1));
      const unknownPrefix = `sk_live_${"Z".repeat(12)}${good.key.slice(-43)}`;
      const cases: Record<string, string>[] = [
        apikey(unknownPrefix),
        apikey(wrongSecret),
        bearer(wrongSecret),
        apikey("sk_live_short"),
        apikey(""),
        apikey(revoked.key),
        apikey(expired.key),
        { ...apikey(origin.key), origin: "https://b.example" },
        apikey(ip.key),
        { ...apikey(good.key), origin: "https://page.example" },
        {},
      ];
      const bodies = new Set<string>();
      for (const headers of cases) {
        const res = await server.request("GET", "/api/data/posts", undefined, headers);
        expect(res.status, JSON.stringify(headers)).toBe(401);
        bodies.add(res.text);
      }
      expect([...bodies].map((t) => JSON.parse(t))).toEqual([INVALID_KEY_BODY]);
      expect((await server.request("GET", "/api/data/posts", undefined, apikey(good.key))).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe("managing keys (5.5)", () => {
  let server: TestServer;
  let admin: Record<string, string>;
  beforeAll(async () => {
    ({ server } = await seeded());
    admin = bearer(await login(server, "root@test.com", PASSWORD));
  });
  afterAll(async () => {
    await server?.close();
  });

  it("create answers 201 with the key once; the list shows its prefix and never a key (5.2, 5.5)", async () => {
    const res = await server.request(
      "POST",
      "/api/system/keys",
      { name: "web", kind: "publishable", allowed_origins: ["https://app.example.com"] },
      admin,
    );
    expect(res.status, res.text).toBe(201);
    const created = res.body.data;
    expect(created).toMatchObject({
      name: "web",
      kind: "publishable",
      role: null,
      tenant: null,
      allowed_origins: ["https://app.example.com"],
      revoked_at: null,
    });
    expect(created.key.startsWith(`${created.prefix}`)).toBe(true);
    expect(created.prefix).toMatch(/^pk_live_[0-9A-Za-z]{12}$/);
    expect(created).not.toHaveProperty("hash");
    const list = await server.request("GET", "/api/system/keys", undefined, admin);
    const shown = list.body.data.find((k: Row) => k.id === created.id);
    expect(shown).toEqual({ ...created, key: undefined });
    expect(Object.keys(shown)).not.toContain("key");
    expect(list.text).not.toContain(created.key);
  });

  it.each([
    [{ kind: "publishable" }, "name"],
    [{ name: "x", kind: "public" }, "kind"],
    [{ name: "x", kind: "secret", role: "root" }, "role"],
    [{ name: "x", kind: "secret", tenant: "acme" }, "tenant"],
    [{ name: "x", kind: "secret", expires_at: "2001-01-01T00:00:00Z" }, "expires_at"],
    [{ name: "x", kind: "secret", expires_at: "soon" }, "expires_at"],
    [{ name: "x", kind: "secret", allowed_origins: ["https://a.example"] }, "allowed_origins"],
    [{ name: "x", kind: "publishable", allowed_origins: ["https://a.example/path"] }, "allowed_origins"],
    [{ name: "x", kind: "publishable", allowed_ips: ["127.0.0.1"] }, "allowed_ips"],
    [{ name: "x", kind: "secret", allowed_ips: ["localhost"] }, "allowed_ips"],
    [{ name: "x", kind: "secret", hash: "00" }, "hash"],
  ])("a bad body %j is 400 naming %s (5.5)", async (body, field) => {
    const res = await server.request("POST", "/api/system/keys", body, admin);
    expect(res.status, res.text).toBe(400);
    expect(Object.keys(res.body.error.fields)).toEqual([field]);
  });

  it("rotate and revoke of a key that does not exist are 404; a bad grace is 400 (5.5)", async () => {
    expect((await server.request("POST", "/api/system/keys/999/rotate", {}, admin)).status).toBe(404);
    expect((await server.request("DELETE", "/api/system/keys/999", undefined, admin)).status).toBe(404);
    expect((await server.request("DELETE", "/api/system/keys/abc", undefined, admin)).status).toBe(404);
    const { id } = await createKey(server, admin, { name: "g", kind: "secret" });
    const bad = await server.request("POST", `/api/system/keys/${id}/rotate`, { grace_seconds: -1 }, admin);
    expect(bad.status, bad.text).toBe(400);
  });
});

describe("config (5, 1.8)", () => {
  it.each([
    [{ enabled: true, requre: true }, /config\.auth\.api_keys.*requre/],
    [{ enabled: true, publishable_role: "guest" }, /config\.auth\.api_keys\.publishable_role: unknown role "guest"/],
    [{ enabled: true, secret_role: "root" }, /config\.auth\.api_keys\.secret_role: unknown role "root"/],
    [{ enabled: true, env: "Live_1" }, /config\.auth\.api_keys\.env/],
  ])("%j is refused at startup", async (keys, message) => {
    await expect(createApp({ config: keysConfig(keys as never) })).rejects.toThrow(message);
  });

  it("keys off: no key routes, and an apikey header means nothing (5)", async () => {
    const server = await startServer(keysConfig({ enabled: false }));
    try {
      expect((await server.request("GET", "/api/system/keys")).status).toBe(404);
      expect((await server.request("GET", "/api/data/posts", undefined, apikey("pk_live_x"))).status).toBe(200);
      expect((await server.request("GET", "/api/data/posts", undefined, bearer("pk_live_x"))).status).toBe(401);
    } finally {
      await server.close();
    }
  });

  it("the env label names new keys (5.1)", async () => {
    const server = await startServer(keysConfig({ env: "test" }));
    try {
      const key = await server.app.module.auth.apiKeys!.create({ name: "t", kind: "secret" });
      expect(key.key).toMatch(/^sk_test_[0-9A-Za-z]{55}$/);
      expect((await server.request("GET", "/api/data/posts", undefined, apikey(key.key))).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
