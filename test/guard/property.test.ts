/**
 * Issue 4 item 9, a differential property test of the guard (SPEC §4): random roles, permission entries,
 * policies, conditions, filters with placeholders and relations (§4.13), rows linked by random keys, users and
 * callers' wheres (`./property-arbs.ts`). One real server per case, driven over HTTP; every answer is compared
 * with the in-memory reference of `./reference.ts`, which is written from the SPEC alone. Covered: list (ids,
 * rows, meta.count, meta.total), count, exists, read one of every id, `with` on every relation of both (each
 * embedded row exactly the related rows the caller may read, §4.5), update one, delete one, update many, delete
 * many (status codes and the database afterwards, read with a trusted path).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { startServer, type TestResponse, type TestServer } from "../helpers/server.js";
import {
  type Case,
  caseArb,
  DELETE,
  ENTITIES,
  type EntityName,
  emailOf,
  READ,
  SCHEMA,
  schemaJSON,
  UPDATE,
  VISIBLE,
  WITH,
  type WriteOp,
} from "./property-arbs.js";
import {
  type Caller,
  decide,
  defaultRole,
  deniedForEveryRow,
  embedded,
  list,
  type Model,
  type Roles,
  type Row,
  readerOf,
  readOne,
  type Scalar,
  type Tables,
  type Where,
  writeMany,
  writeOne,
} from "./reference.js";

const PASSWORD = "pass-word-1234";
const SECRET = "property-test-secret-0123456789-abcdefghijklmnop";

function configFor(roles: Roles) {
  return {
    data: schemaJSON,
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

const isOne = (op: WriteOp): op is Extract<WriteOp, { id: number }> =>
  op.kind === "updateOne" || op.kind === "deleteOne";

// ---------- running a case ----------

const q = (v: unknown) => encodeURIComponent(JSON.stringify(v));
const idsOf = (res: TestResponse): number[] => (res.body.data as { id: number }[]).map((r) => r.id);

/** Columns read back per table; booleans are stored as 0/1. */
const STORED: Record<string, { columns: readonly string[]; booleans: string[] }> = {
  docs: { columns: SCHEMA.docs!.fields, booleans: ["flag"] },
  notes: { columns: SCHEMA.notes!.fields, booleans: ["pinned"] },
  tags: { columns: SCHEMA.tags!.fields, booleans: [] },
  users: { columns: SCHEMA.users!.fields, booleans: [] },
  docs_tags: { columns: ["id", "docs_id", "tags_id"], booleans: [] },
};

/** The tables as stored, read with a trusted path (the database directly, outside the guard). */
async function readTables(server: TestServer): Promise<Tables> {
  const decode = (r: Record<string, Scalar>, bools: string[]) =>
    Object.fromEntries(Object.entries(r).map(([k, v]) => [k, bools.includes(k) && v !== null ? v === 1 : v])) as Row;
  const tables: Tables = {};
  for (const [table, { columns, booleans }] of Object.entries(STORED)) {
    const rows = await server.rows(`SELECT ${columns.join(", ")} FROM ${table} ORDER BY id`);
    tables[table] = rows.map((r) => decode(r, booleans));
  }
  return tables;
}

interface Subject {
  name: string;
  caller: Caller;
  headers: Record<string, string>;
}

/** Start one server for the case, seed users, rows and links, log every user in. */
async function boot(c: Case): Promise<{ server: TestServer; subjects: Subject[] }> {
  const userIds: number[] = [];
  const server = await startServer(configFor(c.roles), {
    options: {
      seed: async (ctx) => {
        const auth = ctx.app.module.auth;
        for (const [i, role] of c.users.entries()) {
          const user = await auth.createUser({ email: emailOf(i), password: PASSWORD, role });
          userIds.push(user.id as number);
        }
        const data = ctx.app.module.data;
        await data.create(
          "docs",
          c.rows.docs.map(({ secret, ...rest }) => rest),
        );
        // a hidden field is not written through the data API: set it with the trusted connection
        for (const [i, d] of c.rows.docs.entries())
          if (d.secret !== null)
            await ctx.db
              .updateTable("docs")
              .set({ secret: d.secret })
              .where("id", "=", i + 1)
              .execute();
        await data.create("tags", c.rows.tags);
        await data.create("notes", c.rows.notes);
        if (c.rows.docs_tags.length > 0)
          await ctx.db
            .insertInto("docs_tags")
            .values(c.rows.docs_tags.map(([docs_id, tags_id]) => ({ docs_id, tags_id })))
            .execute();
      },
    },
  });
  try {
    const subjects: Subject[] = [];
    for (const [i, role] of c.users.entries()) {
      const res = await server.request("POST", "/api/auth/password/login", { email: emailOf(i), password: PASSWORD });
      expect(res.status, `login ${emailOf(i)}: ${res.text}`).toBe(200);
      expect(userIds[i]).toBe(i + 1);
      subjects.push({
        name: `user ${i + 1} (role ${role})`,
        caller: { role, user: { id: i + 1, email: emailOf(i), role } },
        headers: { authorization: `Bearer ${res.body.token}` },
      });
    }
    subjects.push({ name: `anonymous (default role ${defaultRole(c.roles) ?? "none"})`, caller: {}, headers: {} });
    return { server, subjects };
  } catch (error) {
    await server.close();
    throw error;
  }
}

