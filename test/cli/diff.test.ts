/**
 * `citadel diff --config <old> --config <new>` (12.4): what a config change widens or narrows per role ×
 * entity × action × field, with exit 3 when something widens or a filter changed (so CI can require a review).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { em, entity, text } from "citadel";
import { describe, expect, it } from "vitest";
import { cli, tempDir } from "./helpers.js";

const { dir } = tempDir("citadel-cli-diff-");

const schema = em({
  posts: entity("posts", { title: text(), body: text() }),
  users: entity("users", { name: text() }),
}).toJSON();

const READ = "data.entity.read";
const postsFor = (policy: Record<string, unknown>) => ({
  permission: READ,
  effect: "allow",
  policies: [{ condition: { entity: "posts" }, ...policy }],
});

/** The baseline: readers read posts where title is "public", title only; writers update posts. */
const BASE = {
  reader: { is_default: true, permissions: [postsFor({ effect: "filter", filter: { title: "public" } })] },
  writer: {
    permissions: [
      postsFor({ effect: "allow", fields: ["title"] }),
      {
        permission: "data.entity.update",
        effect: "allow",
        policies: [{ condition: { entity: "posts" }, effect: "allow" }],
      },
    ],
  },
};

let n = 0;
/** A config module with these roles, written to the temp directory; returns its path. */
function configWith(
  roles: Record<string, unknown>,
  entities = schema,
  more: { jwt?: Record<string, unknown>; server?: Record<string, unknown> } = {},
): string {
  const file = join(dir, `config-${n++}.ts`);
  const jwt = { secret: "a-diff-test-secret-of-at-least-32-bytes!!", ...more.jwt };
  const config = {
    data: entities,
    auth: { enabled: true, jwt, roles },
    ...(more.server ? { server: more.server } : {}),
  };
  writeFileSync(file, `export default { config: ${JSON.stringify(config)} };\n`);
  return file;
}

const diff = (before: string, after: string, ...more: string[]) =>
  cli(["diff", "--config", before, "--config", after, ...more]);

