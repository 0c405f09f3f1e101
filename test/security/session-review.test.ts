/**
 * A review of this session's additions, through the public surface (HTTP against real servers, `createApp`):
 * the per-role OpenAPI document (§12.5), key management limits (§5.5), registration fields (§3.3), `sessionOf`
 * claims (§12.3) and the access report's widest mode (§12.2, §4.15).
 *
 * Each test started as a probe; those that found a defect (unknown and prototype-named roles, the document
 * cache key, claimless callers' documents, implicit_allow roles with denies minting keys, registration past
 * an update filter) now hold its fix.
 */
import { randomBytes } from "node:crypto";
import { boolean, type CitadelApp, type CitadelConfig, createApp, em, entity, relation, text } from "citadel";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import rulesApp from "../../examples/rules/config.js";
import { mintKey } from "../auth/api-keys-fixture.js";
import { ANON, type Booted, boot } from "../guard/helpers.js";
import { bearer, login } from "../helpers/auth.js";
import { startServer, type TestResponse, type TestServer } from "../helpers/server.js";
import { PEOPLE, seedTenants, PASSWORD as TENANCY_PASSWORD, tenancyConfig } from "../tenancy/fixture.js";

// biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document is arbitrary JSON
type Doc = Record<string, any>;

const PASSWORD = "review-password-123";
const TEST_AUTH = {
  enabled: true,
  jwt: { secret: "session-review-secret-0123456789-abcdefghijkl" },
  password: { argon2: { memory_cost: 1024, time_cost: 1, parallelism: 1 } },
  rate_limit: { max_per_email: 10_000, max_per_address: 10_000 },
} as const;
const OPENAPI = "/api/system/openapi.json";

/** `vault` is what no role but admin may reach; its name must not appear in anyone else's document. */
const vaultSchema = em(
  {
    posts: entity("posts", { title: text().required(), published: boolean().default(false) }),
    vault: entity("vault", { code: text().required() }),
    users: entity("users", {}),
  },
  ({ posts, vault, users }) => [relation(posts, "author").manyToOne(users), relation(vault, "keeper").manyToOne(users)],
);

type ServerOptions = Parameters<typeof startServer>[1];
/** A server of the vault schema with the test auth settings and these (config.auth) changes. */
const vaultServer = (auth: Record<string, unknown>, options?: ServerOptions) =>
  startServer({ data: vaultSchema.toJSON(), auth: { ...TEST_AUTH, ...auth } } as CitadelConfig, options);
/** Users `<name>@test.com` with the test password and these roles, from a seed. */
async function seedUsers(app: CitadelApp, roles: Record<string, string>) {
  for (const [name, role] of Object.entries(roles))
    await app.module.auth.createUser({ email: `${name}@test.com`, password: PASSWORD, role });
}
/** The bearer header of `<name>@test.com`, signed in with the test password. */
const signIn = async (server: TestServer, name: string) => bearer(await login(server, `${name}@test.com`, PASSWORD));

const readPublishedPosts = {
  permission: "data.entity.read",
  policies: [{ condition: { entity: "posts" }, effect: "filter" as const, filter: { published: true } }],
};

/** The data operations a document lists, as "METHOD /path". */
const dataOperations = (doc: Doc): string[] =>
  Object.entries(doc.paths as Doc)
    .filter(([path]) => path.startsWith("/api/data/"))
    .flatMap(([path, item]) =>
      Object.keys(item as Doc)
        .filter((m) => m !== "parameters")
        .map((m) => `${m.toUpperCase()} ${path}`),
    );

/**
 * §12.5 "every operation it lists gets past the guard": each listed collection and one-row operation of the data
 * API, asked over HTTP (one-row routes on row `id`); the ones answered 403 are returned (they should not be listed).
 */
