/** §1.8 strict config and §1.9 secure by default, through createApp and HTTP. */
import { type CitadelConfig, type CreateAppInput, createApp, em, entity, relation, text } from "citadel";
import { serve } from "citadel/adapter/node";
import { describe, expect, it } from "vitest";
import { startServer } from "../helpers/server.js";

const schema = em(
  { posts: entity("posts", { title: text().required() }), users: entity("users", {}) },
  ({ posts, users }) => [relation(posts, "author").manyToOne(users)],
);

const SECRET = "x".repeat(32);
const roles = {
  anonymous: { is_default: true, permissions: ["data.entity.read"] },
  admin: { implicit_allow: true },
};

// biome-ignore lint/suspicious/noExplicitAny: configs under test are deliberately wrong
function base(auth: any = {}, extra: any = {}): any {
  return { data: schema.toJSON(), auth: { enabled: true, jwt: { secret: SECRET }, roles, ...auth }, ...extra };
}

async function startupError(config: unknown): Promise<string> {
  try {
    const app = await createApp({ connection: { url: ":memory:" }, config: config as CitadelConfig });
    await app.close();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("the config was accepted");
}

describe("strict config (1.8)", () => {
  // [what the user wrote, the path the error names, the fragment that helps]
  const misspellings: [string, unknown, string, string][] = [
    ["guard.enabeld", base({ guard: { enabeld: true } }), "config.auth.guard:", "did you mean `enabled`?"],
    [
      "implicit_alow",
      base({ roles: { admin: { implicit_alow: true } } }),
      "config.auth.roles.admin:",
      "did you mean `implicit_allow`?",
    ],
    ["allow_registration", base({ allow_registration: true }), "config.auth:", "did you mean `allow_register`?"],
    ["auth.rolez", base({ rolez: roles }), "config.auth:", "did you mean `roles`?"],
    ["a top-level key", { ...base(), datas: {} }, "config:", "did you mean `data`?"],
    ["jwt.secert", base({ jwt: { secret: SECRET, secert: "y" } }), "config.auth.jwt:", "did you mean `secret`?"],
    [
      "a policy's fitler",
      base({
        roles: {
          user: { permissions: [{ permission: "data.entity.read", policies: [{ effect: "filter", fitler: {} }] }] },
        },
      }),
      "config.auth.roles.user.permissions[0].policies[0]:",
      "did you mean `filter`?",
    ],
    [
      "server.cors.orgin",
      base({}, { server: { cors: { orgin: "https://a.example" } } }),
      "config.server.cors:",
      "did you mean `origin`?",
    ],
    [
      "a field's requried",
      {
        ...base(),
        data: {
          entities: { posts: { fields: { title: { type: "text", config: { requried: true } } } } },
        },
      },
      "config.data.entities.posts.fields.title.config:",
      "did you mean `required`?",
    ],
    ["a key nothing resembles", base({ zzzzzzzz: 1 }), "config.auth:", "known keys: `enabled`"],
  ];
  it.each(misspellings)(
    "%s is a startup error naming its path and the nearest known key (1.8)",
    async (_, config, path, hint) => {
      const message = await startupError(config);
      expect(message.startsWith(path), message).toBe(true);
      expect(message).toContain(hint);
    },
  );

  const enums: [string, unknown, string, string][] = [
    [
      "effect: allw",
      base({
        roles: { user: { permissions: ["data.entity.read", { permission: "data.entity.read", effect: "allw" }] } },
      }),
      "config.auth.roles.user.permissions[1].effect",
      '"allow", "deny"',
    ],
    [
      "a policy effect",
      base({
        roles: { user: { permissions: [{ permission: "data.entity.read", policies: [{ effect: "permit" }] }] } },
      }),
      "config.auth.roles.user.permissions[0].policies[0].effect",
      '"allow", "deny", "filter"',
    ],
    ["same_site", base({ cookie: { same_site: "none" } }), "config.auth.cookie.same_site", '"Strict", "Lax"'],
  ];
  it.each(enums)("a wrong enum value (%s) names the allowed values (1.8)", async (_, config, path, allowed) => {
    const message = await startupError(config);
    expect(message).toContain(`${path}: must be one of ${allowed}`);
  });

  it.each([
    ["a trailing slash", "https://app.example.com/", "config.server.cors.origin", 'e.g. "https://app.example.com"'],
    ["no scheme", "app.example.com", "config.server.cors.origin", "scheme://host[:port]"],
    [
      "a path, in a list",
      ["https://a.example", "https://b.example/app"],
      "config.server.cors.origin[1]",
      "https://b.example",
    ],
  ])(
    "a CORS origin no browser sends (%s) is a startup error, not a silently closed door (1.8)",
    async (_, origin, path, hint) => {
      const message = await startupError(base({}, { server: { cors: { origin } } }));
      expect(message.startsWith(`${path}: `), message).toBe(true);
      expect(message).toContain(hint);
    },
  );
});

describe("names Citadel and the database keep, and settings that would never apply (1.5, 1.8)", () => {
  const data = (json: ReturnType<typeof schema.toJSON>) => base({}, { data: json });
  const m2m = (table?: string) =>
    em(
      { posts: entity("posts", { title: text() }), labels: entity("labels", { name: text() }) },
      ({ posts, labels }) => [relation(posts, "labels").manyToMany(labels, table ? { connectionTable: table } : {})],
    ).toJSON();
  /** A role `user` whose one policy of `permission` has these field rules. */
  const fieldRulesOn = (permission: string, fields: unknown) =>
    base({ roles: { ...roles, user: { permissions: [{ permission, policies: [{ effect: "allow", fields }] }] } } });
  /** A schema of one entity named `name`. */
  const oneEntity = (name: string) => data(em({ [name]: entity(name, { name: text() }) }).toJSON());
  // [what the user wrote, the config, the path the error names, the fragment that helps]
  const cases: [string, unknown, string, string][] = [
    // served by the data routes, an entity on Citadel's own table would hand out its rows (keys' hashes)
    [
      "an entity citadel_api_keys",
      oneEntity("citadel_api_keys"),
      "config.data.entities.citadel_api_keys",
      "starting with citadel_ are reserved",
    ],
    ["an entity citadel_meta", oneEntity("citadel_meta"), "config.data.entities.citadel_meta", "reserved"],
    [
      "an entity sqlite_stat1",
      oneEntity("sqlite_stat1"),
      "config.data.entities.sqlite_stat1",
      "starting with sqlite_ are reserved",
    ],
    ["an entity named entity", oneEntity("entity"), "config.data.entities.entity", "/api/data/entity/"],
    [
      "an index citadel_x",
      { ...base(), data: { ...schema.toJSON(), indices: { citadel_x: { entity: "posts", fields: ["title"] } } } },
      "config.data.indices.citadel_x",
      "reserved",
    ],
    [
      "an index idx_citadel_audit_account_id (the audit trail's own)",
      {
        ...base(),
        data: { ...schema.toJSON(), indices: { idx_citadel_audit_account_id: { entity: "posts", fields: ["title"] } } },
      },
      "config.data.indices.idx_citadel_audit_account_id",
      "starting with idx_citadel_ are reserved",
    ],
    [
      "a many-to-many table that is an entity",
      data(m2m("posts")),
      "config.data.relations.mn_posts_labels_labels.config.connectionTable",
      "already the name of an entity",
    ],
    [
      "a tenant entity citadel_accounts",
      base({}, { tenancy: { enabled: true, entity: "citadel_accounts" } }),
      "config.tenancy.entity",
      "reserved",
    ],
    // a field rule is read by its own permission only (9.4)
    [
      "a write rule on a read policy",
      fieldRulesOn("data.entity.read", { title: { read: "true", write: "false" } }),
      "config.auth.roles.user.permissions[0].policies[0].fields.title.write",
      "never applies",
    ],
    [
      "a read rule on an update policy",
      fieldRulesOn("data.entity.update", { title: { read: "false" } }),
      "config.auth.roles.user.permissions[0].policies[0].fields.title.read",
      "never applies",
    ],
    // a misspelt redaction would leave the value recorded as it is
    [
      "audit.redact users.emial",
      base({}, { audit: { enabled: true, redact: ["users.emial"] } }),
      "config.audit.redact[0]",
      "did you mean `email`?",
    ],
    [
      "audit.redact userz.email",
      base({}, { audit: { enabled: true, redact: ["userz.email"] } }),
      "config.audit.redact[0]",
      'unknown entity "userz"',
    ],
  ];
  it.each(cases)("%s is a startup error naming its path (1.8)", async (_, config, path, hint) => {
    const message = await startupError(config);
    expect(message.startsWith(path), message).toBe(true);
    expect(message).toContain(hint);
  });

  it("the names next to them still start: citadel as a word, an entity named entities (1.5)", async () => {
    const ok = em({
      citadelx: entity("citadelx", { name: text() }),
      entities: entity("entities", { name: text() }),
    }).toJSON();
    const app = await createApp({ connection: { url: ":memory:" }, config: data(ok) });
    await app.close();
  });
});

describe("what createApp and serve take beside the config is strict too (1.8)", () => {
  // a misspelled url would open file:data.db in the working directory: servers meant to share a database would not
  const inputs: [string, unknown, string][] = [
    ["connection.ulr", { connection: { ulr: ":memory:" } }, "connection: unknown key `ulr` (did you mean `url`?)"],
    ["connection.pool.mx", { connection: { url: ":memory:", pool: { mx: 5 } } }, "connection.pool: unknown key `mx`"],
    ["options.sed", { connection: { url: ":memory:" }, options: { sed: () => {} } }, "did you mean `seed`?"],
    ["a top-level confg", { connection: { url: ":memory:" }, confg: {} }, "createApp: unknown key `confg`"],
    ["a connection string", { connection: ":memory:" }, "connection: expected an object"],
  ];
  it.each(inputs)("%s is a startup error naming it", async (_, input, message) => {
    const started = createApp(input as CreateAppInput).then((app) => app.close());
    await expect(started).rejects.toThrow(message);
  });

  it("serve names a misspelled option, and knows its own (port, hostname, quiet)", async () => {
    const input = { connection: { url: ":memory:" }, prot: 8080, quiet: true } as unknown as Parameters<
      typeof serve
    >[0];
    const handle = serve(input);
    await expect(handle.ready).rejects.toThrow("serve: unknown key `prot` (did you mean `port`?)");
    process.exitCode = 0;
    const ok = serve({ connection: { url: ":memory:" }, port: 0, hostname: "127.0.0.1", quiet: true });
    await ok.ready;
    await ok.close();
  });
});

describe("secure by default (1.9)", () => {
  it("with roles and no guard key, the guard enforces: anonymous cannot make itself admin (1.9)", async () => {
    const server = await startServer(base());
    try {
      await server.app.module.auth.createUser({ email: "a@example.com", password: "a long password" });
      const res = await server.request("PATCH", "/api/data/users/1", { role: "admin" });
      expect(res.status).toBe(403);
      expect((await server.request("GET", "/api/data/posts")).status).toBe(200);
      expect((await server.request("POST", "/api/data/posts", { title: "x" })).status).toBe(403);
    } finally {
      await server.close();
    }
  });

  it("bknd's configs with guard: { enabled: true } keep working unchanged (1.9)", async () => {
    const server = await startServer(base({ guard: { enabled: true } }));
    try {
      expect((await server.request("GET", "/api/data/posts")).status).toBe(200);
      expect((await server.request("POST", "/api/data/posts", { title: "x" })).status).toBe(403);
    } finally {
      await server.close();
    }
  });

  it("guard: { enabled: false } opens every route and says so at every start (1.9)", async () => {
    const logged: string[] = [];
    const log = (message: string) => logged.push(message);
    const server = await startServer(base({ guard: { enabled: false } }), { options: { log } });
    try {
      expect((await server.request("POST", "/api/data/posts", { title: "x" })).status).toBe(201);
      expect(logged.filter((m) => m.includes("every /api/data route is open"))).toHaveLength(1);
    } finally {
      await server.close();
    }
    const again = await startServer(base({ guard: { enabled: false } }), { dir: undefined, options: { log } });
    await again.close();
    expect(logged.filter((m) => m.includes("guard is disabled"))).toHaveLength(2);
  });

  it("a config without auth serves its entities open and says so at every start (1.9)", async () => {
    const logged: string[] = [];
    const app = await createApp({
      connection: { url: ":memory:" },
      config: { data: schema.toJSON() },
      options: { log: (m) => logged.push(m) },
    });
    await app.close();
    expect(logged).toEqual([expect.stringContaining("auth is not enabled (config.auth.enabled)")]);
    expect(logged[0]).toContain("every /api/data route is open");
  });

  it("a config with roles and the guard on prints no such warning (1.9)", async () => {
    const logged: string[] = [];
    const app = await createApp({
      connection: { url: ":memory:" },
      config: base(),
      options: { log: (m) => logged.push(m) },
    });
    await app.close();
    expect(logged).toEqual([]);
  });
});
