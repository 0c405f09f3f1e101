/**
 * Issue 12: the differential property test of the guard grown to rules and field rules (§4.3, §4.12, §9.1,
 * §9.4). Random roles read items under a policy whose `rule` is a filter or an allow (with per-row field
 * rules `fields: { f: { read } }`), beside a deny entry with a rule; items has random entity `field_rules`;
 * random rows, users with random claims (present or missing) and anonymous callers. Over HTTP on the engine
 * under test, list / count / read one answer exactly what the reference of `./rule-arbs.ts` predicts: which
 * rows, and which fields each row shows. Then a property with no oracle: changing the values a caller
 * cannot read (on rows where the field's read rule fails) changes none of its where, sort and count answers.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";
import {
  claimsArb,
  evalRule,
  foldRule,
  ITEM_FIELDS,
  type ItemField,
  itemArb,
  loginWithClaims,
  otherArb,
  printRule,
  type Row,
  type Rule,
  type RuleCaller,
  ruleArb,
  ruleSchema,
  type Scalar,
  type Tables,
  type Tri,
} from "./rule-arbs.js";

const READ = "data.entity.read";
const SECRET = "rules-property-secret-0123456789-abcdefghijklmnopq";
const PASSWORD = "pass-word-1234";
const ROLE_NAMES = ["r0", "r1", "r2"];
/** Rules never mention `e`, so its hidden values can be changed without changing any decision. */
const QUIET: ItemField = "e";
/** Empty `in` lists included: `x not in []` is TRUE on every row, NULL x too (ast.ts `certainly` agrees). */
const ruleOf = ruleArb(2, [QUIET]);

interface RoleCase {
  effect: "filter" | "allow";
  rule: Rule;
  fields: Partial<Record<ItemField, Rule>>;
  deny?: Rule;
}
interface Case {
  roles: RoleCase[];
  entityRules: Partial<Record<ItemField, Rule>>;
  items: Omit<Row, "id">[];
  others: Omit<Row, "id">[];
  /** per user: its role index and its extra claims */
  users: { role: number; claims: { dept?: string; level?: number; flag?: boolean } }[];
  wheres: Where[];
}

type Where = { field: ItemField; op: string; value: Scalar | Scalar[]; not: boolean };

const fieldRulesArb = fc.record({ t: ruleOf, n: ruleOf, b: ruleOf, e: ruleOf }, { requiredKeys: [] }) as fc.Arbitrary<
  Partial<Record<ItemField, Rule>>
>;

const VALUES: Record<ItemField, Scalar[]> = {
  t: ["a", "b", "ab", "B"],
  n: [-1, 0, 1, 2.5, 3],
  b: [true, false],
  e: ["x", "y", "z"],
};
const whereArb: fc.Arbitrary<Where> = fc.constantFrom(...ITEM_FIELDS).chain((field) =>
  fc.record({
    field: fc.constant(field),
    not: fc.boolean(),
    ...(field === "b"
      ? {
          op: fc.constantFrom("$eq", "$ne", "$in", "$isnull"),
          value: fc.boolean() as fc.Arbitrary<Scalar | Scalar[]>,
        }
      : {
          op: fc.constantFrom("$eq", "$ne", "$gt", "$lte", "$in", "$nin", "$isnull"),
          value: fc.constantFrom(...VALUES[field]) as fc.Arbitrary<Scalar | Scalar[]>,
        }),
  }),
);

const caseArb: fc.Arbitrary<Case> = fc.record({
  roles: fc.array(
    fc.record(
      {
        effect: fc.constantFrom<"filter" | "allow">("filter", "allow"),
        rule: ruleOf,
        fields: fieldRulesArb,
        deny: ruleOf,
      },
      { requiredKeys: ["effect", "rule", "fields"] },
    ),
    { minLength: ROLE_NAMES.length, maxLength: ROLE_NAMES.length },
  ),
  entityRules: fieldRulesArb,
  items: fc.array(itemArb(4), { minLength: 6, maxLength: 9 }),
  others: fc.array(otherArb(6), { minLength: 3, maxLength: 6 }),
  users: fc.array(fc.record({ role: fc.nat({ max: ROLE_NAMES.length - 1 }), claims: claimsArb }), {
    minLength: 4,
    maxLength: 4,
  }),
  wheres: fc.array(whereArb, { minLength: 5, maxLength: 5 }),
}) as fc.Arbitrary<Case>;

