/** §4.8 field-level security and issue 4 item 8 (explain), over HTTP. */
import { boolean, type CreateAppInput, em, entity, number, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENGINE } from "../helpers/engines.js";
import { ANON, type Booted, boot, insert } from "./helpers.js";

const schema = em(
  {
    employees: entity("employees", {
      name: text().required(),
      email: text(),
      salary: number(),
      notes: text(),
      secret_code: text().hidden(),
      active: boolean().default(true),
    }),
    users: entity("users", {}),
  },
  ({ employees, users }) => [relation(employees, "manager").manyToOne(users)],
);

const example: CreateAppInput = {
  config: {
    data: schema.toJSON(),
    auth: {
      enabled: true,
      guard: { enabled: true },
      roles: {
        anonymous: {
          is_default: true,
          permissions: [
            {
              permission: "data.entity.read",
              policies: [
                { condition: { entity: "employees" }, effect: "filter", filter: { active: true }, fields: ["name"] },
              ],
            },
          ],
        },
        staff: {
          permissions: [
            { permission: "data.entity.read", policies: [{ effect: "allow", omit: ["salary"] }] },
            { permission: "data.entity.update", policies: [{ effect: "allow", fields: ["notes"] }] },
            "data.entity.create",
          ],
        },
        admin: { implicit_allow: true },
      },
    },
  },
};

let app: Booted<{ ids: number[] }>;
beforeAll(async () => {
  app = await boot(example, {
    users: { sam: "staff", root: "admin" },
    rows: async (ctx, users) => {
      const rows = await insert(ctx, "employees", [
        { name: "Ada", email: "ada@corp", salary: 100, notes: "n1", active: true, manager_id: users.root },
        { name: "Bob", email: "bob@corp", salary: 50, notes: "n2", active: false },
      ]);
      return { ids: rows.map((r) => r.id as number) };
    },
  });
});
afterAll(() => app.server.close());

describe("field-level security (4.8)", () => {
  it("an allowlist shows only those fields (and id) to anonymous readers", async () => {
    const res = await app.as(ANON, "GET", "/api/data/employees");
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual([{ id: app.rows.ids[0], name: "Ada" }]);
  });

  it("omit hides a field from a role's reads, in lists, single rows and with", async () => {
    const list = await app.as("sam", "GET", "/api/data/employees");
    expect(list.body.data).toHaveLength(2);
    for (const row of list.body.data) {
      expect(row).not.toHaveProperty("salary");
      expect(row).toHaveProperty("notes");
    }
    const one = await app.as("sam", "GET", `/api/data/employees/${app.rows.ids[0]}`);
    expect(one.body.data).not.toHaveProperty("salary");
    const viaUsers = await app.as("sam", "GET", `/api/data/users?with=employees`);
    expect(viaUsers.status).toBe(200);
    const embedded = viaUsers.body.data.flatMap((u: { employees: unknown[] }) => u.employees);
    expect(embedded.length).toBeGreaterThan(0);
    for (const e of embedded) expect(e).not.toHaveProperty("salary");
  });

  it.each([
    ["where", `where=${encodeURIComponent(JSON.stringify({ salary: { $gt: 60 } }))}`],
    ["sort", "sort=-salary"],
    ["select", "select=id,salary"],
  ])("naming an unreadable field in %s is 400, worded like an unknown field (4.8, 4.10)", async (_, query) => {
    const res = await app.as("sam", "GET", `/api/data/employees?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain('unknown field "salary"');
    const anon = await app.as(ANON, "GET", `/api/data/employees?${query.replace("salary", "email")}`);
    expect(anon.status).toBe(400);
  });

  it("count cannot be used as an oracle on an unreadable field (4.8)", async () => {
    const res = await app.as("sam", "GET", `/api/data/employees/count?where=${encodeURIComponent('{"salary":100}')}`);
    expect(res.status).toBe(400);
  });

  it("writing a field outside the update allowlist is 403 and changes nothing (4.8)", async () => {
    const id = app.rows.ids[0];
    const res = await app.as("sam", "PATCH", `/api/data/employees/${id}`, { notes: "ok", name: "Eve" });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: "forbidden", permission: "data.entity.update", entity: "employees" });
    const after = await app.as("root", "GET", `/api/data/employees/${id}`);
    expect(after.body.data).toMatchObject({ name: "Ada", notes: "n1" });
    const ok = await app.as("sam", "PATCH", `/api/data/employees/${id}`, { notes: "updated" });
    expect(ok.status).toBe(200);
    expect(ok.body.data).toMatchObject({ notes: "updated" });
    expect(ok.body.data).not.toHaveProperty("salary");
  });

  it("hidden fields are never readable or writable, even for implicit_allow (4.8)", async () => {
    const read = await app.as("root", "GET", "/api/data/employees");
    for (const row of read.body.data) expect(row).not.toHaveProperty("secret_code");
    const write = await app.as("root", "POST", "/api/data/employees", { name: "Zed", secret_code: "x" });
    expect(write.status).toBe(400);
    expect(write.body.error.fields).toHaveProperty("secret_code");
  });
});

describe("explain (issue 4 item 8)", () => {
  const explain = (who: string, q: string) => app.as(who, "GET", `/api/system/explain?${q}`);

  it("shows the decision, the matched policies and the SQL WHERE with placeholders, as the engine runs it", async () => {
    const res = await explain("root", "role=anonymous&permission=data.entity.read&entity=employees");
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ role: "anonymous", decision: "filter", entity: "employees" });
    // PostgreSQL numbers its placeholders and has booleans; SQLite stores true as 1
    expect(res.body.data.where).toContain(`"employees"."active" = ${ENGINE === "postgres" ? "$1" : "?"}`);
    expect(res.body.data.parameters).toEqual([ENGINE === "postgres" ? true : 1]);
    expect(res.body.data.matched.join(" ")).toContain("config.auth.roles.anonymous.permissions[0].policies[0]");
    expect(res.body.data.fields).toEqual(["id", "name"]);
  });

  it("explains a denial with its reason", async () => {
    const res = await explain("root", "role=anonymous&permission=data.entity.delete&entity=employees");
    expect(res.body.data).toMatchObject({ decision: "deny" });
    expect(res.body.data.reason).toContain("lacks data.entity.delete");
  });

  it("is 403 for roles without system.explain and 400 for unknown inputs", async () => {
    expect((await explain("sam", "role=staff&permission=data.entity.read&entity=employees")).status).toBe(403);
    expect((await explain(ANON, "role=staff&permission=data.entity.read&entity=employees")).status).toBe(403);
    expect((await explain("root", "role=staff&permission=data.entity.fly&entity=employees")).status).toBe(400);
    expect((await explain("root", "role=staff&permission=data.entity.read&entity=nope")).status).toBe(400);
    // a missing entity says so and lists the entities, rather than calling "" unknown
    const missing = await explain("root", "role=staff&permission=data.entity.read");
    expect(missing.status).toBe(400);
    expect(missing.body.error.message).toMatch(/^entity: required \(one of .*employees/);
  });

  it("an unknown role is 400 naming the configured roles, not a DENY (4.15, 12.1)", async () => {
    const res = await explain("root", "role=staf&permission=data.entity.read&entity=employees");
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain('unknown role "staf"');
    expect(res.body.error.message).toContain("staff");
  });
});
