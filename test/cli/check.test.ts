/**
 * `citadel check` (12.2): the static access report on the CLI (text and JSON, exit codes, no database opened),
 * and its warnings through the exported API — wide grants (9.3), roles that can write `role`, entities no role
 * can read, policies that never apply, secret keys that bypass the guard, a guard that does not enforce.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type AccessReport,
  type CitadelConfig,
  em,
  entity,
  relation,
  text,
  type Warning,
  type WarningKind,
} from "citadel";
import { describe, expect, it } from "vitest";
import { reportOf as reportFor } from "../helpers/report.js";
import { BLOG, blogOnFile, cli, tempDir } from "./helpers.js";

const { dir } = tempDir("citadel-cli-check-");

describe("citadel check (12.2)", () => {
  it("prints the decisions, the filters' SQL, who reads and writes each field, and the warnings; exit 0", async () => {
    const run = await cli(["check", "--config", BLOG]);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.split("\n");
    expect(run.stdout).toContain('Callers without a token act as role "anonymous".');
    expect(lines).toContainEqual(expect.stringMatching(/^posts\s+anonymous\s+filter\s+deny\s+deny\s+deny$/));
    expect(lines).toContainEqual(expect.stringMatching(/^\s+admin\s+allow\s+allow\s+allow\s+allow$/));
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}author update posts: .*author_id.* -- \["@user\.id"\]$/));
    // users' emails: read and written only by the admin (implicit_allow); the author writes its own posts' owner
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}email\s+- {2}- {2}-\s+- {2}- {2}-\s+.*r {2}c {2}u$/));
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}author_id\s+r {2}- {2}-\s+r {2}- {2}-\s+r {2}co uo/));
    expect(run.stdout).toContain('role-write: config.auth.roles.admin: role "admin" can write users.role');
    expect(run.stdout).toContain("5 roles, 3 entities checked.");
  });

  it("--json prints the report as data", async () => {
    const run = await cli(["check", "--config", BLOG, "--json"]);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as AccessReport;
    expect(report.decisions.anonymous!.posts!.read).toEqual({
      decision: "filter",
      where: expect.stringContaining("published"),
      parameters: [1],
    });
    expect(report.decisions.moderator!.posts!.update).toEqual({
      decision: "deny",
      reason: 'role "moderator" lacks data.entity.update on posts',
    });
    expect(report.fields.users!.email!.anonymous).toEqual({ read: "none", create: "none", update: "none" });
    expect(report.warnings.map((w) => w.kind)).toEqual(["role-write"]);
  });

  it("is static: the config's own database is not opened or created", async () => {
    const file = join(dir, "app.db");
    const config = blogOnFile(dir, file);
    const run = await cli(["check", "--config", config]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("5 roles, 3 entities checked.");
    expect(existsSync(file)).toBe(false);
  });

  it("a config that does not start is exit 1 with its one-line error; --help says what it does", async () => {
    const bad = join(dir, "bad.config.ts");
    writeFileSync(
      bad,
      "export default { config: { auth: { enabled: true, roles: { a: { permissions: ['data.entity.raed'] } } } } };\n",
    );
    const run = await cli(["check", "--config", bad]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('unknown permission "data.entity.raed"');
    const help = await cli(["check", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: citadel check --config <file>");
    expect(help.stdout).toContain("in-memory");
  });
});

// ——— warnings, through the exported API ———

const schema = em(
  {
    posts: entity("posts", { title: text() }),
    secrets: entity("secrets", { value: text() }),
    users: entity("users", { name: text() }),
  },
  ({ posts, users }) => [relation(posts, "author").manyToOne(users, { owner: true })],
);

const READ = "data.entity.read";

const reportOf = (auth: Record<string, unknown>, extra: Partial<CitadelConfig> = {}) =>
  reportFor({
    config: {
      data: schema.toJSON(),
      auth: { enabled: true, jwt: { secret: "a-check-test-secret-of-at-least-32-bytes!" }, ...auth },
      ...extra,
    } as CitadelConfig,
  });

const kinds = (warnings: Warning[], kind: WarningKind) => warnings.filter((w) => w.kind === kind);

/** Every entity readable by someone, no wide grant, no dead policy: the baseline that warns about nothing. */
const CLEAN = {
  reader: {
    is_default: true,
    permissions: [
      {
        permission: READ,
        effect: "allow",
        policies: [
          { condition: { entity: "posts" }, effect: "allow" },
          { condition: { entity: "secrets" }, effect: "allow" },
          { condition: { entity: "users" }, effect: "allow" },
        ],
      },
    ],
  },
};