/** How often each kind of answer came up; printed with GUARD_PROPERTY_STATS=1 to judge the generators. */
const seen = new Map<string, number>();
const tally = (key: string) => seen.set(key, (seen.get(key) ?? 0) + 1);

function expectStatus(res: { status: number; text: string; body: unknown }, status: number, what: string) {
  tally(`${what.split(" ")[0]} ${status}`);
  expect(res.status, `${what}: ${res.text}`).toBe(status);
  // biome-ignore lint/suspicious/noExplicitAny: error envelopes
  const code = (res.body as any)?.error?.code;
  if (status === 400) expect(["bad_request", "validation_failed"], what).toContain(code);
  if (status === 403) expect(code, what).toBe("forbidden");
  if (status === 404) expect(code, what).toBe("not_found");
  if (status === 409) expect(code, what).toBe("conflict");
}

const explainDecision = (m: Model, tables: Tables, s: Subject, permission: string, entity: string, id?: number) => {
  if (id === undefined)
    return `${permission} on ${entity}: ${deniedForEveryRow(m.roles, s.caller, permission, entity) ? "denied for every row" : "decided row by row"}`;
  const d = decide(m.roles, s.caller, permission, { entity, id, user: s.caller.user });
  const row = tables[entity]?.find((r) => r.id === id);
  return `${permission} on ${entity} #${id} ${JSON.stringify(row)}: ${
    d.granted ? `granted (${d.why}) rows where ${JSON.stringify(d.grants)}` : `denied (${d.why})`
  }`;
};

/** Whether a where follows a relation or names another entity (for the statistics only). */
const RELATIONAL = /"(\$exists|\$some|\$none|\$every|doc|notes|tags|docs)[".]/;

/** The fields a caller reads of a row: the visible ones, never a hidden one (§4.8). */
const shown = (entity: string, row: Record<string, unknown>) =>
  Object.fromEntries(VISIBLE[entity]!.map((f) => [f, row[f]]));

/**
 * One row as a read returns it, with `with` on every relation of its entity: its visible fields, and each
 * relation either omitted (the related entity is not readable at all) or exactly the related rows the caller
 * may read (§4.5, §4.8).
 */
function expectRow(
  m: Model,
  tables: Tables,
  reader: ReturnType<typeof readerOf>,
  entity: EntityName,
  actual: Record<string, unknown>,
  what: string,
) {
  const row = tables[entity]!.find((r) => r.id === actual.id)!;
  expect(shown(entity, actual), `fields of ${entity} #${row.id} in ${what}`).toEqual(shown(entity, row));
  for (const hidden of SCHEMA[entity]!.hidden ?? []) expect(actual, what).not.toHaveProperty(hidden);
  for (const name of WITH[entity]) {
    const target = SCHEMA[entity]!.relations![name]!.target;
    const want = embedded(m, tables, reader, entity, row, name);
    const at = `with ${name} of ${entity} #${row.id} in ${what}`;
    if (want === undefined) {
      tally(`with omitted`);
      expect(actual, at).not.toHaveProperty(name);
      continue;
    }
    const got = actual[name] as Record<string, unknown>[] | Record<string, unknown> | null;
    // what the caller got: never a hidden field (§4.8), and the visible ones as stored
    const read = (r: Record<string, unknown>) => {
      for (const hidden of SCHEMA[target]!.hidden ?? []) expect(r, at).not.toHaveProperty(hidden);
      return shown(target, r);
    };
    if (Array.isArray(want)) {
      tally(`with many ${want.length === 0 ? "none" : "some"}`);
      expect(Array.isArray(got), at).toBe(true);
      const sorted = [...(got as Record<string, unknown>[])].sort((a, b) => (a.id as number) - (b.id as number));
      expect(sorted.map(read), at).toEqual(want.map((r) => shown(target, r)));
    } else {
      tally(`with one ${want === null ? "null" : "row"}`);
      expect(got === null ? null : read(got as Record<string, unknown>), at).toEqual(want && shown(target, want));
    }
  }
}

