/**
 * `citadel test --config <file> <cases>` (12.3): access tests declared as data — principals with roles, claims
 * and keys, fixture rows, expected status, rows, fields and counts — run over HTTP on a fresh in-memory database
 * each, with a coverage line per policy ("never matched"). Exit 0 when every case passes, 1 otherwise.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { em, entity, relation, text } from "citadel";
import { describe, expect, it } from "vitest";
import { BLOG, blogOnFile, cli, ROOT, tempDir } from "./helpers.js";

const { dir } = tempDir("citadel-cli-test-");
const BLOG_CASES = join(ROOT, "examples/blog/access-tests.json");

let n = 0;
function file(content: unknown, ext = "json"): string {
  const path = join(dir, `file-${n++}.${ext}`);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

/** An app whose delete on notes depends on a claim, with API keys on. */
const schema = em({ notes: entity("notes", { text: text() }), users: entity("users", {}) }, ({ notes, users }) => [
  relation(notes, "author").manyToOne(users),
]);
const CLAIMS_APP = file(
  `export default { config: ${JSON.stringify({
    data: schema.toJSON(),
    auth: {
      enabled: true,
      jwt: { secret: "a-test-command-secret-of-at-least-32-bytes" },
      api_keys: { enabled: true, publishable_role: "guest" },
      roles: {
        guest: {
          is_default: true,
          permissions: [
            { permission: "data.entity.read", policies: [{ condition: { entity: "notes" }, effect: "allow" }] },
          ],
        },
        staff: {
          permissions: [
            { permission: "data.entity.read", policies: [{ condition: { entity: "notes" }, effect: "allow" }] },
            {
              permission: "data.entity.delete",
              policies: [{ condition: { entity: "notes", "user.department": "ops" }, effect: "allow" }],
            },
            {
              permission: "data.entity.update",
              policies: [{ condition: { entity: "notes" }, effect: "allow", rule: "@has_role('admin')" }],
            },
          ],
        },
      },
    },
  })} };\n`,
  "ts",
);

const CLAIM_CASES = {
  users: {
    opsy: { role: "staff", claims: { department: "ops" } },
    sales: { role: "staff", claims: { department: "sales" } },
  },
  fixtures: { notes: [{ text: "a" }, { text: "b" }] },
  cases: [
    {
      name: "ops staff delete notes",
      as: "opsy",
      entity: "notes",
      action: "delete",
      id: 1,
      expect: { status: 200, rows: [1] },
    },
    { name: "sales staff do not", as: "sales", entity: "notes", action: "delete", id: 1, expect: { status: 403 } },
    {
      name: "a publishable key reads as guest",
      as: { key: "publishable" },
      entity: "notes",
      action: "read",
      expect: { status: 200, rows: [1, 2], fields: ["id", "text", "author_id", "created_at", "updated_at"] },
    },
    {
      name: "a publishable key does not delete",
      as: { key: "publishable" },
      entity: "notes",
      action: "delete",
      id: 2,
      expect: { status: 403 },
    },
    {
      name: "a secret key without a role bypasses the guard",
      as: { key: "secret" },
      entity: "notes",
      action: "delete",
      id: 2,
      expect: { status: 200 },
    },
    {
      name: "every case starts from the fixtures",
      as: "anonymous",
      entity: "notes",
      action: "count",
      expect: { count: 2 },
    },
  ],
};

describe("citadel test (12.3)", () => {
  it("runs the blog example's access tests: every case passes, exit 0, with a coverage line per policy", async () => {
    const run = await cli(["test", "--config", BLOG, BLOG_CASES]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain("✓ anonymous callers read published posts only");
    expect(run.stdout).toContain("✓ a commenter cannot approve her own comment");
    expect(run.stdout).toMatch(/^10 passed, 0 failed \(10 cases\)$/m);
    expect(run.stdout).toMatch(/^Policies matched: \d+ of \d+$/m);
    expect(run.stdout).toContain("never matched: config.auth.roles.");
  });

  it("claims, publishable and secret keys act as the config says; each case starts from the fixtures", async () => {
    const run = await cli(["test", "--config", CLAIMS_APP, file(CLAIM_CASES), "--json"]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.failed).toBe(0);
    expect(report.passed).toBe(6);
    // the policy no case reached, and one every read reached
    expect(report.coverage).toEqual(
      expect.arrayContaining([
        { policy: "config.auth.roles.staff.permissions[2].policies[0]", matched: false },
        { policy: "config.auth.roles.staff.permissions[1].policies[0]", matched: true },
        { policy: "config.auth.roles.guest.permissions[0].policies[0]", matched: true },
      ]),
    );
  });

  it("a case that does not hold fails with what differed, exit 1", async () => {
    const wrong = {
      ...CLAIM_CASES,
      cases: [
        {
          name: "sales staff delete (they do not)",
          as: "sales",
          entity: "notes",
          action: "delete",
          id: 1,
          expect: { status: 200 },
        },
        {
          name: "guests read one note (they read two)",
          as: "anonymous",
          entity: "notes",
          action: "read",
          expect: { rows: [1] },
        },
        {
          name: "fields without text",
          as: "anonymous",
          entity: "notes",
          action: "read",
          id: 1,
          expect: { fields: ["id"] },
        },
        CLAIM_CASES.cases[0],
      ],
    };
    const run = await cli(["test", "--config", CLAIMS_APP, file(wrong)]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("✗ sales staff delete (they do not)\n    expected status 200, got 403:");
    expect(run.stdout).toContain("expected rows [1], got [1,2]");
    expect(run.stdout).toContain("expected fields id, got author_id, created_at, id, text, updated_at (row 1)");
    expect(run.stdout).toContain("✓ ops staff delete notes");
    expect(run.stdout).toContain("1 passed, 3 failed (4 cases)");
  });

  it("a malformed cases file names the part that is wrong; a missing file or argument says so", async () => {
    const bad = await cli([
      "test",
      "--config",
      CLAIMS_APP,
      file({ cases: [{ ...CLAIM_CASES.cases[0], action: "remove" }] }),
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(
      'cases file.cases[0].action: must be one of "read", "count", "create", "update", "delete"',
    );
    const vacuous = await cli([
      "test",
      "--config",
      CLAIMS_APP,
      file({ cases: [{ ...CLAIM_CASES.cases[0], expect: {} }] }),
    ]);
    expect(vacuous.code).toBe(1);
    expect(vacuous.stderr).toContain("cases file.cases[0].expect: expects nothing");
    const typo = await cli(["test", "--config", CLAIMS_APP, file({ cases: [{ ...CLAIM_CASES.cases[0], expct: {} }] })]);
    expect(typo.stderr).toContain("did you mean `expect`?");
    const unknown = await cli([
      "test",
      "--config",
      CLAIMS_APP,
      file({ cases: [{ ...CLAIM_CASES.cases[0], as: "nobody" }] }),
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no user "nobody" in users');
    const missing = await cli(["test", "--config", CLAIMS_APP, join(dir, "nope.json")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("<cases>: no such file");
    const none = await cli(["test", "--config", CLAIMS_APP]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("<cases> is required");
    const help = await cli(["test", "--help"]);
    expect(help.stdout).toContain("Usage: citadel test --config <file> [--json] <cases>");
  });

  it("never opens the config's own database", async () => {
    const db = join(dir, "app.db");
    const config = blogOnFile(dir, db);
    const run = await cli(["test", "--config", config, BLOG_CASES]);
    expect(run.code, run.stderr).toBe(0);
    expect(existsSync(db)).toBe(false);
  });
});