function configFor(c: Case) {
  const data = ruleSchema.toJSON();
  const texts = (rules: Partial<Record<ItemField, Rule>>) =>
    Object.fromEntries(Object.entries(rules).map(([f, r]) => [f, { read: printRule(r) }]));
  if (Object.keys(c.entityRules).length > 0)
    // biome-ignore lint/suspicious/noExplicitAny: the schema JSON is edited in place
    (data.entities.items as any).config = { field_rules: texts(c.entityRules) };
  const on = { condition: { entity: "items" } };
  const roles = Object.fromEntries(
    c.roles.map((r, i) => [
      ROLE_NAMES[i]!,
      {
        is_default: i === 0,
        permissions: [
          {
            permission: READ,
            effect: "allow",
            policies: [
              {
                ...on,
                effect: r.effect,
                rule: printRule(r.rule),
                ...(Object.keys(r.fields).length > 0 ? { fields: texts(r.fields) } : {}),
              },
            ],
          },
          ...(r.deny
            ? [{ permission: READ, effect: "deny", policies: [{ ...on, effect: "allow", rule: printRule(r.deny) }] }]
            : []),
        ],
      },
    ]),
  );
  return {
    data,
    auth: {
      enabled: true,
      jwt: { secret: SECRET },
      guard: { enabled: true },
      password: { argon2: { memory_cost: 1024, time_cost: 1 } },
      rate_limit: { max_per_email: 100_000, max_per_address: 100_000 },
      roles,
    },
  };
}

// ---------- the reference (§4.3, §4.12, §9.1, §9.4) ----------

interface Expected {
  status: 200 | 403;
  /** rows the caller reads, with the fields each shows */
  rows: Map<number, Set<ItemField>>;
  /** fields no row shows: naming one in a where is 400 (§4.8) */
  removed: Set<ItemField>;
}

/** What a caller reads: on a list (`id` undefined), or on the route naming row `id`. */
function expectedFor(c: Case, tables: Tables, caller: RuleCaller, roleIndex: number, id?: number): Expected {
  const r = c.roles[roleIndex]!;
  const none = { status: 403 as const, rows: new Map(), removed: new Set<ItemField>() };
  const granted = r.effect === "filter" || foldRule(r.rule, caller, id).certain !== false;
  if (!granted || (r.deny && foldRule(r.deny, caller, id).possible === true)) return none;
  // an allow whose rule depends on the row is a condition on the row (§4.12): its field rules bind only the rows
  // it may reach, as read-one of each row would; elsewhere they hold (rule' = NOT possible OR rule, §9.4)
  const perRow = r.effect === "allow" && foldRule(r.rule, caller, id).possible === "row";
  const wholeRulesOf = (f: ItemField) => [c.entityRules[f], perRow ? undefined : r.fields[f]];
  const removed = new Set(
    ITEM_FIELDS.filter((f) => wholeRulesOf(f).some((x) => x !== undefined && foldRule(x, caller).certain === false)),
  );
  const rows = new Map<number, Set<ItemField>>();
  for (const row of tables.items) {
    const env = { caller, tables, row };
    if (evalRule(r.rule, env).certain !== true) continue;
    if (r.deny && evalRule(r.deny, env).possible !== false) continue;
    // (a row the allow grants is one it reaches; a second grant would show rows it does not)
    const reaches = !perRow || evalRule(r.rule, env).possible !== false;
    const holds = (x: Rule | undefined, binds: boolean) =>
      x === undefined || !binds || evalRule(x, env).certain === true;
    const shown = ITEM_FIELDS.filter(
      (f) => !removed.has(f) && holds(c.entityRules[f], true) && holds(r.fields[f], reaches),
    );
    rows.set(row.id, new Set(shown));
  }
  return { status: 200, rows, removed };
}

/**
 * A caller's where on one field: SQL's logic on the value, and FALSE on rows where the field is hidden, under a
 * `$not` too (§9.4).
 */