async function checkReads(server: TestServer, m: Model, c: Case, tables: Tables, subjects: Subject[]) {
  for (const entityName of ENTITIES) {
    const maxId = Math.max(0, ...tables[entityName]!.map((r) => r.id));
    const withParam = `with=${WITH[entityName].join(",")}`;
    for (const [k, s] of subjects.entries()) {
      const reader = readerOf(m, tables, s.caller);
      const asks = c.wheres[entityName][k] ?? [];
      const [listWhere, countWhere, existsWhere] = [0, 1, 2].map((i) => (asks.length > i ? asks[i] : asks[0]));
      const about = (where: Where | undefined) =>
        `${s.name}, ${explainDecision(m, tables, s, READ, entityName)}, caller where ${JSON.stringify(where)}`;
      const param = (where: Where | undefined) => (where === undefined ? "" : `where=${q(where)}`);
      const [res, count, exists] = await Promise.all([
        server.request(
          "GET",
          `/api/data/${entityName}?limit=100&sort=id&${withParam}&${param(listWhere)}`,
          undefined,
          s.headers,
        ),
        server.request("GET", `/api/data/${entityName}/count?${param(countWhere)}`, undefined, s.headers),
        server.request("GET", `/api/data/${entityName}/exists?${param(existsWhere)}`, undefined, s.headers),
      ]);

      const expected = list(m, tables, s.caller, entityName, listWhere);
      const ctx = about(listWhere);
      expectStatus(res, expected.status, `list ${ctx}; expected ${expected.why}`);
      if (expected.status === 200) {
        const all = tables[entityName]!.length;
        tally(`list visible ${expected.total === 0 ? "none" : expected.total === all ? "all" : "some"}`);
        if (listWhere !== undefined)
          tally(
            `list where ${RELATIONAL.test(JSON.stringify(listWhere)) ? "relational" : "plain"} ${
              expected.count === 0 ? "none" : expected.count === expected.total ? "all" : "some"
            }`,
          );
        expect(idsOf(res), `list ids ${ctx}`).toEqual(expected.ids);
        expect(res.body.meta.count, `meta.count ${ctx}`).toBe(expected.count);
        expect(res.body.meta.total, `meta.total ${ctx}`).toBe(expected.total);
        for (const row of res.body.data) expectRow(m, tables, reader, entityName, row, `list ${ctx}`);
      }
      const counted = list(m, tables, s.caller, entityName, countWhere);
      expectStatus(count, counted.status, `count ${about(countWhere)}; expected ${counted.why}`);
      if (counted.status === 200) expect(count.body.data.count, `count ${about(countWhere)}`).toBe(counted.count);
      const found = list(m, tables, s.caller, entityName, existsWhere);
      expectStatus(exists, found.status, `exists ${about(existsWhere)}; expected ${found.why}`);
      if (found.status === 200) expect(exists.body.data.exists, `exists ${about(existsWhere)}`).toBe(found.count > 0);

      const ids = Array.from({ length: maxId + 1 }, (_, i) => i + 1);
      const answers = await Promise.all(
        ids.map((id) => server.request("GET", `/api/data/${entityName}/${id}?${withParam}`, undefined, s.headers)),
      );
      for (const [i, id] of ids.entries()) {
        const want = readOne(m, tables, s.caller, entityName, id);
        const what = `read ${entityName} #${id} as ${s.name}, ${explainDecision(m, tables, s, READ, entityName, id)}`;
        expectStatus(answers[i]!, want, what);
        if (want === 200) {
          expect(answers[i]!.body.data.id).toBe(id);
          expectRow(m, tables, reader, entityName, answers[i]!.body.data, what);
        }
      }
    }
  }
}