describe("citadel diff (12.4)", () => {
  const base = configWith(BASE);

  it("the same access: exit 0, no changes", async () => {
    const run = await diff(base, configWith(structuredClone(BASE)));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe("No access changes.");
  });

  it("a grant that reaches more: exit 3, each widened role × entity × action, and the new warning", async () => {
    const wider = structuredClone(BASE) as Record<string, { permissions: unknown[] }>;
    wider.reader!.permissions.push("data.entity.delete");
    const run = await diff(base, configWith(wider));
    expect(run.code, run.stdout).toBe(3);
    expect(run.stdout).toContain("Widens (4)");
    for (const role of ["(no token)", "reader"])
      for (const entity of ["posts", "users"])
        expect(run.stdout).toContain(`role ${role}: delete ${entity}: deny -> allow`);
    expect(run.stdout).toContain(
      'wide-grant: config.auth.roles.reader.permissions[1]: "data.entity.delete" as a string grants it on every entity',
    );
    expect(run.stdout).toContain("exit 3");
  });

  it("a grant taken away only narrows: exit 0", async () => {
    const narrower = structuredClone(BASE) as Record<string, { permissions: unknown[] }>;
    narrower.writer!.permissions.pop();
    const run = await diff(base, configWith(narrower));
    expect(run.code, run.stdout).toBe(0);
    expect(run.stdout).toContain("Narrows (1)\n  role writer: update posts: allow -> deny");
    expect(run.stdout).not.toContain("Widens");
    expect(run.stdout).toContain("Nothing widens.");
  });

  it("a field a role now reads widens; a filter to every row widens (12.4)", async () => {
    const wider = structuredClone(BASE) as Record<string, { permissions: Record<string, unknown>[] }>;
    wider.writer!.permissions[0] = postsFor({ effect: "allow", fields: ["title", "body"] });
    wider.reader!.permissions[0] = postsFor({ effect: "allow" });
    const run = await diff(base, configWith(wider), "--json");
    expect(run.code, run.stdout).toBe(3);
    const out = JSON.parse(run.stdout);
    expect(out.widens).toEqual(
      expect.arrayContaining([
        { role: "writer", entity: "posts", action: "read", field: "body", from: "none", to: "all" },
        { role: "reader", entity: "posts", action: "read", from: "filter", to: "allow" },
        { role: "(no token)", entity: "posts", action: "read", from: "filter", to: "allow" },
      ]),
    );
    expect(out.narrows).toEqual([]);
  });

  it("a filter whose SQL changed is listed for review with both SQL texts: exit 3", async () => {
    const changed = structuredClone(BASE) as Record<string, { permissions: Record<string, unknown>[] }>;
    changed.reader!.permissions[0] = postsFor({ effect: "filter", filter: { title: { $like: "public*" } } });
    const run = await diff(base, configWith(changed));
    expect(run.code, run.stdout).toBe(3);
    expect(run.stdout).toContain("Changed (review: may widen) (2)");
    expect(run.stdout).toMatch(
      /role reader: read posts: filter -> filter\n {4}was: .*title.* = \? -- \["public"\]\n {4}now: .*title.* -- \["public\*"\]/,
    );
  });

  it("a policy on the caller's claims rewritten in place, or a field rule on them, is a change to review: exit 3", async () => {
    const onClaims = (rule: string) => ({
      ...structuredClone(BASE),
      staff: {
        permissions: [
          {
            permission: "data.entity.delete",
            effect: "allow",
            policies: [{ condition: { entity: "posts" }, effect: "allow", rule }],
          },
          postsFor({ effect: "allow", fields: { body: { read: rule } } }),
        ],
      },
    });
    const before = configWith(onClaims("user.email == 'boss@example.com'"));
    const run = await diff(before, configWith(onClaims("user.id != null")), "--json");
    expect(run.code, run.stdout).toBe(3);
    const out = JSON.parse(run.stdout);
    expect(out.widens).toEqual([]);
    expect(out.changes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          role: "staff",
          entity: "posts",
          action: "delete",
          per_request: {
            from: [expect.stringContaining("boss@example.com")],
            to: [expect.stringContaining("user.id != null")],
          },
        }),
        expect.objectContaining({
          role: "staff",
          entity: "posts",
          action: "read",
          field: "body",
          from: "some",
          to: "some",
          where: { from: expect.stringContaining("boss@example.com"), to: expect.stringContaining("user.id != null") },
        }),
      ]),
    );
    // the same config again is no change
    expect((await diff(before, configWith(onClaims("user.email == 'boss@example.com'")))).code).toBe(0);
  });

  it("a new role widens by all it is granted; a new default role is said (12.4, 4.2)", async () => {
    const more = {
      ...structuredClone(BASE),
      guest: { is_default: true, permissions: [postsFor({ effect: "allow" })] },
      reader: { permissions: BASE.reader.permissions },
    };
    const run = await diff(base, configWith(more));
    expect(run.code).toBe(3);
    expect(run.stdout).toContain("default role (callers without a token): reader -> guest");
    expect(run.stdout).toContain("role guest: read posts: deny -> allow");
    expect(run.stdout).toContain("role (no token): read posts: filter -> allow");
  });

  it("a new entity is readable by whom its grants say (12.4)", async () => {
    const entities = em({
      posts: entity("posts", { title: text(), body: text() }),
      notes: entity("notes", { text: text() }),
      users: entity("users", { name: text() }),
    }).toJSON();
    const withNotes = structuredClone(BASE) as Record<string, { permissions: unknown[] }>;
    withNotes.writer!.permissions.push({
      permission: READ,
      effect: "allow",
      policies: [{ condition: { entity: "notes" }, effect: "allow" }],
    });
    const run = await diff(base, configWith(withNotes, entities));
    expect(run.code).toBe(3);
    expect(run.stdout).toContain("Widens (1)\n  role writer: read notes: deny -> allow");
  });

  it("a trusted identity provider, a re-pointed one, or a new cookie origin is a setting to review: exit 3 (12.4, 3.2, 3.7)", async () => {
    const idp = { url: "https://idp.example.com/jwks", issuer: "https://idp.example.com/", audience: "app" };
    const trusting = configWith(BASE, schema, { jwt: { jwks: idp } });
    const added = await diff(base, trusting);
    expect(added.code, added.stdout).toBe(3);
    expect(added.stdout).toContain(
      'external tokens (JWKS): (none) -> https://idp.example.com/jwks, issuer https://idp.example.com/, audience app, role from claim "role"',
    );
    const repointed = await diff(
      trusting,
      configWith(BASE, schema, { jwt: { jwks: { ...idp, role_claim: "groups" } } }),
    );
    expect(repointed.code).toBe(3);
    expect(repointed.stdout).toContain('role from claim "groups"');
    const cors = await diff(base, configWith(BASE, schema, { server: { cors: { origin: ["https://evil.example"] } } }));
    expect(cors.code).toBe(3);
    expect(cors.stdout).toContain(
      "browser origins sending the cookie (CORS): (same origin only) -> https://evil.example",
    );
    // and check says both
    const check = await cli(["check", "--config", trusting]);
    expect(check.stdout).toContain("Tokens of https://idp.example.com/ (keys from https://idp.example.com/jwks");
  });

  it("the command line: two configs exactly; --config twice is only for diff; a broken config is exit 1", async () => {
    const one = await cli(["diff", "--config", base]);
    expect(one.code).toBe(2);
    expect(one.stderr).toContain("diff takes two configs: --config <old> --config <new>");
    const three = await cli(["diff", "--config", base, "--config", base, "--config", base]);
    expect(three.code).toBe(2);
    const twice = await cli(["check", "--config", base, "--config", base]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain("--config is given more than once");
    const broken = configWith({ reader: { permissions: ["data.entity.raed"] } });
    const bad = await diff(base, broken);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('unknown permission "data.entity.raed"');
  });
});