function whereHolds(w: Where, row: Row, shown: boolean): Tri {
  const v = row[w.field] ?? null;
  const cmp = (x: Scalar, y: Scalar, test: (a: number | string, b: number | string) => boolean): Tri =>
    x === null || y === null
      ? null
      : test(typeof x === "boolean" ? Number(x) : x, typeof y === "boolean" ? Number(y) : y);
  const list = Array.isArray(w.value) ? w.value : [w.value];
  const inList = (): Tri =>
    list.length === 0
      ? false
      : list
          .map((x) => cmp(v, x, (a, b) => a === b))
          .reduce((a, b) => (a === true || b === true ? true : a === null || b === null ? null : false));
  let leaf: Tri;
  switch (w.op) {
    case "$eq":
      leaf = cmp(v, w.value as Scalar, (a, b) => a === b);
      break;
    case "$ne":
      leaf = cmp(v, w.value as Scalar, (a, b) => a !== b);
      break;
    case "$gt":
      leaf = cmp(v, w.value as Scalar, (a, b) => a > b);
      break;
    case "$lte":
      leaf = cmp(v, w.value as Scalar, (a, b) => a <= b);
      break;
    case "$in":
      leaf = inList();
      break;
    case "$nin": {
      const found = inList();
      leaf = found === null ? null : !found;
      break;
    }
    default:
      leaf = (v === null) === Boolean(w.value);
  }
  // the where sees the field only where it is shown, whether or not it negates the comparison
  if (!shown) return false;
  return w.not ? (leaf === null ? null : !leaf) : leaf;
}

const whereJSON = (w: Where) => {
  const value = w.op === "$in" || w.op === "$nin" ? [w.value] : w.op === "$isnull" ? Boolean(w.value) : w.value;
  const leaf = { [w.field]: { [w.op]: value } };
  return w.not ? { $not: leaf } : leaf;
};
const normalized = (w: Where): Where => ({
  ...w,
  value: w.op === "$in" || w.op === "$nin" ? [w.value as Scalar] : w.value,
});

// ---------- running a case ----------

const q = (v: unknown) => encodeURIComponent(JSON.stringify(v));

interface Subject {
  name: string;
  caller: RuleCaller;
  role: number;
  headers: Record<string, string>;
}

async function boot(c: Case): Promise<{ server: TestServer; subjects: Subject[]; tables: Tables }> {
  const server = await startServer(configFor(c) as never, {
    options: {
      seed: async (ctx) => {
        for (const [i, u] of c.users.entries())
          await ctx.app.module.auth.createUser({
            email: `u${i}@test.com`,
            password: PASSWORD,
            role: ROLE_NAMES[u.role],
          });
        await ctx.app.module.data.create("items", c.items);
        if (c.others.length > 0) await ctx.app.module.data.create("others", c.others);
      },
    },
  });
  try {
    const subjects: Subject[] = [{ name: "anonymous", caller: { role: ROLE_NAMES[0]! }, role: 0, headers: {} }];
    for (const [i, u] of c.users.entries()) {
      const { claims, headers } = await loginWithClaims(server, `u${i}@test.com`, PASSWORD, SECRET, u.claims);
      const role = ROLE_NAMES[u.role]!;
      subjects.push({
        name: `user ${i + 1} (${role}, ${JSON.stringify(u.claims)})`,
        caller: { role, user: { id: claims.id as number, role, ...u.claims } },
        role: u.role,
        headers,
      });
    }
    return { server, subjects, tables: await readTables(server) };
  } catch (error) {
    await server.close();
    throw error;
  }
}

async function readTables(server: TestServer): Promise<Tables> {
  const items = (await server.rows("SELECT id, t, n, b, e, owner_id FROM items ORDER BY id")).map(
    (r) => ({ ...r, b: r.b === null ? null : !!r.b }) as unknown as Row,
  );
  const others = (await server.rows("SELECT id, t, n, item_id FROM others ORDER BY id")) as Row[];
  return { items, others };
}

const seen = new Map<string, number>();
const tally = (key: string) => seen.set(key, (seen.get(key) ?? 0) + 1);

function describeCase(c: Case, s: Subject) {
  const r = c.roles[s.role]!;
  const rules = (x: Partial<Record<ItemField, Rule>>) =>
    JSON.stringify(Object.fromEntries(Object.entries(x).map(([f, v]) => [f, printRule(v)])));
  return `${s.name}: ${r.effect} "${printRule(r.rule)}"${r.deny ? `, deny "${printRule(r.deny)}"` : ""}, policy fields ${rules(
    r.fields,
  )}, entity fields ${rules(c.entityRules)}`;
}