describe("check's warnings (12.2)", () => {
  it("a config with nothing to warn about has no warnings", async () => {
    expect((await reportOf({ roles: CLEAN })).warnings).toEqual([]);
  });

  it("wide grants: a data permission as a string, one without policies, one for entity '*' (9.3, 12.2)", async () => {
    const report = await reportOf({
      roles: {
        ...CLEAN,
        a: { permissions: [READ] },
        b: { permissions: [{ permission: "data.entity.update", effect: "allow" }] },
        c: {
          permissions: [
            {
              permission: "data.entity.delete",
              effect: "allow",
              policies: [{ condition: { entity: "*" }, effect: "allow" }],
            },
          ],
        },
        // a deny for every entity narrows: not a wide grant; a system permission is not a data grant
        d: {
          permissions: [
            { permission: READ, effect: "deny", policies: [{ condition: { entity: "*" }, effect: "deny" }] },
            "system.explain",
          ],
        },
      },
    });
    expect(kinds(report.warnings, "wide-grant")).toEqual([
      {
        kind: "wide-grant",
        path: "config.auth.roles.a.permissions[0]",
        message: '"data.entity.read" as a string grants it on every entity, users included',
      },
      {
        kind: "wide-grant",
        path: "config.auth.roles.b.permissions[0]",
        message: '"data.entity.update" without policies grants it on every entity, users included',
      },
      {
        kind: "wide-grant",
        path: "config.auth.roles.c.permissions[0].policies[0]",
        message: '"data.entity.delete" for entity "*" reaches every entity, users included',
      },
    ]);
    // and the report says what the grant reaches: every entity
    for (const e of report.entities) expect(report.decisions.c![e]!.delete.decision).toBe("allow");
  });

  it("roles that can write users.role: implicit_allow ones; a role updating users without it is not one", async () => {
    const report = await reportOf({
      roles: {
        ...CLEAN,
        admin: { implicit_allow: true, permissions: [] },
        support: {
          permissions: [
            {
              permission: "data.entity.update",
              effect: "allow",
              policies: [{ condition: { entity: "users" }, effect: "allow" }],
            },
          ],
        },
      },
    });
    expect(kinds(report.warnings, "role-write")).toEqual([
      {
        kind: "role-write",
        path: "config.auth.roles.admin",
        message: 'role "admin" can write users.role (create, update): it can give any user any role, its own included',
      },
    ]);
    expect(report.fields.users!.role!.support).toEqual({ read: "none", create: "none", update: "none" });
    expect(report.fields.users!.name!.support!.update).toBe("all");
  });

  it("an entity no role can read", async () => {
    const report = await reportOf({
      roles: {
        reader: {
          is_default: true,
          permissions: [
            {
              permission: READ,
              effect: "allow",
              policies: [{ condition: { entity: { $in: ["posts", "users"] } }, effect: "allow" }],
            },
          ],
        },
      },
    });
    expect(kinds(report.warnings, "unreadable")).toEqual([
      { kind: "unreadable", message: 'no role can read entity "secrets"' },
    ]);
  });

  it("a policy that never applies to its role: a rule about another role (9.1, 12.2)", async () => {
    const report = await reportOf({
      roles: {
        ...CLEAN,
        member: {
          permissions: [
            {
              permission: "data.entity.update",
              effect: "allow",
              policies: [
                { condition: { entity: "posts" }, effect: "allow", rule: "@owns_record()" },
                { condition: { entity: "posts" }, effect: "allow", rule: "@has_role('admin')" },
              ],
            },
          ],
        },
      },
    });
    expect(kinds(report.warnings, "never-applies")).toEqual([
      {
        kind: "never-applies",
        path: "config.auth.roles.member.permissions[0].policies[1]",
        message: 'never applies to role "member": its condition or rule holds on no entity for it',
      },
    ]);
  });

  it("secret keys without a role bypass the guard: warned until secret_role is set (5.1)", async () => {
    const open = await reportOf({ roles: CLEAN, api_keys: { enabled: true, publishable_role: "reader" } });
    expect(kinds(open.warnings, "secret-keys")).toHaveLength(1);
    expect(kinds(open.warnings, "secret-keys")[0]!.path).toBe("config.auth.api_keys.secret_role");
    const scoped = await reportOf({
      roles: CLEAN,
      api_keys: { enabled: true, publishable_role: "reader", secret_role: "reader" },
    });
    expect(scoped.warnings).toEqual([]);
  });

  it("a guard that does not enforce: disabled, or no roles (1.9)", async () => {
    const off = await reportOf({ roles: CLEAN, guard: { enabled: false } });
    expect(off.enforced).toBe(false);
    expect(kinds(off.warnings, "guard-off")[0]!.message).toContain("not enforced");
    const none = await reportOf({ roles: {} });
    expect(none.enforced).toBe(false);
    expect(kinds(none.warnings, "guard-off")[0]!.message).toContain("every /api/data route is open");
  });

  it("a field a field list leaves out is read by no caller, whatever a field rule on claims says (12.2, 4.8, 9.4)", async () => {
    const report = await reportOf(
      {
        roles: {
          ...CLEAN,
          staff: {
            permissions: [
              { permission: READ, policies: [{ condition: { entity: "posts" }, effect: "allow", fields: ["title"] }] },
            ],
          },
        },
      },
      {
        data: {
          ...schema.toJSON(),
          entities: {
            ...schema.toJSON().entities,
            posts: {
              ...schema.toJSON().entities!.posts!,
              config: { field_rules: { author_id: { read: "user.department == 'x'" } } },
            },
          },
        },
      } as Partial<CitadelConfig>,
    );
    expect(report.fields.posts!.author_id!.staff!.read).toBe("none");
    expect(report.fields.posts!.author_id!.reader!.read).toBe("some");
  });

  it("a decision that depends on the caller's claims is marked per request, with its policy, at its widest (12.2, 4.12)", async () => {
    const report = await reportOf({
      roles: {
        ...CLEAN,
        staff: {
          permissions: [
            {
              permission: "data.entity.delete",
              effect: "allow",
              policies: [{ condition: { entity: "posts", "user.department": "ops" }, effect: "allow" }],
            },
          ],
        },
      },
    });
    // the most any caller could get: staff whose department is ops delete posts
    expect(report.decisions.staff!.posts!.delete).toEqual({
      decision: "allow",
      // the policy and its text, so a diff sees it rewritten in place
      per_request: [
        expect.stringMatching(
          /^config\.auth\.roles\.staff\.permissions\[0\]\.policies\[0\] \{.*"user\.department":"ops"/,
        ),
      ],
    });
    expect(report.decisions.staff!.secrets!.delete.per_request).toBeUndefined();
  });
});
