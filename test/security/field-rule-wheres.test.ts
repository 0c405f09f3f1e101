/**
 * §9.4 over HTTP: a caller's where that names a field readable only on some rows sees only the rows where its
 * rule holds, whatever the where's boolean structure. The rule is not a guard on each comparison (a `$not`
 * around `rule AND salary < 100` would select exactly the rows where the rule fails, the hidden ones) but on
 * the where as a whole, on every hop: list, count, exists, `with`, relation paths, `$exists`, update-many,
 * delete-many and the change feed's where.
 *
 * The fixture: `salary` is readable by admins and by the row's owner. User a owns "A" (500); b's three rows
 * differ only in their salaries (9000, 100, NULL), so a probe is an oracle exactly when it tells them apart,
 * or answers otherwise once their salaries are shuffled.
 */
import { em, entity, number, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANON, type Booted, boot, dbRows, guardedApp, q, READ_WRITE_ROLES, type Row } from "../guard/helpers.js";
import { bearer } from "../helpers/auth.js";
import { openFeed } from "../helpers/sse.js";

const schema = em(
  {
    departments: entity("departments", { name: text().required() }),
    employees: entity(
      "employees",
      { name: text().required(), salary: number(), note: text() },
      { field_rules: { salary: { read: "@has_role('admin') or @owns_record()" } } },
    ),
    users: entity("users", {}),
  },
  ({ departments, employees, users }) => [
    relation(employees, "user").manyToOne(users, { owner: true }),
    relation(employees, "department").manyToOne(departments),
  ],
);

// anonymous: @owns_record() is UNKNOWN on every row, never TRUE
const app = guardedApp(schema, READ_WRITE_ROLES, { feed: { poll_ms: 50 } });

/** b's rows, whose salaries a and anonymous callers may not read. */
const HIDDEN = ["B high", "B low", "B none"];
const SALARIES = [9000, 100, null];

interface Rows {
  rnd: number;
  ops: number;
  employees: Record<string, number>;
}

