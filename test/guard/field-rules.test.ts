/** §9.4 per-row field rules over HTTP: hidden per row in SQL, where/sort/count see the value only where the rule holds. */
import { em, entity, number, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Booted, boot, dbRows, expectForbidden, guardedApp, q, type Row } from "./helpers.js";

const schema = em(
  {
    departments: entity("departments", { name: text().required() }),
    employees: entity(
      "employees",
      { name: text().required(), salary: number(), ssn: text(), author_ip: text() },
      {
        field_rules: {
          salary: { read: "@has_role('admin') or @owns_record()", write: "@has_role('admin')" },
          ssn: { read: "@owns_record()", write: "@owns_record() or @has_role('admin')" },
        },
      },
    ),
    users: entity("users", {}),
  },
  ({ departments, employees, users }) => [
    relation(employees, "user").manyToOne(users, { owner: true }),
    relation(employees, "department").manyToOne(departments),
  ],
);

const app = guardedApp(schema, {
  user: {
    permissions: [
      {
        permission: "data.entity.read",
        effect: "allow",
        // SnackBase: `author_ip: { read: "@has_role('admin')" }` — a user never reads it
        policies: [{ effect: "allow", fields: { author_ip: { read: "@has_role('admin')" } } }],
      },
      "data.entity.update",
    ],
  },
  admin: { permissions: ["data.entity.read", "data.entity.update", "data.entity.create", "system.explain"] },
});

interface Rows {
  dept: number;
  own: number;
  low: number;
  high: number;
}