async function checkReads(server: TestServer, c: Case, tables: Tables, subjects: Subject[]) {
  for (const s of subjects) {
    const want = expectedFor(c, tables, s.caller, s.role);
    const about = describeCase(c, s);
    const res = await server.request("GET", "/api/data/items?limit=100&sort=id", undefined, s.headers);
    expect(res.status, `list as ${about}: ${res.text}`).toBe(want.status);
    tally(
      `list ${want.status} ${want.rows.size === 0 ? "none" : want.rows.size === tables.items.length ? "all" : "some"}`,
    );
    if (want.status !== 200) continue;
    const shownOf = (row: Record<string, unknown>) => ITEM_FIELDS.filter((f) => f in row);
    expect(
      res.body.data.map((r: Row) => [r.id, shownOf(r)]),
      `rows and fields as ${about}`,
    ).toEqual([...want.rows].map(([id, fields]) => [id, [...fields]]));
    for (const row of res.body.data as Row[]) {
      const stored = tables.items.find((t) => t.id === row.id)!;
      for (const f of shownOf(row)) expect(row[f], `${f} of #${row.id}`).toEqual(stored[f]);
      const partial = ITEM_FIELDS.filter((f) => !want.removed.has(f)).length !== want.rows.get(row.id)!.size;
      tally(partial ? "row with a hidden field" : "row whole");
    }
    for (const w of c.wheres) {
      const where = whereJSON(w);
      const [list, count] = await Promise.all([
        server.request("GET", `/api/data/items?limit=100&sort=id&where=${q(where)}`, undefined, s.headers),
        server.request("GET", `/api/data/items/count?where=${q(where)}`, undefined, s.headers),
      ]);
      const what = `where ${JSON.stringify(where)} as ${about}`;
      if (want.removed.has(w.field)) {
        expect(list.status, `${what}: ${list.text}`).toBe(400);
        expect(count.status, `${what}: ${count.text}`).toBe(400);
        tally("where on a removed field");
        continue;
      }
      const ids = [...want.rows]
        .filter(
          ([id, fields]) =>
            whereHolds(normalized(w), tables.items.find((t) => t.id === id)!, fields.has(w.field)) === true,
        )
        .map(([id]) => id);
      expect(list.status, `${what}: ${list.text}`).toBe(200);
      expect(
        list.body.data.map((r: Row) => r.id),
        what,
      ).toEqual(ids);
      expect(count.body.data.count, `count ${what}`).toBe(ids.length);
      const ruled = [...want.rows.values()].some((f) => !f.has(w.field));
      tally(`where ${ruled ? "on a field hidden on some rows" : "plain"}`);
    }
    const maxId = tables.items.length + 1;
    const ones = await Promise.all(
      Array.from({ length: maxId }, (_, i) => server.request("GET", `/api/data/items/${i + 1}`, undefined, s.headers)),
    );
    for (const [i, one] of ones.entries()) {
      const wantOne = expectedFor(c, tables, s.caller, s.role, i + 1);
      const fields = wantOne.rows.get(i + 1);
      expect(one.status, `read #${i + 1} as ${about}: ${one.text}`).toBe(
        wantOne.status === 403 ? 403 : fields ? 200 : 404,
      );
      if (fields) expect(shownOf(one.body.data), `fields of #${i + 1} as ${about}`).toEqual([...fields]);
    }
  }
}

/**
 * §9.4 with no oracle: on the rows a caller reads with `e` hidden, give `e` other values (no rule mentions
 * it); every where, sort and count naming `e` answers as before.
 */