async function checkWrites(server: TestServer, m: Model, c: Case, start: Tables, subjects: Subject[]) {
  let tables = start;
  for (const [n, op] of c.writes.entries()) {
    const s = subjects[op.subject % subjects.length]!;
    const permission = op.kind.startsWith("update") ? UPDATE : DELETE;
    const kind = op.kind.startsWith("update") ? "update" : "delete";
    let res: TestResponse;
    let what: string;
    const expected = isOne(op)
      ? writeOne(m, tables, s.caller, op.entity, op.id, kind, op.patch)
      : writeMany(m, tables, s.caller, op.entity, op.where, kind, op.patch);
    if (expected.unsettled) {
      // a key into an entity the caller cannot read at all: see `brokenReference` in ./reference.ts
      tally(`${op.kind} not sent: ${expected.why}`);
      continue;
    }
    if (isOne(op)) {
      what = `write ${n}: ${op.kind} ${op.entity} #${op.id} ${kind === "update" ? JSON.stringify(op.patch) : ""} as ${
        s.name
      }; ${explainDecision(m, tables, s, permission, op.entity, op.id)}; ${explainDecision(m, tables, s, READ, op.entity, op.id)}; expected ${
        expected.why
      }`;
      res =
        kind === "update"
          ? await server.request("PATCH", `/api/data/${op.entity}/${op.id}`, op.patch, s.headers)
          : await server.request("DELETE", `/api/data/${op.entity}/${op.id}`, undefined, s.headers);
      expectStatus(res, expected.status, what);
      if (expected.status === 200) expect(res.body.data.id, what).toBe(op.id);
    } else {
      what = `write ${n}: ${op.kind} ${op.entity} where ${JSON.stringify(op.where)} ${
        kind === "update" ? JSON.stringify(op.patch) : ""
      } as ${s.name}; ${explainDecision(m, tables, s, permission, op.entity)}; ${explainDecision(m, tables, s, READ, op.entity)}; expected ${
        expected.why
      } ${JSON.stringify(expected.ids)}`;
      res =
        kind === "update"
          ? await server.request("PATCH", `/api/data/${op.entity}`, { update: op.patch, where: op.where }, s.headers)
          : await server.request("DELETE", `/api/data/${op.entity}`, op.where, s.headers);
      expectStatus(res, expected.status, what);
      if (expected.status === 200)
        expect(
          idsOf(res).sort((a, b) => a - b),
          what,
        ).toEqual(expected.ids);
    }
    const reason = expected.why.replace(/^[abc]: /, "").replace(/\d+/g, "n");
    tally(`${op.kind} ${expected.status} ${reason} rows=${Math.min(expected.ids.length, 2)}`);
    const actual = await readTables(server);
    expect(actual, `database after ${what}`).toEqual(expected.tables);
    tables = actual;
  }
}

async function runCase(c: Case) {
  const m: Model = { roles: c.roles, schema: SCHEMA };
  const { server, subjects } = await boot(c);
  try {
    const tables = await readTables(server);
    for (const e of ENTITIES) expect(tables[e]!.map(({ id, ...rest }) => rest)).toEqual(c.rows[e]);
    expect(tables.docs_tags!.map((j) => [j.docs_id, j.tags_id])).toEqual(c.rows.docs_tags);
    await checkReads(server, m, c, tables, subjects);
    await checkWrites(server, m, c, tables, subjects);
  } finally {
    await server.close();
  }
}

// ---------- hand-written cases for the tricky rules ----------

/**
 * docs 1–6 (secret on 1, 3, 4, 6), notes 1–5 (on docs 1, 3, none, 1, 4), tags 1–3; doc 1 has tags 1 and 2,
 * doc 2 tag 1, doc 3 tag 3 (no label), doc 4 tag 1.
 */
const fixedRows: Case["rows"] = {
  docs: [
    { owner_id: 1, status: "a", level: 0, flag: true, secret: "s" },
    { owner_id: 1, status: "b", level: 1, flag: false, secret: null },
    { owner_id: 2, status: "a", level: null, flag: null, secret: "t" },
    { owner_id: 2, status: "c", level: 3, flag: true, secret: "s" },
    { owner_id: null, status: null, level: 2, flag: false, secret: null },
    { owner_id: 3, status: "b", level: -1, flag: true, secret: "t" },
  ],
  notes: [
    { owner_id: 1, pinned: true, doc_id: 1 },
    { owner_id: 2, pinned: false, doc_id: 3 },
    { owner_id: null, pinned: null, doc_id: null },
    { owner_id: 1, pinned: false, doc_id: 1 },
    { owner_id: 3, pinned: true, doc_id: 4 },
  ],
  tags: [
    { owner_id: 1, label: "x" },
    { owner_id: 2, label: "y" },
    { owner_id: null, label: null },
  ],
  docs_tags: [
    [1, 1],
    [1, 2],
    [2, 1],
    [3, 3],
    [4, 1],
  ],
};
const fixed = (
  roles: Roles,
  users: string[],
  writes: WriteOp[] = [],
  wheres: Partial<Record<EntityName, (Where | undefined)[]>> = {},
): Case => ({
  roles,
  users,
  rows: fixedRows,
  // one where per subject, for list, count and exists alike
  wheres: {
    docs: (wheres.docs ?? []).map((w) => [w]),
    notes: (wheres.notes ?? []).map((w) => [w]),
    tags: (wheres.tags ?? []).map((w) => [w]),
  },
  writes,
});
const own = { owner_id: "@user.id" };