describe("per-row field rules (9.4)", () => {
  let b: Booted<Rows>;
  beforeAll(async () => {
    b = await boot(app, {
      users: { a: "user", b: "user", root: "admin" },
      rows: async (ctx, ids) => {
        const [dept] = (await ctx.app.module.data.create("departments", [{ name: "R&D" }])) as Row[];
        const made = (await ctx.app.module.data.create("employees", [
          { name: "A", salary: 500, ssn: "ssn-111", author_ip: "10.0.0.1", user_id: ids.a, department_id: dept!.id },
          // two rows A cannot read the salary of, their ids in the reverse order of their salaries
          {
            name: "B high",
            salary: 9000,
            ssn: "ssn-222",
            author_ip: "10.0.0.2",
            user_id: ids.b,
            department_id: dept!.id,
          },
          {
            name: "B low",
            salary: 100,
            ssn: "ssn-333",
            author_ip: "10.0.0.3",
            user_id: ids.b,
            department_id: dept!.id,
          },
        ])) as Row[];
        return { dept: dept!.id as number, own: made[0]!.id, high: made[1]!.id, low: made[2]!.id };
      },
    });
  });
  afterAll(async () => {
    await b?.server.close();
  });

  const names = (res: { body: { data: Row[] } }) => res.body.data.map((r) => r.name);

  it("the field is absent (not null) on rows where the read rule fails, present where it holds (9.4)", async () => {
    const res = await b.as("a", "GET", "/api/data/employees?sort=id");
    expect(res.status, res.text).toBe(200);
    const [own, high, low] = res.body.data as Row[];
    expect(own).toMatchObject({ name: "A", salary: 500, ssn: "ssn-111" });
    expect(high).not.toHaveProperty("salary");
    expect(high).not.toHaveProperty("ssn");
    expect(low).not.toHaveProperty("salary");
    expect(res.text).not.toContain(":9000");
    expect(res.text).not.toContain("ssn-222");
    const one = await b.as("a", "GET", `/api/data/employees/${b.rows.high}`);
    expect(one.body.data).toEqual(expect.objectContaining({ name: "B high" }));
    expect(one.body.data).not.toHaveProperty("salary");
  });

  it("a rule that holds on every row adds nothing: the admin reads every salary (9.4)", async () => {
    const res = await b.as("root", "GET", "/api/data/employees?sort=id");
    expect(res.body.data.map((r: Row) => r.salary)).toEqual([500, 9000, 100]);
  });

  it("a field rule that folds to false removes the field: where/sort on it is 400 (9.4, 4.8)", async () => {
    const res = await b.as("a", "GET", "/api/data/employees");
    for (const row of res.body.data as Row[]) expect(row).not.toHaveProperty("author_ip");
    for (const path of [`where=${q({ author_ip: "10.0.0.2" })}`, "sort=author_ip", "select=author_ip"])
      expect((await b.as("a", "GET", `/api/data/employees?${path}`)).status, path).toBe(400);
    expect((await b.as("root", "GET", "/api/data/employees?sort=id")).body.data[1].author_ip).toBe("10.0.0.2");
  });

  it("where on a rule-bound field matches only rows where the rule holds: no oracle through where/count (9.4)", async () => {
    const probes: unknown[] = [
      { salary: { $gte: 0 } },
      { salary: { $gt: 1000 } },
      { salary: { $lt: 1000 } },
      { salary: 9000 },
      { salary: { $isnull: true } },
      { salary: { $isnull: false } },
      { $not: { salary: { $gt: 1000 } } },
      { $or: [{ salary: { $gt: 1000 } }, { name: "nobody" }] },
      { ssn: "ssn-222" },
      { ssn: { $in: ["ssn-222", "ssn-333"] } },
      { $not: { ssn: "ssn-222" } },
    ];
    for (const where of probes) {
      const res = await b.as("a", "GET", `/api/data/employees?where=${q(where)}&sort=id`);
      expect(res.status, res.text).toBe(200);
      // B high and B low differ in every hidden value: the answer must treat them alike
      const got = names(res);
      expect(got.includes("B high"), JSON.stringify(where)).toBe(got.includes("B low"));
      const count = await b.as("a", "GET", `/api/data/employees/count?where=${q(where)}`);
      expect(count.body.data.count).toBe(got.length);
    }
    const own = await b.as("a", "GET", `/api/data/employees?where=${q({ salary: 500 })}`);
    expect(names(own)).toEqual(["A"]);
  });

  it("sort by a rule-bound field orders hidden rows as NULL, so it ranks nothing the caller cannot read (9.4, 2.6)", async () => {
    for (const sort of ["salary", "-salary"]) {
      const res = await b.as("a", "GET", `/api/data/employees?sort=${sort}`);
      const hidden = names(res).filter((n) => n !== "A");
      // id order (the tiebreak), not salary order: B high (id lower) before B low either way
      expect(hidden, sort).toEqual(["B high", "B low"]);
    }
    const admin = await b.as("root", "GET", "/api/data/employees?sort=-salary");
    expect(names(admin)).toEqual(["B high", "A", "B low"]);
  });

  it("with: a related list shows each row's field only where its rule holds (9.4, 4.5)", async () => {
    const res = await b.as("a", "GET", `/api/data/departments/${b.rows.dept}?with=employees`);
    expect(res.status, res.text).toBe(200);
    const employees = res.body.data.employees as Row[];
    expect(employees.find((e) => e.name === "A")?.salary).toBe(500);
    for (const e of employees.filter((e) => e.name !== "A")) expect(e).not.toHaveProperty("salary");
    expect(res.text).not.toContain(":9000");
    const ref = await b.as("a", "GET", `/api/data/departments/${b.rows.dept}/employees`);
    expect(ref.text).not.toContain(":9000");
  });

  it("a write rule refuses with 403 naming the field, and nothing is written (9.4, 4.16)", async () => {
    const res = await b.as("a", "PATCH", `/api/data/employees/${b.rows.own}`, { salary: 1_000_000 });
    expectForbidden(res, "data.entity.update", "employees");
    expect(res.body.error.message).toContain("salary");
    const theirs = await b.as("a", "PATCH", `/api/data/employees/${b.rows.high}`, { ssn: "999" });
    expectForbidden(theirs, "data.entity.update", "employees");
    expect(theirs.body.error.message).toContain("ssn");
    const many = await b.as("a", "PATCH", "/api/data/employees", {
      update: { ssn: "000" },
      where: { name: { $like: "*" } },
    });
    expectForbidden(many, "data.entity.update", "employees");
    const rows = await dbRows(b.server, "SELECT salary, ssn FROM employees ORDER BY id");
    expect(rows.map((r) => [r.salary, r.ssn])).toEqual([
      [500, "ssn-111"],
      [9000, "ssn-222"],
      [100, "ssn-333"],
    ]);
  });

  it("where a write rule holds the write goes through; the response hides what the read rule hides (9.4, 4.10)", async () => {
    const own = await b.as("a", "PATCH", `/api/data/employees/${b.rows.own}`, { ssn: "112" });
    expect(own.status, own.text).toBe(200);
    expect(own.body.data.ssn).toBe("112");
    const other = await b.as("a", "PATCH", `/api/data/employees/${b.rows.low}`, { name: "B low" });
    expect(other.status, other.text).toBe(200);
    expect(other.body.data).not.toHaveProperty("salary");
    const admin = await b.as("root", "PATCH", `/api/data/employees/${b.rows.low}`, { salary: 101 });
    expect(admin.status, admin.text).toBe(200);
    await b.as("root", "PATCH", `/api/data/employees/${b.rows.low}`, { salary: 100 });
    await b.as("a", "PATCH", `/api/data/employees/${b.rows.own}`, { ssn: "ssn-111" });
  });

  it("explain shows the field rules as SQL (9.4, 4.15)", async () => {
    const res = await b.as("root", "GET", "/api/system/explain?role=user&permission=data.entity.read&entity=employees");
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body.data.row_fields ?? {}).sort()).toEqual(["salary", "ssn"]);
    expect(res.body.data.row_fields.salary).toContain("user_id");
    expect(res.body.data.fields).not.toContain("author_ip");
  });
});