async function listedButForbidden(
  doc: Doc,
  ask: (method: string, path: string, body?: unknown) => Promise<TestResponse>,
  id = 999_999,
): Promise<string[]> {
  const out: string[] = [];
  for (const [path, item] of Object.entries(doc.paths as Doc)) {
    const m = /^\/api\/data\/([a-z_]+)(\/\{id\})?$/.exec(path);
    if (!m) continue;
    const one = m[2] !== undefined;
    for (const method of Object.keys(item as Doc).filter((k) => k !== "parameters")) {
      const bodies: Record<string, unknown> = {
        get: undefined,
        post: {},
        patch: one ? {} : { update: {}, where: { id } },
        delete: one ? undefined : { id },
      };
      const res = await ask(method.toUpperCase(), one ? `/api/data/${m[1]}/${id}` : path, bodies[method]);
      if (res.status === 403) out.push(`${method.toUpperCase()} ${path}: ${res.body?.error?.message}`);
    }
  }
  return out;
}

describe("the OpenAPI document tells a caller only what its role reaches (12.5)", () => {
  describe("roles the config does not know, and role names that collide", () => {
    let server: TestServer;
    let noDefault: TestServer;
    beforeAll(async () => {
      server = await vaultServer(
        {
          roles: {
            anonymous: { is_default: true, permissions: [readPublishedPosts] },
            member: { permissions: [readPublishedPosts] },
            admin: { implicit_allow: true },
          },
        },
        {
          options: {
            seed: async ({ app }) => {
              await seedUsers(app, { root: "admin", ghost: "member" });
            },
          },
        },
      );
      // no default role: callers without a token are refused every data route (4.1)
      noDefault = await vaultServer(
        { roles: { null: { permissions: ["data.entity.read"] }, admin: { implicit_allow: true } } },
        {
          options: {
            seed: async ({ app }) => {
              await seedUsers(app, { null: "null" });
            },
          },
        },
      );
    });
    afterAll(async () => {
      await server?.close();
      await noDefault?.close();
    });

    /** Give ghost a role the config does not have, as a role removed from the config leaves it. */
    async function strandGhost(role: string) {
      const admin = await signIn(server, "root");
      const users = await server.request("GET", "/api/data/users", undefined, admin);
      const ghost = users.body.data.find((u: Doc) => u.email === "ghost@test.com");
      // the data API refuses a role the config does not name (1.8)...
      const refused = await server.request("PATCH", `/api/data/users/${ghost.id}`, { role }, admin);
      expect(refused.status, refused.text).toBe(400);
      // ...but a role taken out of the config stays on its users
      await server.rows("UPDATE users SET role = ? WHERE id = ?", role, ghost.id);
    }

    it("a user whose role is not configured (one removed from the config) is told no data route (12.5, 4.1)", async () => {
      await strandGhost("ghost");
      const token = await signIn(server, "ghost");
      // the guard refuses this caller everything...
      for (const entity of ["posts", "vault", "users"])
        expect((await server.request("GET", `/api/data/${entity}`, undefined, token)).status).toBe(403);
      // ...but its document lists every entity and operation, vault and its relations included
      const doc = (await server.request("GET", OPENAPI, undefined, token)).body as Doc;
      expect(dataOperations(doc)).toEqual([]);
      expect(JSON.stringify(doc)).not.toContain("vault");
    });

    it("a user whose role is named after an Object.prototype member gets a document, never a 500 (12.5, 2.1)", async () => {
      for (const role of ["constructor", "__proto__", "toString"]) {
        await strandGhost(role);
        const token = await signIn(server, "ghost");
        expect((await server.request("GET", "/api/data/posts", undefined, token)).status).toBe(403);
        const doc = await server.request("GET", OPENAPI, undefined, token);
        expect(doc.status, `${role}: ${doc.text}`).toBe(200);
      }
    });

    it('a role literally named "null" does not share its cached document with callers that have no role (12.5, 4.1)', async () => {
      // the "null" role asks first: its document is cached under "role:null", the key of "no role" too
      const token = bearer(await login(noDefault, "null@test.com", PASSWORD));
      const own = await noDefault.request("GET", OPENAPI, undefined, token);
      expect(own.body.paths["/api/data/vault"]).toBeDefined();
      // a caller without a token has no role here: every data route is 403...
      expect((await noDefault.request("GET", "/api/data/vault")).status).toBe(403);
      // ...yet it is handed the "null" role's document
      const anonymous = (await noDefault.request("GET", OPENAPI)).body as Doc;
      expect(dataOperations(anonymous)).toEqual([]);
      expect(JSON.stringify(anonymous)).not.toContain("vault");
    });
  });

  describe("claim-dependent policies (the rules example, 9.2)", () => {
    let b: Booted<undefined>;
    beforeAll(async () => {
      b = await boot(rulesApp, { users: { u: "user", a: "admin" } });
    });
    afterAll(async () => {
      await b?.server.close();
    });

    it("anonymous callers are not told about members nor about writes that need user.role == 'admin' (12.5, 4.12)", async () => {
      // README: "Anonymous callers learn only the public part". A caller without a token has no claims, so
      // `user.id != null` (members) and `user.role == 'admin'` (writes) never hold for it.
      const doc = (await b.as(ANON, "GET", OPENAPI)).body as Doc;
      const forbidden = await listedButForbidden(doc, (method, path, body) => b.as(ANON, method, path, body));
      expect(forbidden).toEqual([]);
      expect(doc.components.schemas.members).toBeUndefined();
    });

    it("the user role is not told about admin-only writes: user.role is its own role, never 'admin' (12.5)", async () => {
      const doc = (await b.as("u", "GET", OPENAPI)).body as Doc;
      const forbidden = await listedButForbidden(doc, (method, path, body) => b.as("u", method, path, body));
      expect(forbidden).toEqual([]);
    });
  });

  describe("what a role cannot reach stays out of its document", () => {
    let server: TestServer;
    const catalog = em(
      {
        items: entity("items", {
          name: text().required(),
          price_note: text().encrypted(),
          staff_memo: text().hidden(),
        }),
        vault: entity("vault", { code: text().required() }),
        users: entity("users", {}),
      },
      ({ items, vault }) => [relation(items, "vault").manyToOne(vault)],
    );
    const ROLES: CitadelConfig["auth"] = {
      ...TEST_AUTH,
      api_keys: { enabled: true },
      roles: {
        anonymous: {
          is_default: true,
          permissions: [
            {
              permission: "data.entity.read",
              policies: [{ condition: { entity: "items" }, effect: "allow", fields: ["id", "name"] }],
            },
          ],
        },
        // items with their relation to vault, but not vault itself
        clerk: {
          permissions: [
            {
              permission: "data.entity.read",
              policies: [{ condition: { entity: "items" }, effect: "allow", omit: ["price_note"] }],
            },
          ],
        },
        // one row of items, by id: read it may (4.12), and nothing else
        single: {
          permissions: [
            { permission: "data.entity.read", policies: [{ condition: { entity: "items", id: 1 }, effect: "allow" }] },
          ],
        },
        // nothing but a deny
        banned: { permissions: [{ permission: "data.entity.read", effect: "deny" }] },
        admin: { implicit_allow: true },
      },
    };
    const tokens: Record<string, Record<string, string>> = {};
    beforeAll(async () => {
      server = await startServer(
        { data: catalog.toJSON(), auth: ROLES },
        {
          options: {
            encryptionKeys: `k1:${randomBytes(32).toString("base64")}`,
            seed: async ({ app }) => {
              for (const role of ["clerk", "single", "banned", "admin"])
                await app.module.auth.createUser({ email: `${role}@test.com`, password: PASSWORD, role });
              await app.module.data.create("vault", { code: "v" });
              await app.module.data.create("items", [{ name: "a", price_note: "p", vault_id: 1 }, { name: "b" }]);
            },
          },
        },
      );
      for (const role of ["clerk", "single", "banned", "admin"]) tokens[role] = await signIn(server, role);
      tokens.anonymous = {};
    });
    afterAll(async () => {
      await server?.close();
    });
    const docOf = async (role: string) => (await server.request("GET", OPENAPI, undefined, tokens[role])).body as Doc;

    it("an admin asking first does not widen the others' documents: one document per role (12.5)", async () => {
      const admin = await docOf("admin");
      expect(admin.paths["/api/data/vault"]).toBeDefined();
      for (const role of ["anonymous", "clerk", "single", "banned"])
        expect(JSON.stringify(await docOf(role)), role).not.toContain('vault"');
    });

    it("hidden fields never, encrypted and omitted fields only to who reads them, no relation route to an unreadable entity (12.5, 4.8, 10.1)", async () => {
      const anonymous = await docOf("anonymous");
      expect(Object.keys(anonymous.components.schemas.items.properties).sort()).toEqual(["id", "name"]);
      const clerk = await docOf("clerk");
      expect(Object.keys(clerk.components.schemas.items.properties)).not.toContain("price_note");
      expect(clerk.components.schemas.items.properties.vault_id).toBeDefined();
      expect(clerk.paths["/api/data/items/{id}/vault"]).toBeUndefined();
      expect(clerk.components.schemas.vault).toBeUndefined();
      const admin = await docOf("admin");
      expect(admin.components.schemas.items.properties.price_note).toBeDefined();
      expect(admin.paths["/api/data/items/{id}/vault"]).toBeDefined();
      for (const role of ["anonymous", "clerk", "single", "banned", "admin"])
        expect(JSON.stringify(await docOf(role)), role).not.toContain("staff_memo");
    });

    it("a role with only a deny is told no data route; a role whose read is id-conditioned is told reads only (12.5, 4.3, 4.12)", async () => {
      expect(dataOperations(await docOf("banned"))).toEqual([]);
      const single = await docOf("single");
      expect(
        dataOperations(single).every((op) => op.startsWith("GET ") || op.startsWith("POST /api/data/items/query")),
      ).toBe(true);
      expect(dataOperations(single).some((op) => op.includes("/api/data/items"))).toBe(true);
      expect(dataOperations(single).some((op) => !op.includes("/api/data/items"))).toBe(false);
      for (const role of ["anonymous", "clerk", "single", "banned"]) {
        const doc = await docOf(role);
        const forbidden = await listedButForbidden(
          doc,
          (method, path, body) => server.request(method, path, body, tokens[role]),
          role === "single" ? 1 : 999_999,
        );
        expect(forbidden, role).toEqual([]);
        // no system route but the document itself (4.2)
        expect(
          Object.keys(doc.paths).filter((p) => p.startsWith("/api/system/")),
          role,
        ).toEqual([OPENAPI]);
      }
    });

    it("a bad token is 401, not the anonymous document; a publishable key with a role gets that role's document (12.5, 4.1, 5.1)", async () => {
      const forged = await server.request("GET", OPENAPI, undefined, { authorization: "Bearer not-a-token" });
      expect(forged.status).toBe(401);
      const bogusKey = await server.request("GET", OPENAPI, undefined, { apikey: "pk_live_nope" });
      expect(bogusKey.status).toBe(401);
      const made = await server.request(
        "POST",
        "/api/system/keys",
        { name: "clerk web", kind: "publishable", role: "clerk" },
        tokens.admin,
      );
      expect(made.status, made.text).toBe(201);
      const viaKey = await server.request("GET", OPENAPI, undefined, { apikey: made.body.data.key });
      expect(viaKey.body).toEqual(await docOf("clerk"));
    });
  });

  it("with require: true, the document needs a valid key like every /api route (12.5, 5.1)", async () => {
    const server = await vaultServer({
      api_keys: { enabled: true, require: true },
      roles: { anonymous: { is_default: true, permissions: [readPublishedPosts] }, admin: { implicit_allow: true } },
    });
    try {
      const res = await server.request("GET", OPENAPI);
      expect(res.status, res.text).toBe(401);
      expect(res.text).not.toContain("vault");
    } finally {
      await server.close();
    }
  });
});

