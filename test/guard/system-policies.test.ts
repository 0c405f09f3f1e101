/**
 * §4.2/§4.3: a system permission (`system.audit.read`, `system.metrics.read`, …) is about no entity and no row, so
 * its policies may only say, from the caller, whether it is granted. A shape that would be dropped when it is
 * decided — a filter (it became a full grant), a field list, a condition on `entity` (decided against whichever
 * entity came first) or `id`, a rule over the row — is refused at startup naming its path (1.5); a condition or
 * rule on the caller's claims works as on data permissions.
 */
import { em, entity, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Booted, boot, guardedApp, rolesStartupError } from "./helpers.js";

const schema = em(
  {
    notes: entity("notes", { title: text() }),
    comments: entity("comments", { body: text() }),
    users: entity("users", {}),
  },
  ({ notes, users }) => [relation(notes, "author").manyToOne(users, { owner: true })],
);

const AUDIT = "system.audit.read";

// biome-ignore lint/suspicious/noExplicitAny: policies under test are deliberately wrong
const startupError = (policy: any) =>
  rolesStartupError(schema.toJSON(), {
    auditor: { permissions: ["data.entity.read", { permission: AUDIT, policies: [policy] }] },
  });

const AT = "config.auth.roles.auditor.permissions[1].policies[0]";

describe("a system permission's policy can only ask about the caller (4.2, 4.3, 1.5)", () => {
  for (const [what, policy, path, message] of [
    ["a filter", { effect: "filter", filter: { id: -1 } }, `${AT}.effect`, "no rows to filter"],
    [
      "a filter whose placeholder has no value",
      { effect: "filter", filter: { title: "@user.department" } },
      `${AT}.effect`,
      "use allow or deny, with a condition on the caller",
    ],
    ["a filter rule", { effect: "filter", rule: "user.id != null" }, `${AT}.effect`, "no rows to filter"],
    ["a field list", { effect: "allow", fields: ["title"] }, `${AT}.fields`, "no fields to allow"],
    ["an omit list", { effect: "allow", omit: ["title"] }, `${AT}.omit`, "no fields to omit"],
    ["a condition on the entity", { condition: { entity: "notes" } }, `${AT}.condition`, 'a condition on "entity"'],
    [
      "a condition on every entity",
      { condition: { entity: "*" }, effect: "deny" },
      `${AT}.condition`,
      'a condition on "entity"',
    ],
    ["a condition on id", { condition: { id: 1 } }, `${AT}.condition`, 'a condition on "id"'],
    ["a rule over a record's field", { rule: "record.title == 'x'" }, `${AT}.rule`, "not a record's fields"],
    ["a rule over the owner", { rule: "@owns_record()" }, `${AT}.rule`, "not a record's fields"],
    [
      "a rule querying rows",
      { rule: "exists(comments, body == 'x')", effect: "deny" },
      `${AT}.rule`,
      "not a record's fields or exists",
    ],
  ] as const)
    it(`refuses ${what} at startup, naming its path (4.2, 1.5)`, async () => {
      const error = await startupError(policy);
      expect(error).toContain(`${path}:`);
      expect(error).toContain(message);
    });
});

describe("a system permission conditioned on the caller (4.2, 4.3)", () => {
  let b: Booted<void>;
  beforeAll(async () => {
    b = await boot(
      guardedApp(
        schema,
        {
          anonymous: { is_default: true, permissions: [] },
          // ann alone, by claim; bob is taken away by a claim-conditioned deny; cleo by a rule on the caller
          auditor: {
            permissions: [
              { permission: AUDIT, policies: [{ condition: { "user.email": "ann@test.com" }, effect: "allow" }] },
              { permission: AUDIT, policies: [{ rule: "user.email == 'cleo@test.com'" }] },
              { permission: AUDIT, policies: [{ condition: { "user.email": "bob@test.com" }, effect: "deny" }] },
            ],
          },
          keeper: {
            permissions: [
              "system.metrics.read",
              {
                permission: "system.metrics.read",
                effect: "deny",
                policies: [{ rule: "user.email == 'dan@test.com'" }],
              },
            ],
          },
        },
        { audit: { enabled: true } },
      ),
      { users: { ann: "auditor", bob: "auditor", cleo: "auditor", dave: "auditor", kim: "keeper", dan: "keeper" } },
    );
  });
  afterAll(() => b.server.close());

  it("an allow conditioned on a claim grants the caller it matches, and only it (4.2, 4.3)", async () => {
    expect((await b.as("ann", "GET", "/api/system/audit?limit=1")).status).toBe(200);
    expect((await b.as("cleo", "GET", "/api/system/audit?limit=1")).status).toBe(200);
    for (const who of ["bob", "dave"]) {
      const res = await b.as(who, "GET", "/api/system/audit?limit=1");
      expect(res.status, `${who}: ${res.text}`).toBe(403);
      expect(res.body.error).toMatchObject({ code: "forbidden", permission: AUDIT });
    }
  });

  it("a deny conditioned on the caller takes the permission away from that caller only (4.3)", async () => {
    expect((await b.as("kim", "GET", "/api/system/metrics")).status).toBe(200);
    const dan = await b.as("dan", "GET", "/api/system/metrics");
    expect(dan.status, dan.text).toBe(403);
    expect(dan.body.error).toMatchObject({ code: "forbidden", permission: "system.metrics.read" });
  });

  it("citadel check lists the claim-conditioned grant at its widest (12.2)", () => {
    const report = b.server.app.accessReport();
    expect(report.system.auditor).toContain(AUDIT);
  });
});