async function checkNoOracle(server: TestServer, c: Case, tables: Tables, subjects: Subject[], fresh: Scalar[]) {
  const probes = [
    ...["x", "y", "z"].flatMap((v) => [{ e: v }, { e: { $ne: v } }, { $not: { e: v } }, { e: { $gt: v } }]),
    { e: { $isnull: true } },
    { $not: { e: { $isnull: false } } },
    { e: { $in: ["x", "y"] } },
    { $not: { e: { $nin: ["z"] } } },
  ];
  const ask = async (s: Subject) =>
    Promise.all([
      ...probes.flatMap((where) => [
        server.request("GET", `/api/data/items?limit=100&sort=id&where=${q(where)}`, undefined, s.headers),
        server.request("GET", `/api/data/items/count?where=${q(where)}`, undefined, s.headers),
      ]),
      server.request("GET", "/api/data/items?limit=100&sort=e", undefined, s.headers),
      server.request("GET", "/api/data/items?limit=100&sort=-e", undefined, s.headers),
    ]).then((answers) => answers.map((a) => [a.status, a.body?.data]));
  for (const s of subjects) {
    const want = expectedFor(c, tables, s.caller, s.role);
    if (want.status !== 200 || want.removed.has(QUIET)) continue;
    const hidden = [...want.rows].filter(([, fields]) => !fields.has(QUIET)).map(([id]) => id);
    if (hidden.length === 0) continue;
    tally("no-oracle subject");
    const before = await ask(s);
    for (const [i, id] of hidden.entries())
      await server.rows("UPDATE items SET e = ? WHERE id = ?", fresh[i % fresh.length] ?? null, id);
    const after = await ask(s);
    expect(after, `changing e on hidden rows ${JSON.stringify(hidden)} as ${describeCase(c, s)}`).toEqual(before);
    // put the stored values back for the next subject
    for (const id of hidden)
      await server.rows("UPDATE items SET e = ? WHERE id = ?", tables.items.find((t) => t.id === id)!.e ?? null, id);
  }
}

async function runCase(c: Case, fresh: Scalar[]) {
  const { server, subjects, tables } = await boot(c);
  try {
    await checkReads(server, c, tables, subjects);
    await checkNoOracle(server, c, tables, subjects, fresh);
  } finally {
    await server.close();
  }
}

const NULLS = { t: null, n: null, b: null, e: null, owner_id: null };
const PLAIN = {
  roles: [0, 1, 2].map(() => ({ effect: "filter" as const, rule: { k: "const", value: true } as Rule, fields: {} })),
};

describe("rules and field rules agree with the SPEC reference over HTTP (4.3, 4.12, 9.1, 9.4)", () => {
  it("a field rule 'id == user.id' on read one: the row's own id, not a 500 (9.4, 4.12)", () =>
    runCase(
      {
        ...PLAIN,
        entityRules: {
          t: {
            k: "cmp",
            left: { k: "row", field: "id", as: "bare" },
            op: "==",
            right: { k: "claim", name: "user.id" },
          },
        },
        items: [{ ...NULLS, t: "a" }, { ...NULLS, t: "b" }, NULLS],
        others: [],
        users: [0, 1, 2, 0].map((role) => ({ role, claims: {} })),
        wheres: [{ field: "t", op: "$eq", value: "a", not: true }],
      },
      ["x"],
    ));

  it("a filter policy whose rule is false for the role matches no row; it does not take the permission away (9.1, 4.3)", () =>
    runCase(
      {
        ...PLAIN,
        roles: [
          { effect: "filter", rule: { k: "role", roles: ["r1"], any: false }, fields: {} },
          ...PLAIN.roles.slice(1),
        ],
        entityRules: {},
        items: [NULLS, { ...NULLS, e: "x" }],
        others: [],
        users: [0, 1].map((role) => ({ role, claims: {} })),
        wheres: [{ field: "e", op: "$eq", value: "x", not: false }],
      },
      ["y"],
    ));

  // src/query/ast.ts `certainly`: `x not in []` is TRUE for NULL x too
  it("where on a field whose read rule is 'n not in []' sees every row, NULL n included (9.4, 2.2)", () =>
    runCase(
      {
        ...PLAIN,
        entityRules: { t: { k: "in", negated: true, left: { k: "row", field: "n", as: "bare" }, values: [] } },
        items: [NULLS, { ...NULLS, n: 1 }, { ...NULLS, t: "a" }],
        others: [],
        users: [],
        wheres: [{ field: "t", op: "$eq", value: "a", not: true }],
      },
      ["x"],
    ));

  it("property: list, count, where and read one show the reference's rows and fields; hidden values are no oracle", async () => {
    await fc.assert(
      fc.asyncProperty(
        caseArb,
        fc.array(fc.constantFrom<Scalar>("x", "y", "z", null), { minLength: 1, maxLength: 4 }),
        runCase,
      ),
      {
        numRuns: Number(process.env.RULES_PROPERTY_RUNS ?? 15),
        ...(process.env.RULES_PROPERTY_SEED ? { seed: Number(process.env.RULES_PROPERTY_SEED) } : {}),
      },
    );
    if (process.env.RULES_PROPERTY_STATS) console.log(Object.fromEntries([...seen].sort()));
  }, 300_000);
});