describe("the OpenAPI document under tenant isolation (12.5, 6)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(tenancyConfig(), { options: { seed: seedTenants, log: () => {} } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("lists no data operation the caller is refused; a tenant admin is not offered the account's slug (12.5, 6.2, 6.3)", async () => {
    for (const who of ["anonymous", "alice", "carol", "adam", "root"] as const) {
      const headers = who === "anonymous" ? {} : bearer(await login(server, PEOPLE[who].email, TENANCY_PASSWORD));
      const doc = (await server.request("GET", OPENAPI, undefined, headers)).body as Doc;
      const forbidden = await listedButForbidden(doc, (method, path, body) =>
        server.request(method, path, body, headers),
      );
      expect(forbidden, who).toEqual([]);
      if (who === "adam") {
        expect(Object.keys(doc.components.schemas.accounts_update.properties)).toEqual(["name"]);
        // bound to its account: the routes over every account are not offered, nor the scope column to send
        expect(doc.paths["/api/system/metrics"]).toBeUndefined();
        expect(doc.paths["/api/system/audit/verify"]).toBeUndefined();
        for (const [name, schema] of Object.entries(doc.components.schemas as Doc))
          if (name.endsWith("_create") || name.endsWith("_update"))
            expect(Object.keys(schema.properties), name).not.toContain("account_id");
      }
      if (who === "anonymous")
        expect(dataOperations(doc).every((op) => op.startsWith("GET ") || op.includes("/query"))).toBe(true);
    }
  });
});