describe("a where naming a rule-bound field sees only rows where the rule holds (9.4)", () => {
  let b: Booted<Rows>;
  beforeAll(async () => {
    b = await boot(app, {
      users: { a: "user", b: "user", root: "admin" },
      rows: async (ctx, ids) => {
        const [rnd, ops] = (await ctx.app.module.data.create("departments", [
          { name: "R&D" },
          { name: "Ops" },
        ])) as Row[];
        const made = (await ctx.app.module.data.create("employees", [
          { name: "A", salary: 500, user_id: ids.a, department_id: rnd!.id },
          { name: "B high", salary: SALARIES[0], user_id: ids.b, department_id: rnd!.id },
          { name: "B low", salary: SALARIES[1], user_id: ids.b, department_id: ops!.id },
          { name: "B none", salary: SALARIES[2], user_id: ids.b, department_id: ops!.id },
        ])) as Row[];
        return {
          rnd: rnd!.id as number,
          ops: ops!.id as number,
          employees: Object.fromEntries(made.map((r) => [r.name, r.id as number])),
        };
      },
    });
  });
  afterAll(async () => {
    await b?.server.close();
  });

  const names = async (who: string, path: string): Promise<string[]> => {
    const res = await b.as(who, "GET", path);
    expect(res.status, `${path}: ${res.text}`).toBe(200);
    return (res.body.data as Row[]).map((r) => r.name as string);
  };
  const employees = (who: string, where: unknown) => names(who, `/api/data/employees?sort=id&where=${q(where)}`);
  const count = async (who: string, where: unknown): Promise<number> => {
    const res = await b.as(who, "GET", `/api/data/employees/count?where=${q(where)}`);
    expect(res.status, res.text).toBe(200);
    return res.body.data.count as number;
  };

  /** Probes of the employees whose answer for a is exactly "A" or nothing: never one of b's rows. */
  const PROBES: [unknown, string[]][] = [
    [{ $not: { salary: { $lt: 100 } } }, ["A"]],
    [{ $not: { salary: { $isnull: true } } }, ["A"]],
    [{ salary: { $isnull: true } }, []],
    [{ $not: { salary: { $gt: 1000 } } }, ["A"]],
    [{ $not: { salary: 9000 } }, ["A"]],
    [{ salary: { $nin: [9000] } }, ["A"]],
    [{ $or: [{ salary: { $gt: 1000 } }, { name: "B high" }] }, []],
    [{ $or: [{ salary: 500 }, { name: { $like: "B*" } }] }, ["A"]],
    [{ $not: { $or: [{ salary: { $gt: 1000 } }, { name: "nobody" }] } }, ["A"]],
    [{ $and: [{ name: { $like: "*" } }, { $not: { $and: [{ salary: { $gte: 0 } }, { name: "B high" }] } }] }, ["A"]],
    [{ $not: { $not: { $not: { salary: { $isnull: false } } } } }, []],
    [{ $or: [{ $not: { salary: { $isnull: true } } }, { $not: { salary: { $isnull: false } } }] }, ["A"]],
  ];

  it("$not, $or with another field, nested $and/$not and $isnull match no row where the rule fails, NULL or not (9.4)", async () => {
    for (const [where, want] of PROBES) {
      expect(await employees("a", where), JSON.stringify(where)).toEqual(want);
      // anonymous callers hold the rule on no row (UNKNOWN, not TRUE): nothing, whatever the where
      expect(await employees(ANON, where), `anonymous ${JSON.stringify(where)}`).toEqual([]);
    }
    // the rule holds on every row for the admin: its where sees every salary
    expect(await employees("root", { $not: { salary: { $isnull: true } } })).toEqual(["A", "B high", "B low"]);
    expect(await employees("root", { $not: { salary: { $lt: 1000 } } })).toEqual(["B high"]);
  });

  it("count, exists and POST query answer as the list does (9.4, 2.1)", async () => {
    for (const [where, want] of PROBES) {
      expect(await count("a", where), `count ${JSON.stringify(where)}`).toBe(want.length);
      const exists = await b.as("a", "GET", `/api/data/employees/exists?where=${q(where)}`);
      expect(exists.status, exists.text).toBe(200);
      expect(exists.body.data.exists, `exists ${JSON.stringify(where)}`).toBe(want.length > 0);
      const query = await b.as("a", "POST", "/api/data/employees/query", { where });
      expect(query.status, query.text).toBe(200);
      expect(query.body.meta.count, `meta.count ${JSON.stringify(where)}`).toBe(want.length);
    }
  });

  /** Probes from departments, through relation paths and `$exists`: each hop under its own entity's rules. */
  const HOPS: [unknown, string[]][] = [
    [{ employees: { $some: { $not: { salary: { $lt: 100 } } } } }, ["R&D"]],
    [{ employees: { $some: { $not: { salary: { $isnull: true } } } } }, ["R&D"]],
    [{ employees: { $some: { $or: [{ salary: { $gt: 1000 } }, { name: "B high" }] } } }, []],
    [{ employees: { $none: { $not: { salary: { $isnull: true } } } } }, ["Ops"]],
    // a related row whose salary the where cannot see does not satisfy it
    [{ employees: { $every: { $not: { salary: { $isnull: true } } } } }, []],
    [
      { $exists: { entity: "employees", where: { department_id: "@row.id", $not: { salary: { $lt: 100 } } } } },
      ["R&D"],
    ],
    [
      { $not: { $exists: { entity: "employees", where: { department_id: "@row.id", salary: { $isnull: true } } } } },
      ["R&D", "Ops"],
    ],
  ];

  it("relation paths, $some/$none/$every and $exists see the field only on related rows where its rule holds (9.4, 4.13)", async () => {
    for (const [where, want] of HOPS)
      expect(await names("a", `/api/data/departments?sort=id&where=${q(where)}`), JSON.stringify(where)).toEqual(want);
    // and from the employees' side, a path back to the department and out again
    const around = { department: { employees: { $some: { $not: { salary: { $isnull: true } } } } } };
    expect(await employees("a", around)).toEqual(["A", "B high"]);
  });

  it("with: a related list's where sees the field only where its rule holds (9.4, 4.5)", async () => {
    const where = { $not: { salary: { $lt: 100 } } };
    const res = await b.as("a", "GET", `/api/data/departments?sort=id&with=${q({ employees: { where } })}`);
    expect(res.status, res.text).toBe(200);
    expect((res.body.data as Row[]).map((d) => [d.name, (d.employees as Row[]).map((e) => e.name)])).toEqual([
      ["R&D", ["A"]],
      ["Ops", []],
    ]);
  });

  it("no oracle: shuffling the hidden salaries changes no answer to a, to anonymous or through a hop (9.4)", async () => {
    const answers = async () => {
      const out: unknown[] = [];
      for (const who of ["a", ANON]) {
        for (const [where] of PROBES) out.push(await employees(who, where), await count(who, where));
        for (const [where] of HOPS) out.push(await names(who, `/api/data/departments?sort=id&where=${q(where)}`));
      }
      return out;
    };
    const set = async (salaries: (number | null)[]) => {
      for (const [i, name] of HIDDEN.entries())
        await dbRows(b.server, "update employees set salary = ? where id = ?", salaries[i], b.rows.employees[name]);
    };
    const before = await answers();
    try {
      for (const shuffled of [
        [null, 9000, 100],
        [100, null, 9000],
        [500, 500, 500],
        [null, null, null],
      ]) {
        await set(shuffled);
        expect(await answers(), `salaries ${JSON.stringify(shuffled)}`).toEqual(before);
      }
    } finally {
      await set(SALARIES);
    }
  });

  it("update-many and delete-many reach only rows where the rule holds (9.4, 2.4)", async () => {
    const res = await b.as("a", "PATCH", "/api/data/employees", {
      update: { note: "touched" },
      where: { $not: { salary: { $isnull: true } } },
    });
    expect(res.status, res.text).toBe(200);
    expect((res.body.data as Row[]).map((r) => r.name)).toEqual(["A"]);
    const gone = await b.as("a", "DELETE", "/api/data/employees", {
      name: { $like: "B*" },
      $not: { salary: { $lt: 100 } },
    });
    expect(gone.status, gone.text).toBe(200);
    expect(gone.body.data).toEqual([]);
    const rows = await dbRows(b.server, "select name, note from employees order by id");
    expect(rows.map((r) => [r.name, r.note])).toEqual([
      ["A", "touched"],
      ["B high", null],
      ["B low", null],
      ["B none", null],
    ]);
  });

  it("the change feed's where sees the field only where its rule holds (8.2, 9.4)", async () => {
    const where = { $not: { salary: { $isnull: true } } };
    const feed = await openFeed(b.server.url, `/api/data/employees/changes?where=${q(where)}`, bearer(b.tokens.a));
    expect(feed.status, JSON.stringify(feed.body)).toBe(200);
    try {
      const made = await b.as("root", "POST", "/api/data/employees", [
        { name: "feed hidden null", user_id: b.ids.b },
        { name: "feed hidden set", salary: 1, user_id: b.ids.b },
        { name: "feed own", salary: 1, user_id: b.ids.a },
      ]);
      expect(made.status, made.text).toBe(201);
      // events come in outbox order: once "feed own" is here, the two before it were judged
      await feed.until((e) => e.data?.record?.name === "feed own", "a's own row");
      expect(feed.changes().map((e) => e.data.record.name)).toEqual(["feed own"]);
    } finally {
      feed.close();
    }
  });
});