/**
 * Hand-written cases for the rules that are easy to get wrong, each its own test (they are not repeated as the
 * property's examples: one server per case is the cost that matters).
 */
const FIXED: [name: string, c: Case][] = [
  [
    "deny wins: a matching deny entry beats a plain grant, a matching deny policy beats a filter",
    fixed(
      {
        a: {
          permissions: [
            READ,
            { permission: READ, effect: "deny", policies: [{ condition: { "user.id": 1 }, effect: "allow" }] },
            UPDATE,
            {
              permission: UPDATE,
              effect: "allow",
              policies: [
                { effect: "filter", filter: own },
                { condition: { entity: "notes" }, effect: "deny" },
              ],
            },
          ],
        },
        b: { implicit_allow: true, permissions: [{ permission: DELETE, effect: "deny" }] },
      },
      ["a", "a", "b"],
      [
        { kind: "updateOne", subject: 1, entity: "docs", id: 3, patch: { level: 2 } },
        { kind: "updateOne", subject: 1, entity: "notes", id: 2, patch: { pinned: true } },
        { kind: "deleteOne", subject: 2, entity: "docs", id: 1, patch: {} },
        { kind: "updateMany", subject: 0, entity: "docs", where: { level: { $gte: 0 } }, patch: { flag: false } },
      ],
    ),
  ],
  [
    "an entry whose policies all fail to match does not apply (403)",
    fixed(
      {
        a: {
          is_default: true,
          permissions: [
            { permission: READ, effect: "allow", policies: [{ condition: { "user.role": "b" }, effect: "allow" }] },
          ],
        },
        b: {
          permissions: [
            {
              permission: READ,
              effect: "allow",
              policies: [{ condition: { "user.role": "b" }, effect: "filter", filter: { status: "@user.role" } }],
            },
            { permission: UPDATE, effect: "allow", policies: [{ condition: { entity: "users" }, effect: "allow" }] },
          ],
        },
      },
      ["a", "b"],
      [{ kind: "updateOne", subject: 1, entity: "docs", id: 2, patch: { status: "a" } }],
    ),
  ],
  [
    "a placeholder without a value matches nothing, even under $not, $ne and $nin",
    fixed(
      {
        a: {
          is_default: true,
          permissions: [
            { permission: READ, effect: "allow", policies: [{ effect: "filter", filter: { $not: own } }] },
            {
              permission: UPDATE,
              effect: "allow",
              policies: [{ effect: "filter", filter: { owner_id: { $ne: "@user.id" } } }],
            },
            {
              permission: DELETE,
              effect: "allow",
              policies: [{ effect: "filter", filter: { $not: { owner_id: { $nin: ["@user.id"] } } } }],
            },
          ],
        },
        b: {
          permissions: [
            {
              permission: READ,
              effect: "allow",
              policies: [{ effect: "filter", filter: { $not: { status: "@user.nickname" } } }],
            },
          ],
        },
      },
      ["a", "b"],
      [
        { kind: "updateOne", subject: 2, entity: "docs", id: 3, patch: { flag: true } },
        { kind: "updateMany", subject: 2, entity: "docs", where: { level: { $isnull: false } }, patch: { flag: true } },
        { kind: "deleteOne", subject: 2, entity: "docs", id: 4, patch: {} },
        { kind: "updateOne", subject: 0, entity: "docs", id: 1, patch: { flag: false } },
        { kind: "updateOne", subject: 0, entity: "docs", id: 3, patch: { owner_id: 1 } },
      ],
    ),
  ],
  [
    "two entries grant the OR of their filters (each the AND of its policies); the caller's where only narrows",
    fixed(
      {
        a: {
          permissions: [
            {
              permission: READ,
              effect: "allow",
              policies: [
                { effect: "filter", filter: { status: "a" } },
                { effect: "filter", filter: { flag: true } },
              ],
            },
            { permission: READ, effect: "allow", policies: [{ effect: "filter", filter: own }] },
            { permission: UPDATE, effect: "allow", policies: [{ effect: "filter", filter: own }] },
            { permission: UPDATE, effect: "allow", policies: [{ effect: "filter", filter: { level: { $gte: 3 } } }] },
          ],
        },
        b: {
          permissions: [
            { permission: READ, effect: "allow", policies: [{ effect: "filter", filter: { pinned: true } }] },
          ],
        },
      },
      ["a", "a", "b"],
      [
        { kind: "updateOne", subject: 1, entity: "docs", id: 4, patch: { level: 0 } },
        { kind: "updateOne", subject: 1, entity: "docs", id: 3, patch: { owner_id: 1 } },
        {
          kind: "updateMany",
          subject: 0,
          entity: "docs",
          where: { $or: [{ flag: false }, { flag: true }] },
          patch: { level: 2 },
        },
      ],
      {
        docs: [{ $or: [{ owner_id: 2 }, { owner_id: { $ne: 2 } }] }, { $not: { status: "zz" } }, undefined, undefined],
        notes: [undefined, undefined, { $or: [{ pinned: false }, { pinned: { $isnull: true } }] }, undefined],
      },
    ),
  ],
  [
    "an unbound placeholder empties its own filter only: the other entries still grant (anonymous)",
    fixed(
      {
        a: {
          is_default: true,
          permissions: [
            { permission: READ, effect: "allow", policies: [{ effect: "filter", filter: { status: "a" } }] },
            { permission: READ, effect: "allow", policies: [{ effect: "filter", filter: own }] },
            UPDATE,
            { permission: UPDATE, effect: "allow", policies: [{ effect: "filter", filter: own }] },
          ],
        },
        b: { permissions: [READ] },
      },
      ["a", "b"],
      [
        { kind: "updateOne", subject: 2, entity: "docs", id: 1, patch: { level: 1 } },
        { kind: "updateMany", subject: 2, entity: "docs", where: { status: "a" }, patch: { flag: false } },
      ],
    ),
  ],
  [
    "a policy for every entity whose filter names a field an entity lacks matches nothing there",
    fixed(
      {
        a: {
          is_default: true,
          permissions: [
            { permission: READ, effect: "allow", policies: [{ effect: "filter", filter: { pinned: true } }] },
            { permission: READ, effect: "allow", policies: [{ effect: "filter", filter: { status: { $ne: "c" } } }] },
            {
              permission: UPDATE,
              effect: "allow",
              policies: [{ effect: "filter", filter: { $not: { flag: false } } }],
            },
          ],
        },
        b: { permissions: [] },
      },
      ["a", "b"],
      [
        { kind: "updateOne", subject: 0, entity: "notes", id: 1, patch: { pinned: false } },
        { kind: "updateOne", subject: 0, entity: "docs", id: 1, patch: { level: 1 } },
      ],
    ),
  ],
  [
    "conditions treat a missing context value (anonymous user.*, id on a list) like SQL NULL, as where does",
    fixed(
      {
        a: {
          is_default: true,
          permissions: [
            // user.role is missing for anonymous callers: NOT (NULL = 'b') is unknown, so this grant does not apply
            {
              permission: READ,
              effect: "allow",
              policies: [{ condition: { $not: { "user.role": "b" } }, effect: "allow" }],
            },
            // a list has no id: this entry applies to read one of ids 1-3 only
            {
              permission: READ,
              effect: "allow",
              policies: [{ condition: { id: { $lte: 3 } }, effect: "filter", filter: { level: { $isnull: false } } }],
            },
            // `NOT IN ()` is true even for NULL (§2.2, as the where compiler does): this deny applies to everyone
            UPDATE,
            {
              permission: UPDATE,
              effect: "deny",
              policies: [{ condition: { "user.id": { $nin: [] } }, effect: "allow" }],
            },
          ],
        },
        b: {
          permissions: [
            {
              permission: READ,
              effect: "allow",
              policies: [{ condition: { $not: { "user.id": 9 } }, effect: "allow" }],
            },
          ],
        },
      },
      ["a", "b"],
      [
        { kind: "updateOne", subject: 2, entity: "docs", id: 1, patch: { level: 1 } },
        { kind: "updateOne", subject: 0, entity: "docs", id: 1, patch: { level: 1 } },
      ],
    ),
  ],
  [
    "update and delete: 404 outside read, 403 outside the write filter, write check on the row after the update",
    fixed(
      {
        a: {
          permissions: [
            {
              permission: READ,
              effect: "allow",
              policies: [{ effect: "filter", filter: { status: { $in: ["a", "b"] } } }],
            },
            { permission: UPDATE, effect: "allow", policies: [{ effect: "filter", filter: own }] },
            { permission: DELETE, effect: "allow", policies: [{ effect: "filter", filter: own }] },
          ],
        },
        b: {
          // no read at all: the update filter decides what is found (404) before 403
          permissions: [
            { permission: UPDATE, effect: "allow", policies: [{ effect: "filter", filter: { flag: true } }] },
          ],
        },
      },
      ["a", "b"],
      [
        { kind: "updateOne", subject: 0, entity: "docs", id: 4, patch: { level: 0 } }, // status c: not readable → 404
        { kind: "updateOne", subject: 0, entity: "docs", id: 3, patch: { level: 0 } }, // readable, owner 2 → 403
        { kind: "updateOne", subject: 0, entity: "docs", id: 1, patch: { owner_id: 2 } }, // would leave own → 403
        { kind: "updateOne", subject: 0, entity: "docs", id: 1, patch: { status: "c" } }, // still own → 200
        { kind: "deleteOne", subject: 0, entity: "docs", id: 3, patch: {} }, // readable, not own → 403
        { kind: "updateMany", subject: 0, entity: "docs", where: { level: { $gte: 0 } }, patch: { owner_id: 3 } }, // 403 as a whole
        { kind: "updateOne", subject: 1, entity: "docs", id: 2, patch: { level: 0 } }, // flag false → 404
        { kind: "updateOne", subject: 1, entity: "docs", id: 4, patch: { flag: false } }, // write check → 403
        { kind: "updateMany", subject: 1, entity: "docs", where: { level: { $gte: 0 } }, patch: { level: 3 } },
        { kind: "deleteMany", subject: 0, entity: "docs", where: { $not: { flag: false } } },
      ].map((op) => ({ patch: {}, ...op }) as WriteOp),
    ),
  ],
  [
    "a policy's filter follows relations as written: every related row counts, hidden fields too; $every passes a NULL (4.13)",
    fixed(
      {
        a: {
          permissions: [
            {
              permission: READ,
              effect: "allow",
              policies: [
                { condition: { entity: "notes" }, effect: "filter", filter: { "doc.owner_id": "@user.id" } },
                {
                  condition: { entity: "docs" },
                  effect: "filter",
                  filter: { $or: [{ notes: { $some: { pinned: true } } }, { secret: "t" }] },
                },
              ],
            },
          ],
        },
        b: {
          is_default: true,
          permissions: [
            {
              permission: READ,
              effect: "allow",
              policies: [
                // doc 3's only tag has no label: UNKNOWN is not a failure, so doc 3 passes (as does a doc with no tag)
                { condition: { entity: "docs" }, effect: "filter", filter: { tags: { $every: { label: "x" } } } },
                { condition: { entity: "tags" }, effect: "filter", filter: { docs: { $some: { flag: true } } } },
                // a note without a doc, or on a doc whose flag is NULL, has no doc with flag true
                { condition: { entity: "notes" }, effect: "filter", filter: { doc: { $none: { flag: true } } } },
              ],
            },
          ],
        },
      },
      ["a", "b", "a"],
    ),
  ],
  [
    "$exists with @row and @user in a policy's filter; a NULL key matches nothing; no user, no rows (4.13, 4.4)",
    fixed(
      {
        a: {
          is_default: true,
          permissions: [
            {
              permission: READ,
              effect: "allow",
              policies: [
                {
                  effect: "filter",
                  filter: { $exists: { entity: "users", where: { id: "@row.owner_id", role: "@user.role" } } },
                },
              ],
            },
            {
              permission: UPDATE,
              effect: "allow",
              policies: [
                {
                  effect: "filter",
                  filter: { $exists: { entity: "docs", where: { id: "@row.doc_id", owner_id: "@user.id" } } },
                },
              ],
            },
            {
              permission: DELETE,
              effect: "allow",
              policies: [
                { effect: "filter", filter: { $not: { $exists: { entity: "notes", where: { doc_id: "@row.id" } } } } },
              ],
            },
          ],
        },
        b: {
          permissions: [
            {
              permission: READ,
              effect: "allow",
              policies: [
                // a row whose owner is NULL has no note with "the same" owner (NULL = NULL is not TRUE): visible
                {
                  condition: { entity: { $in: ["docs", "notes"] } },
                  effect: "filter",
                  filter: { $not: { $exists: { entity: "notes", where: { owner_id: "@row.owner_id" } } } },
                },
                { condition: { entity: "tags" }, effect: "allow" },
              ],
            },
            UPDATE,
          ],
        },
      },
      ["a", "a", "b"],
      [
        { kind: "updateOne", subject: 0, entity: "notes", id: 1, patch: { doc_id: 3 } }, // doc 3 is user 2's → 403
        { kind: "updateOne", subject: 0, entity: "notes", id: 1, patch: { doc_id: 2 } }, // own doc 2 → 200
        { kind: "updateOne", subject: 1, entity: "notes", id: 2, patch: { pinned: true } },
        { kind: "deleteOne", subject: 0, entity: "docs", id: 2 }, // doc 2 now has a note → 403
        { kind: "deleteOne", subject: 1, entity: "docs", id: 5 }, // owner NULL: nobody's → 404
        { kind: "deleteMany", subject: 0, entity: "docs", where: { level: { $gte: -1 } } },
        { kind: "updateMany", subject: 3, entity: "notes", where: { pinned: false }, patch: { pinned: true } },
        { kind: "updateOne", subject: 2, entity: "notes", id: 3, patch: { doc_id: 6 } },
      ].map((op) => ({ patch: {}, ...op }) as WriteOp),
      { docs: [undefined, undefined, { $exists: { entity: "users", where: { id: "@row.owner_id" } } }] },
    ),
  ],
  [
    "a caller's where follows relations under its own read permission; an unreadable entity or a hidden field is 400 (4.13, 4.8)",
    fixed(
      {
        a: {
          permissions: [
            {
              permission: READ,
              effect: "allow",
              policies: [
                { condition: { entity: "docs" }, effect: "filter", filter: { level: { $gte: 0 } } },
                { condition: { entity: "notes" }, effect: "allow" },
              ],
            },
          ],
        },
        b: {
          is_default: true,
          implicit_allow: true,
          permissions: [
            { permission: READ, effect: "deny", policies: [{ condition: { entity: "users" }, effect: "allow" }] },
          ],
        },
      },
      ["a", "b", "a"],
      [],
      {
        docs: [
          { tags: { $none: { label: "y" } } }, // a cannot read tags: 400
          { notes: { $every: { pinned: true } } },
          { notes: { $some: { pinned: true } } },
          { "notes.pinned": true }, // a to-many relation needs a quantifier: 400
        ],
        notes: [
          { "doc.status": "a" }, // doc 3 has status a, but a cannot read it (level NULL): notes on doc 1 only
          { doc: { $none: { level: 1 } } },
          { doc: { tags: { $some: { label: "x" } } } }, // through docs into tags, which a cannot read: 400
          { $exists: { entity: "users", where: { id: "@row.owner_id" } } }, // b may not read users: 400
        ],
        tags: [
          undefined,
          { docs: { $every: { secret: { $isnull: true } } } }, // hidden: 400
          undefined,
          { docs: { $some: { notes: { $some: { pinned: true } } } } },
        ],
      },
    ),
  ],
  [
    "with embeds exactly the related rows the caller may read and omits an unreadable relation; a key to a doc it cannot read is refused like a missing one; deleting a doc unlinks it (4.5, 4.17, 1.3)",
    fixed(
      {
        a: {
          permissions: [
            {
              permission: READ,
              effect: "allow",
              policies: [
                { condition: { entity: "docs" }, effect: "filter", filter: own },
                { condition: { entity: { $in: ["notes", "tags"] } }, effect: "allow" },
              ],
            },
            UPDATE,
            DELETE,
          ],
        },
        b: {
          is_default: true,
          permissions: [
            {
              permission: READ,
              effect: "allow",
              policies: [{ condition: { entity: { $ne: "tags" } }, effect: "filter", filter: { id: { $lte: 3 } } }],
            },
            UPDATE,
          ],
        },
      },
      ["a", "b"],
      [
        { kind: "updateOne", subject: 0, entity: "notes", id: 2, patch: { doc_id: 4 } }, // user 2's doc → 409
        { kind: "updateOne", subject: 0, entity: "notes", id: 2, patch: { doc_id: 9 } }, // no doc 9 → 409
        { kind: "updateOne", subject: 0, entity: "notes", id: 2, patch: { doc_id: 2 } },
        { kind: "deleteOne", subject: 0, entity: "docs", id: 1 }, // notes 1 and 4 lose their doc, tags their link
        { kind: "deleteMany", subject: 1, entity: "docs", where: { level: { $gte: 0 } } }, // b may not delete → 403
        { kind: "deleteMany", subject: 0, entity: "docs", where: { flag: { $ne: true } } },
        { kind: "updateOne", subject: 2, entity: "notes", id: 3, patch: { doc_id: 5 } }, // doc 5 is past b's reach → 409
        { kind: "updateMany", subject: 0, entity: "notes", where: { doc_id: { $isnull: true } }, patch: { doc_id: 3 } },
      ].map((op) => ({ patch: {}, ...op }) as WriteOp),
    ),
  ],
];

describe("the guard matches the SPEC §4 reference", () => {
  for (const [name, c] of FIXED) it(name, () => runCase(c), 60_000);

  it("property: list, count, exists, read one, with, update and delete agree with the reference for random roles, relational filters and rows (4.13)", async () => {
    await fc.assert(fc.asyncProperty(caseArb, runCase), {
      numRuns: Number(process.env.GUARD_PROPERTY_RUNS ?? 25),
      ...(process.env.GUARD_PROPERTY_SEED ? { seed: Number(process.env.GUARD_PROPERTY_SEED) } : {}),
    });
    if (process.env.GUARD_PROPERTY_STATS) console.log(Object.fromEntries([...seen].sort()));
  }, 600_000);
});