describe("key management never mints more access than the manager has (5.5)", () => {
  let server: TestServer;
  let ops: Record<string, string>;
  let keymaster: Record<string, string>;
  beforeAll(async () => {
    server = await vaultServer(
      {
        api_keys: { enabled: true, publishable_role: "reader" },
        roles: {
          anonymous: { is_default: true, permissions: [readPublishedPosts] },
          reader: { permissions: ["data.entity.read"] },
          keymaster: { permissions: ["system.keys.manage", readPublishedPosts] },
          // everything (4.7) but the vault, and it may not change users (so not its own role, 3.6)
          ops: {
            implicit_allow: true,
            permissions: [
              {
                permission: "data.entity.read",
                policies: [{ condition: { entity: "vault" }, effect: "deny" }],
              },
              { permission: "data.entity.update", policies: [{ condition: { entity: "users" }, effect: "deny" }] },
            ],
          },
          admin: { implicit_allow: true },
        },
      },
      {
        options: {
          seed: async ({ app }) => {
            await seedUsers(app, { ops: "ops", km: "keymaster" });
            await app.module.data.create("vault", { code: "launch-1234" });
          },
        },
      },
    );
    ops = await signIn(server, "ops");
    keymaster = await signIn(server, "km");
  });
  afterAll(async () => {
    await server?.close();
  });

  it("an implicit_allow role denied the vault cannot mint a guard-bypassing secret key (5.5, 4.7)", async () => {
    const own = await server.request("GET", "/api/data/vault", undefined, ops);
    expect(own.status, own.text).toBe(403);
    const minted = await mintKey(server, ops, { name: "escape", kind: "secret" });
    const read =
      minted.status === 201
        ? await server.request("GET", "/api/data/vault", undefined, { apikey: minted.body.data.key })
        : undefined;
    expect(read?.text ?? "").not.toContain("launch-1234");
    expect(minted.status, minted.text).toBe(403);
  });

  it("an implicit_allow role with denies cannot mint a key acting as admin (5.5, 4.7)", async () => {
    const minted = await mintKey(server, ops, { name: "escape", kind: "publishable", role: "admin" });
    expect(minted.status, minted.text).toBe(403);
  });

  it("a manager cannot hand out a publishable key without a role when publishable_role is not its own or the default (5.5, 5.1)", async () => {
    const res = await mintKey(server, keymaster, { name: "web", kind: "publishable" });
    expect(res.status, res.text).toBe(403);
    expect(res.body.error.message).toContain('"reader"');
    const own = await mintKey(server, keymaster, { name: "web", kind: "publishable", role: "anonymous" });
    expect(own.status, own.text).toBe(201);
    // and it cannot rotate a key acting as publishable_role either
    // made by trusted code: ops (implicit_allow, but with denies) may not hand it out either
    const byOps = await mintKey(server, ops, { name: "reader web", kind: "publishable" });
    expect(byOps.status, byOps.text).toBe(403);
    const made = await server.app.module.auth.apiKeys!.create({ name: "reader web", kind: "publishable" });
    const rotated = await server.request("POST", `/api/system/keys/${made.id}/rotate`, {}, keymaster);
    expect(rotated.status, rotated.text).toBe(403);
    expect(rotated.text).not.toContain("pk_");
  });
});

describe("registration is not mass assignment (3.3)", () => {
  let server: TestServer;
  const schema = em({ users: entity("users", { nickname: text(), verified: boolean().default(false) }) });
  beforeAll(async () => {
    server = await startServer({
      data: schema.toJSON(),
      auth: {
        ...TEST_AUTH,
        allow_register: true,
        default_role_register: "member",
        roles: {
          member: {
            permissions: [
              {
                permission: "data.entity.read",
                policies: [{ condition: { entity: "users" }, effect: "filter", filter: { id: "@user.id" } }],
              },
              {
                // members edit their own row while it is unverified; a write that verifies it is refused (4.6)
                permission: "data.entity.update",
                policies: [
                  { condition: { entity: "users" }, effect: "filter", filter: { id: "@user.id", verified: false } },
                ],
              },
            ],
          },
          admin: { implicit_allow: true },
        },
      },
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("a register body cannot set a field the role's update filter names (verified: true) (3.3, 4.6)", async () => {
    const first = await server.request("POST", "/api/auth/password/register", {
      email: "a@test.com",
      password: PASSWORD,
      nickname: "a",
    });
    expect(first.status, first.text).toBe(201);
    // through the data API, the member may not verify itself
    const patch = await server.request(
      "PATCH",
      `/api/data/users/${first.body.user.id}`,
      { verified: true },
      bearer(first.body.token),
    );
    expect(patch.status, patch.text).toBe(403);
    // at registration it may
    const res = await server.request("POST", "/api/auth/password/register", {
      email: "b@test.com",
      password: PASSWORD,
      verified: true,
    });
    const stored = await server.rows("SELECT verified FROM users WHERE email = ?", "b@test.com");
    expect(stored.map((r) => r.verified)).not.toContain(1);
    expect(res.status, res.text).toBe(400);
  });
});

describe("registration under tenancy sets only the account's name and the role's fields (3.3, 6.4)", () => {
  let server: TestServer;
  const schema = em({
    notes: entity("notes", { title: text().required() }),
    users: entity("users", { nickname: text() }),
  });
  beforeAll(async () => {
    server = await startServer(
      {
        data: schema.toJSON(),
        auth: {
          ...TEST_AUTH,
          allow_register: true,
          default_role_register: "owner",
          roles: {
            owner: {
              permissions: [
                "data.entity.read",
                {
                  permission: "data.entity.update",
                  policies: [
                    {
                      condition: { entity: "users" },
                      effect: "filter",
                      filter: { id: "@user.id" },
                      fields: ["nickname"],
                    },
                  ],
                },
              ],
            },
            superadmin: { implicit_allow: true },
          },
        },
        tenancy: { enabled: true, register: "create", superadmin_role: "superadmin" },
      },
      {
        options: {
          seed: async ({ app }) => {
            await app.module.data.create("accounts", { name: "Other", slug: "other" });
          },
        },
      },
    );
  });
  afterAll(async () => {
    await server?.close();
  });

  it("the scope column, the role, an account id or slug, another field are 400; the new user is in its new account only", async () => {
    const register = (email: string, extra: Record<string, unknown>) =>
      server.request("POST", "/api/auth/password/register", { email, password: PASSWORD, ...extra });
    for (const [extra, field] of [
      [{ account: { name: "X" }, account_id: 1 }, "account_id"],
      [{ account: { name: "X" }, role: "superadmin" }, "role"],
      [{ account: { name: "X", id: 1 } }, "account.id"],
      [{ account: { name: "X", slug: "other" } }, "account.slug"],
      [{ account: 1 }, "account"],
    ] as const) {
      const res = await register(`x-${field}@test.com`, extra);
      expect(res.status, `${field}: ${res.text}`).toBe(400);
      expect(Object.keys(res.body.error.fields ?? {}), res.text).toContain(field);
    }
    const ok = await register("owner@test.com", { account: { name: "Mine" }, nickname: "me" });
    expect(ok.status, ok.text).toBe(201);
    const account = decodeJwt(ok.body.token).account_id;
    expect(account).toBe(ok.body.user.account_id);
    expect(account).not.toBe(1);
    const accounts = await server.request("GET", "/api/data/accounts", undefined, bearer(ok.body.token));
    expect(accounts.body.data.map((a: Doc) => a.id)).toEqual([account]);
  });
});

describe("extra token claims come from trusted code only (3.2, 12.3)", () => {
  it("sessionOf's claims never replace id, email, role, the account or the token version, nor give a user an account", async () => {
    const schema = em({ notes: entity("notes", { title: text().required() }), users: entity("users", {}) });
    const app = await createApp({
      connection: { url: ":memory:" },
      config: {
        data: schema.toJSON(),
        auth: {
          ...TEST_AUTH,
          roles: {
            member: {
              permissions: [
                {
                  permission: "data.entity.read",
                  policies: [{ condition: { "user.department": "it" }, effect: "allow" }],
                },
              ],
            },
            superadmin: { implicit_allow: true },
          },
        },
        tenancy: { enabled: true, superadmin_role: "superadmin" },
      },
      options: { log: () => {} },
    });
    try {
      const [a, b] = (await app.module.data.create("accounts", [
        { name: "A", slug: "a" },
        { name: "B", slug: "b" },
      ])) as Doc[];
      await app.module.data.create("notes", [
        { title: "in a", account_id: a!.id },
        { title: "in b", account_id: b!.id },
      ]);
      const user = await app.module.auth.createUser({
        email: "m@test.com",
        password: PASSWORD,
        role: "member",
        account_id: a!.id,
      });
      const lone = await app.module.auth.createUser({ email: "lone@test.com", password: PASSWORD, role: "member" });
      const session = await app.module.auth.sessionOf(user.id as number, {
        department: "it",
        id: 999,
        sub: "999",
        email: "root@test.com",
        role: "superadmin",
        account_id: b!.id,
        ver: 42,
        iss: "elsewhere",
        exp: 4_102_444_800,
      });
      const claims = decodeJwt(session.token);
      expect(claims).toMatchObject({ id: user.id, sub: String(user.id), email: "m@test.com", role: "member" });
      expect(claims).toMatchObject({ account_id: a!.id, ver: 0, department: "it" });
      expect(claims.iss).not.toBe("elsewhere");
      expect(claims.exp).toBeLessThan(4_102_444_800);
      const get = (token: string) =>
        app.fetch(new Request("http://citadel.test/api/data/notes", { headers: { authorization: `Bearer ${token}` } }));
      const res = await get(session.token);
      expect(res.status).toBe(200);
      expect(((await res.json()) as Doc).data.map((n: Doc) => n.title)).toEqual(["in a"]);
      // a user without an account cannot be given one through claims: the claim is dropped, it reaches no row
      const forged = await app.module.auth.sessionOf(lone.id as number, { department: "it", account_id: a!.id });
      expect(decodeJwt(forged.token).account_id).toBeUndefined();
      const none = await get(forged.token);
      expect(none.status).toBe(200);
      expect(((await none.json()) as Doc).data).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it("register and login bodies add no claim to the token (3.2, 3.3)", async () => {
    const server = await vaultServer({
      allow_register: true,
      default_role_register: "member",
      roles: {
        member: {
          permissions: [
            {
              permission: "data.entity.read",
              policies: [{ condition: { "user.department": "it" }, effect: "allow" }],
            },
          ],
        },
      },
    });
    try {
      for (const extra of [{ department: "it" }, { claims: { department: "it" } }]) {
        const res = await server.request("POST", "/api/auth/password/register", {
          email: "c@test.com",
          password: PASSWORD,
          ...extra,
        });
        expect(res.status, res.text).toBe(400);
      }
      const reg = await server.request("POST", "/api/auth/password/register", {
        email: "c@test.com",
        password: PASSWORD,
      });
      expect(reg.status, reg.text).toBe(201);
      const res = await server.request("POST", "/api/auth/password/login", {
        email: "c@test.com",
        password: PASSWORD,
        department: "it",
        claims: { department: "it" },
      });
      expect(res.status, res.text).toBe(200);
      for (const token of [reg.body.token, res.body.token]) {
        expect(Object.keys(decodeJwt(token)).sort()).toEqual([
          "aud",
          "email",
          "exp",
          "iat",
          "id",
          "iss",
          "role",
          "sub",
          "ver",
        ]);
        expect((await server.request("GET", "/api/data/vault", undefined, bearer(token))).status).toBe(403);
      }
    } finally {
      await server.close();
    }
  });
});

describe("the report's widest mode never decides a request (12.2, 4.15)", () => {
  let server: TestServer;
  let admin: Record<string, string>;
  let staff: Record<string, string>;
  beforeAll(async () => {
    server = await vaultServer(
      {
        api_keys: { enabled: true },
        roles: {
          anonymous: {
            is_default: true,
            permissions: [
              readPublishedPosts,
              {
                permission: "data.entity.read",
                policies: [{ condition: { entity: "vault", "user.department": "it" }, effect: "allow" }],
              },
            ],
          },
          staff: {
            permissions: [
              {
                permission: "data.entity.read",
                policies: [
                  { condition: { entity: "vault", "user.department": "it" }, effect: "allow" },
                  { condition: { entity: "posts" }, effect: "allow", rule: "user.role == 'admin'" },
                ],
              },
            ],
          },
          admin: { implicit_allow: true },
        },
      },
      {
        options: {
          seed: async ({ app }) => {
            await seedUsers(app, { root: "admin", staff: "staff" });
            await app.module.data.create("vault", { code: "launch-1234" });
            await app.module.data.create("posts", { title: "p", published: true });
          },
        },
      },
    );
    admin = await signIn(server, "root");
    staff = await signIn(server, "staff");
  });
  afterAll(async () => {
    await server?.close();
  });

  const refused = async () => {
    for (const [who, headers] of [
      ["anonymous", {}],
      ["staff", staff],
    ] as const) {
      for (const path of ["/api/data/vault", "/api/data/vault/1", "/api/data/vault/count", "/api/data/users/1/vault"]) {
        const res = await server.request("GET", path, undefined, headers);
        expect([403, 404], `${who} ${path}: ${res.text}`).toContain(res.status);
        expect(res.text).not.toContain("launch-1234");
      }
      const withed = await server.request("GET", "/api/data/posts?with=author", undefined, headers);
      expect(withed.text).not.toContain("launch-1234");
    }
    const staffPosts = await server.request("GET", "/api/data/posts", undefined, staff);
    expect(staffPosts.status, staffPosts.text).toBe(403);
  };

  it("explain over HTTP ignores widest and user query parameters: the caller-less decision (4.15)", async () => {
    const ask = (qs: string) =>
      server.request(
        "GET",
        `/api/system/explain?role=anonymous&permission=data.entity.read&entity=vault${qs}`,
        undefined,
        admin,
      );
    const plain = await ask("");
    expect(plain.status, plain.text).toBe(200);
    expect(plain.body.data.decision).toBe("deny");
    for (const qs of [
      "&widest=true",
      "&widest=1",
      `&user=${encodeURIComponent('{"department":"it"}')}`,
      "&user.department=it",
    ]) {
      const res = await ask(qs);
      expect(res.status === 400 || res.body.data.decision === "deny", `${qs}: ${res.text}`).toBe(true);
    }
    // the report (widest) does show the claim-conditioned grant
    const report = await server.app.accessReport();
    expect(report.decisions.anonymous!.vault!.read.decision).not.toBe("deny");
  });

  it("building the report and the documents changes no decision; widest-looking query params change nothing (4.15)", async () => {
    await refused();
    for (const headers of [{}, staff, admin])
      expect((await server.request("GET", OPENAPI, undefined, headers)).status).toBe(200);
    server.app.accessReport();
    await refused();
    for (const qs of ["?widest=true", "?widest=1&claimsUnknown=true"]) {
      const res = await server.request("GET", `/api/data/vault${qs}`);
      expect([400, 403], res.text).toContain(res.status);
      expect(res.text).not.toContain("launch-1234");
    }
  });
});
