/**
 * Tenant isolation (§6) as a property: 3–4 random accounts of notes, comments, tags and their links (slugs and
 * tag names colliding across accounts, and a few links planted across accounts by trusted code), callers of
 * every kind (members and admins of each account, publishable and secret keys bound to it, callers bound to
 * none) and random requests on every data route, under both prefixes: lists with random where/sort/with (`$or`,
 * relation paths, `$exists`, `account_id` of another account), count, exists, read one, reference routes,
 * create, update and delete one and many. Whatever is asked, no response holds a row of another account
 * (`with` rows included); lists, counts and exists are what the reference of `../guard/relational-reference.ts`
 * computes over the caller's own account, read straight from the database; another account's id answers byte
 * for byte what a missing id answers (6.2); and no write changes a row of another account. One server per
 * engine and a bounded number of requests; `TENANCY_PROPERTY_SEED` replays a run, `TENANCY_PROPERTY_RUNS`
 * makes it longer.
 */
import type { SeedContext } from "citadel";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey } from "../auth/api-keys-fixture.js";
import {
  callerWhereProblem,
  holds,
  type Row,
  related,
  type Schema,
  type Tables,
} from "../guard/relational-reference.js";
import { bearer, login } from "../helpers/auth.js";
import { ENGINE } from "../helpers/engines.js";
import { startServer, type TestResponse, type TestServer } from "../helpers/server.js";
import type { Where } from "../helpers/where-reference.js";
import { PASSWORD, tenancyConfig } from "./fixture.js";

const SEED = Number(process.env.TENANCY_PROPERTY_SEED ?? 20261130);
/** Requests per run: a few seconds on each engine (a libSQL server answers slower than a file). */
const RUNS = Number(process.env.TENANCY_PROPERTY_RUNS ?? (ENGINE === "sqlite" ? 150 : 80));

const TITLES = ["alpha", "beta", "gamma"];
const SLUGS = ["hello", "intro", "faq"];
const BODIES = ["yes", "no", "maybe"];
const TAGS = ["red", "blue", "green"];
/** The rows a `with` reads per parent row (config.data's default limit). */
const WITH_LIMIT = 10;
/** A list's page unless the request pages: every row the caller may see at these sizes, within the row budget. */
const PAGE = { limit: 30, offset: 0 };
/** An id no row has: what another account's id must answer like. */
const MISSING = 999_999;

const READS = ["notes", "comments", "tags", "users", "accounts"] as const;
type Entity = (typeof READS)[number];
type Writable = "notes" | "comments" | "tags";

/** The fixture's schema as the reference sees it (the fields a caller may name, the relations both ways). */
const SCHEMA: Schema = {
  notes: {
    fields: ["id", "title", "slug", "public", "author_id", "account_id"],
    relations: {
      author: { target: "users", many: false, link: { kind: "local", column: "author_id" } },
      comments: { target: "comments", many: true, link: { kind: "remote", column: "note_id" } },
      tags: {
        target: "tags",
        many: true,
        link: { kind: "junction", table: "notes_tags", self: "notes_id", other: "tags_id" },
      },
    },
  },
  comments: {
    fields: ["id", "body", "note_id", "account_id"],
    relations: { note: { target: "notes", many: false, link: { kind: "local", column: "note_id" } } },
  },
  tags: {
    fields: ["id", "name", "account_id"],
    relations: {
      notes: {
        target: "notes",
        many: true,
        link: { kind: "junction", table: "notes_tags", self: "tags_id", other: "notes_id" },
      },
    },
  },
  users: {
    fields: ["id", "email", "role", "account_id"],
    relations: { notes: { target: "notes", many: true, link: { kind: "remote", column: "author_id" } } },
  },
  accounts: { fields: ["id", "name", "slug"] },
};
const relationsOf = (entity: string) => SCHEMA[entity]!.relations ?? {};

/** Columns read back per table (updated_at too, so that a write touching a row shows). */
const COLUMNS: Record<string, string[]> = {
  accounts: ["id", "name", "slug", "updated_at"],
  users: ["id", "email", "role", "account_id", "token_version", "updated_at"],
  notes: ["id", "title", "slug", "public", "author_id", "account_id", "updated_at"],
  comments: ["id", "body", "note_id", "account_id", "updated_at"],
  tags: ["id", "name", "account_id", "updated_at"],
  notes_tags: ["notes_id", "tags_id"],
};

async function readTables(server: TestServer): Promise<Tables> {
  const read = async ([table, columns]: [string, string[]]) => {
    const order = table === "notes_tags" ? "notes_id, tags_id" : "id";
    const rows = await server.rows(`SELECT ${columns.map((c) => `"${c}"`).join(", ")} FROM ${table} ORDER BY ${order}`);
    return [table, rows.map((r) => ("public" in r ? { ...r, public: r.public === null ? null : r.public === 1 } : r))];
  };
  return Object.fromEntries(await Promise.all(Object.entries(COLUMNS).map(read)));
}

const tenantOf = (entity: string, row: Row) => (entity === "accounts" ? row.id : row.account_id);

// ---------- the world: accounts, their people and rows ----------

/** `foreign`: this link points into the next account (planted by trusted code; the API refuses it). */
const foreign = fc.integer({ min: 0, max: 5 }).map((n) => n === 0);
const accountArb = fc.record({
  members: fc.integer({ min: 1, max: 2 }),
  notes: fc.uniqueArray(
    fc.record({
      title: fc.constantFrom(...TITLES),
      slug: fc.option(fc.constantFrom(...SLUGS), { freq: 4 }),
      public: fc.boolean(),
      author: fc.nat(),
      foreign,
    }),
    { minLength: 1, maxLength: 4, comparator: (a, b) => a.slug !== null && a.slug === b.slug },
  ),
  comments: fc.array(fc.record({ body: fc.constantFrom(...BODIES), note: fc.nat(), foreign }), { maxLength: 4 }),
  tags: fc.uniqueArray(fc.constantFrom(...TAGS), { maxLength: 3 }),
  links: fc.array(fc.record({ note: fc.nat(), tag: fc.nat(), foreign }), { maxLength: 3 }),
});
type AccountSpec = typeof accountArb extends fc.Arbitrary<infer T> ? T : never;

const emailOf = (account: number, who: string) => `${who}@t${account}.test`;

type Role = "member" | "admin" | "anonymous" | "reader" | "secret";
interface Caller {
  name: string;
  headers: Record<string, string>;
  /** the account it is bound to; null: bound to none (it must see no scoped row at all) */
  tenant: number | null;
  role: Role;
  userId?: number;
}

/** Seed the accounts (ids 1..n), their members and admin, notes, comments, tags and links. */
function seedWorld(specs: AccountSpec[]) {
  return async ({ app, db }: SeedContext) => {
    const data = app.module.data;
    const create = async (entity: string, rows: Record<string, unknown>[]) =>
      rows.length === 0 ? [] : ((await data.create(entity, rows)) as Row[]);
    const accounts = await create(
      "accounts",
      specs.map((_, i) => ({ name: `Account ${i + 1}`, slug: `t${i + 1}` })),
    );
    await app.module.auth.createUser({ email: "root@test.com", password: PASSWORD, role: "superadmin" });
    await app.module.auth.createUser({ email: "nomad@none.test", password: PASSWORD, role: "member" });
    const users: number[][] = [];
    for (const [i, spec] of specs.entries()) {
      const account_id = accounts[i]!.id;
      const people = [...Array.from({ length: spec.members }, (_, j) => [`m${j + 1}`, "member"]), ["admin", "admin"]];
      users[i] = [];
      for (const [who, role] of people) {
        const user = await app.module.auth.createUser({
          email: emailOf(i + 1, who!),
          password: PASSWORD,
          role,
          account_id,
        });
        users[i]!.push(user.id as number);
      }
    }
    const next = (i: number, isForeign: boolean) => (isForeign ? (i + 1) % specs.length : i);
    // one account after the other, so that a seed gives the same ids on every run
    const notes: Row[][] = [];
    const tags: Row[][] = [];
    for (const [i, spec] of specs.entries()) {
      const account_id = accounts[i]!.id;
      notes[i] = await create(
        "notes",
        spec.notes.map((n) => {
          const authors = users[next(i, n.foreign)]!;
          const author_id = authors[n.author % authors.length];
          return { title: n.title, slug: n.slug, public: n.public, author_id, account_id };
        }),
      );
      tags[i] = await create(
        "tags",
        spec.tags.map((name) => ({ name, account_id })),
      );
    }
    for (const [i, spec] of specs.entries()) {
      await create(
        "comments",
        spec.comments.map((c) => {
          const targets = notes[next(i, c.foreign)]!;
          return { body: c.body, note_id: targets[c.note % targets.length]!.id, account_id: accounts[i]!.id };
        }),
      );
      const links = new Map<string, { notes_id: number; tags_id: number }>();
      for (const l of spec.links) {
        const [own, other] = [notes[i]!, tags[next(i, l.foreign)]!];
        if (other.length === 0) continue;
        const link = { notes_id: own[l.note % own.length]!.id, tags_id: other[l.tag % other.length]!.id };
        links.set(`${link.notes_id}/${link.tags_id}`, link);
      }
      if (links.size > 0)
        await db
          .insertInto("notes_tags" as never)
          .values([...links.values()] as never)
          .execute();
    }
  };
}

/** Start the server on the world, log its people in and issue each account's keys (root is the superadmin). */
async function boot(specs: AccountSpec[]): Promise<{ server: TestServer; callers: Caller[] }> {
  const server = await startServer(tenancyConfig(), { options: { seed: seedWorld(specs) } });
  try {
    const root = bearer(await login(server, "root@test.com", PASSWORD));
    const key = async (body: Record<string, unknown>) => (await createKey(server, root, body)).key;
    const users = await server.rows(`SELECT "id", "email", "role", "account_id" FROM users ORDER BY "id"`);
    const callers: Caller[] = [];
    for (const u of users.filter((u) => u.account_id !== null)) {
      const headers = bearer(await login(server, u.email, PASSWORD));
      callers.push({ name: `${u.email} (${u.role})`, headers, tenant: u.account_id, role: u.role, userId: u.id });
    }
    for (const tenant of specs.map((_, i) => i + 1)) {
      const at = (name: string, role: Role, body: Record<string, unknown>) =>
        key({ name, tenant, ...body }).then((k) =>
          callers.push({ name: `${name} of account ${tenant}`, headers: { apikey: k }, tenant, role }),
        );
      await at("publishable key", "anonymous", { kind: "publishable" });
      await at("publishable key (reader)", "reader", { kind: "publishable", role: "reader" });
      await at("secret key", "secret", { kind: "secret" });
      await at("secret key (member)", "member", { kind: "secret", role: "member" });
    }
    callers.push(
      { name: "anonymous", headers: {}, tenant: null, role: "anonymous" },
      {
        name: "publishable key without an account",
        headers: { apikey: await key({ name: "pk0", kind: "publishable" }) },
        tenant: null,
        role: "anonymous",
      },
      {
        name: "nomad@none.test (member without an account)",
        headers: bearer(await login(server, "nomad@none.test", PASSWORD)),
        tenant: null,
        role: "member",
        userId: users.find((u) => u.email === "nomad@none.test")!.id,
      },
    );
    return { server, callers };
  } catch (error) {
    await server.close();
    throw error;
  }
}

// ---------- what a caller may do (the fixture's roles) ----------

const canRead = (c: Caller, entity: string) => c.role !== "anonymous" || entity === "notes";
/** The rows of `entity` the caller reaches: its account's (6.1), then its role's read filter. */
const seesFor = (c: Caller) => (entity: string, row: Row) =>
  c.tenant !== null &&
  tenantOf(entity, row) === c.tenant &&
  canRead(c, entity) &&
  (c.role !== "anonymous" || row.public === true);
const canCreate = (c: Caller) => c.role === "member" || c.role === "admin" || c.role === "secret";
/** Update and delete: admins and secret keys everywhere, members their own notes only. */
const canChange = (c: Caller, entity: string) =>
  c.role === "admin" || c.role === "secret" || (c.role === "member" && entity === "notes");
const mayChange = (c: Caller, row: Row) =>
  c.role !== "member" || (c.userId !== undefined && row.author_id === c.userId);
const own = (c: Caller, tables: Tables, entity: string) =>
  tables[entity]!.filter((r) => c.tenant !== null && tenantOf(entity, r) === c.tenant);

// ---------- requests ----------

type WithSpec = { [relation: string]: { with?: WithSpec } };
/**
 * A row picked when the request runs: `pick` modulo the rows of the caller's account (`own`) or of every
 * account, or the missing id.
 */
type Picked = { pick: number; own: boolean };
type Body = Record<string, unknown>;
/** `bknd`: asked under `/api/data/entity/:entity`, bknd's prefix for the same routes (§2). */
type Request = { bknd?: boolean } & (
  | {
      kind: "list";
      entity: Entity;
      where?: Where;
      sort?: string;
      with?: WithSpec;
      page?: { limit: number; offset: number };
      post: boolean;
    }
  | { kind: "count" | "exists"; entity: Entity; where?: Where; post: boolean }
  | { kind: "one"; entity: Entity; pick: Picked; with?: WithSpec }
  | { kind: "ref"; entity: Entity; relation: string; pick: Picked }
  | { kind: "create"; entity: Writable; body: Body }
  | { kind: "updateOne"; entity: Writable; pick: Picked; patch: Body }
  | { kind: "deleteOne"; entity: Writable; pick: Picked }
  | { kind: "updateMany"; entity: "notes" | "comments"; where: Where; patch: Body }
  | { kind: "deleteMany"; entity: Writable; where: Where }
);

type Leaf = { values: fc.Arbitrary<unknown>; ordered?: boolean; nullable?: boolean; likes?: string[] };
const ids = fc.integer({ min: 1, max: 30 });
/** Account ids: 1–4 exist, 5 never does. */
const accounts = fc.integer({ min: 1, max: 5 });
const LEAVES: Record<Entity, Record<string, Leaf>> = {
  notes: {
    id: { values: ids, ordered: true },
    title: { values: fc.constantFrom(...TITLES), likes: ["a*", "*a", "*"] },
    slug: { values: fc.constantFrom(...SLUGS), nullable: true, likes: ["h*", "*o"] },
    public: { values: fc.boolean() },
    author_id: { values: ids, ordered: true, nullable: true },
    account_id: { values: accounts, ordered: true },
  },
  comments: {
    id: { values: ids, ordered: true },
    body: { values: fc.constantFrom(...BODIES), likes: ["*e*", "n*"] },
    note_id: { values: ids, ordered: true, nullable: true },
    account_id: { values: accounts, ordered: true },
  },
  tags: {
    id: { values: ids, ordered: true },
    name: { values: fc.constantFrom(...TAGS), likes: ["*e*"] },
    account_id: { values: accounts, ordered: true },
  },
  users: {
    id: { values: ids, ordered: true },
    email: {
      values: fc.constantFrom(emailOf(1, "m1"), emailOf(2, "admin"), emailOf(3, "m2")),
      likes: ["*@t2.test", "m*"],
    },
    role: { values: fc.constantFrom("member", "admin", "superadmin") },
    account_id: { values: accounts, ordered: true, nullable: true },
  },
  accounts: {
    id: { values: accounts, ordered: true },
    name: { values: fc.constantFrom("Account 1", "Account 2", "Account 3"), likes: ["*2", "Account*"] },
    slug: { values: fc.constantFrom("t1", "t2", "t3", "t4") },
  },
};

/** What `$exists` may look into from each entity, and how a subquery row names the outer one. */
const EXISTS: Record<Entity, [Entity, Where][]> = {
  notes: [
    ["comments", { note_id: "@row.id" }],
    ["users", { id: "@row.author_id" }],
  ],
  comments: [["notes", { id: "@row.note_id" }]],
  tags: [["notes", { account_id: "@row.account_id" }]],
  users: [["notes", { author_id: "@row.id" }]],
  accounts: [
    ["notes", { account_id: "@row.id" }],
    ["users", { account_id: "@row.id" }],
  ],
};

function leafArb({ values, ordered, nullable, likes }: Leaf): fc.Arbitrary<unknown> {
  const list = (max: number) => fc.array(values, { minLength: 1, maxLength: max });
  const choices: fc.Arbitrary<unknown>[] = [
    values,
    values.map((v) => ({ $eq: v })),
    values.map((v) => ({ $ne: v })),
    list(3).map((vs) => ({ $in: vs })),
    list(2).map((vs) => ({ $nin: vs })),
    fc.boolean().map((b) => ({ $isnull: b })),
  ];
  if (ordered)
    choices.push(
      values.map((v) => ({ $gt: v })),
      values.map((v) => ({ $lte: v })),
    );
  if (nullable) choices.push(fc.constant(null));
  if (likes) choices.push(fc.constantFrom(...likes).map((p) => ({ $like: p })));
  return fc.oneof(...choices);
}

/** A caller's where on `entity`: fields, `$or`/`$and`/`$not`, relation paths both ways (`note.title`, `$some`). */
function whereArb(entity: Entity, depth: number): fc.Arbitrary<Where> {
  const entries: fc.Arbitrary<[string, unknown]>[] = Object.entries(LEAVES[entity]).map(([field, leaf]) =>
    leafArb(leaf).map((v): [string, unknown] => [field, v]),
  );
  // another account's id, named outright: it only narrows (6.2)
  entries.push(accounts.map((a): [string, unknown] => [entity === "accounts" ? "id" : "account_id", a]));
  if (depth > 0) {
    const inner = (e: Entity) => whereArb(e, depth - 1);
    // `$exists` over any entity, tied to the outer row or not: its rows are the caller's account's too (4.13)
    const exists = fc
      .constantFrom(...EXISTS[entity])
      .chain(([target, link]) =>
        fc
          .tuple(inner(target), fc.boolean())
          .map(([w, tied]): [string, unknown] => ["$exists", { entity: target, where: tied ? { ...w, ...link } : w }]),
      );
    entries.push(exists);
    entries.push(
      fc.tuple(fc.constantFrom("$or", "$and", "$not"), fc.array(inner(entity), { minLength: 1, maxLength: 2 })),
    );
    for (const [name, rel] of Object.entries(relationsOf(entity))) {
      const target = rel.target as Entity;
      if (rel.many) {
        const quantified = fc.tuple(fc.constantFrom("$some", "$none", "$every"), inner(target));
        entries.push(quantified.map(([q, w]): [string, unknown] => [name, { [q]: w }]));
        continue;
      }
      entries.push(inner(target).map((w): [string, unknown] => [name, w]));
      const paths = Object.entries(LEAVES[target]).map(([field, leaf]) =>
        leafArb(leaf).map((v): [string, unknown] => [`${name}.${field}`, v]),
      );
      entries.push(fc.oneof(...paths));
    }
  }
  return fc.array(fc.oneof(...entries), { minLength: 1, maxLength: 2 }).map((es) => Object.fromEntries(es) as Where);
}

function withArb(entity: Entity, depth: number): fc.Arbitrary<WithSpec | undefined> {
  const relations = Object.keys(relationsOf(entity));
  if (depth === 0 || relations.length === 0) return fc.constant(undefined);
  return fc
    .subarray(relations)
    .chain((chosen) =>
      chosen.length === 0
        ? fc.constant(undefined)
        : fc
            .tuple(
              ...chosen.map((r) =>
                fc.option(withArb(relationsOf(entity)[r]!.target as Entity, depth - 1), { nil: undefined, freq: 2 }),
              ),
            )
            .map(
              (inner) => Object.fromEntries(chosen.map((r, i) => [r, inner[i] ? { with: inner[i] } : {}])) as WithSpec,
            ),
    );
}

const sortArb = (entity: Entity) =>
  fc
    .subarray(
      SCHEMA[entity]!.fields.flatMap((f) => [f, `-${f}`]),
      { maxLength: 2 },
    )
    .map((keys) => (keys.length === 0 ? undefined : keys.join(",")));

const WHERE = Object.fromEntries(READS.map((e) => [e, whereArb(e, 2)])) as Record<Entity, fc.Arbitrary<Where>>;
const WITH = Object.fromEntries(READS.map((e) => [e, withArb(e, 2)])) as Record<
  Entity,
  fc.Arbitrary<WithSpec | undefined>
>;
/** `arb` two times in three. */
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 3 });
/** `arb` one time in `n`. */
const rarely = <T>(arb: fc.Arbitrary<T>, n: number) =>
  fc.oneof({ weight: n - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });
const picked: fc.Arbitrary<Picked> = fc.record({ pick: fc.nat(), own: fc.boolean() });
const readEntity = fc.constantFrom(...READS);
const writable = fc.constantFrom<Writable>("notes", "comments", "tags");
/** What a create or update may write: the entity's fields, a reference into any account, the scope column. */
const FIELDS: Record<Writable, fc.Arbitrary<Body>> = {
  notes: fc.oneof(
    fc.constantFrom(...TITLES).map((title) => ({ title })),
    fc.option(fc.constantFrom(...SLUGS)).map((slug) => ({ slug })),
    fc.boolean().map((p) => ({ public: p })),
  ),
  comments: fc.oneof(
    fc.constantFrom(...BODIES).map((body) => ({ body })),
    picked.map((note_id) => ({ note_id })),
  ),
  tags: fc.constantFrom(...TAGS).map((name) => ({ name })),
};
const scope = rarely(
  accounts.map((account_id) => ({ account_id })),
  6,
);
const CREATE: Record<Writable, fc.Arbitrary<Body>> = {
  notes: fc.record({
    title: fc.constantFrom(...TITLES),
    slug: fc.option(fc.constantFrom(...SLUGS)),
    public: fc.boolean(),
  }),
  comments: fc.record({ body: fc.constantFrom(...BODIES), note_id: picked }),
  tags: fc.record({ name: fc.constantFrom(...TAGS) }),
};

const routeArb: fc.Arbitrary<Request> = fc.oneof(
  {
    weight: 5,
    arbitrary: readEntity.chain((entity) =>
      fc.record({
        kind: fc.constant("list" as const),
        entity: fc.constant(entity),
        where: maybe(WHERE[entity]),
        sort: sortArb(entity),
        with: WITH[entity],
        page: rarely(fc.record({ limit: fc.integer({ min: 1, max: 3 }), offset: fc.integer({ min: 0, max: 3 }) }), 4),
        post: fc.boolean(),
      }),
    ),
  },
  {
    weight: 3,
    arbitrary: readEntity.chain((entity) =>
      fc.record({
        kind: fc.constantFrom("count" as const, "exists" as const),
        entity: fc.constant(entity),
        where: maybe(WHERE[entity]),
        post: fc.boolean(),
      }),
    ),
  },
  {
    weight: 2,
    arbitrary: readEntity.chain((entity) =>
      fc.record({ kind: fc.constant("one" as const), entity: fc.constant(entity), pick: picked, with: WITH[entity] }),
    ),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        ...READS.flatMap((entity) => Object.keys(relationsOf(entity)).map((relation) => ({ entity, relation }))),
      )
      .chain(({ entity, relation }) =>
        fc.record({
          kind: fc.constant("ref" as const),
          entity: fc.constant(entity),
          relation: fc.constant(relation),
          pick: picked,
        }),
      ),
  },
  {
    weight: 3,
    arbitrary: writable.chain((entity) =>
      fc
        .tuple(CREATE[entity], scope)
        .map(([body, s]): Request => ({ kind: "create", entity, body: { ...body, ...s } })),
    ),
  },
  {
    weight: 3,
    arbitrary: writable.chain((entity) =>
      fc
        .tuple(picked, FIELDS[entity], scope)
        .map(([pick, patch, s]): Request => ({ kind: "updateOne", entity, pick, patch: { ...patch, ...s } })),
    ),
  },
  {
    weight: 2,
    arbitrary: writable.chain((entity) =>
      fc.record({ kind: fc.constant("deleteOne" as const), entity: fc.constant(entity), pick: picked }),
    ),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom("notes" as const, "comments" as const)
      .chain((entity) =>
        fc
          .tuple(
            WHERE[entity],
            entity === "notes"
              ? FIELDS.notes.filter((p) => !("slug" in p))
              : fc.constantFrom(...BODIES).map((body) => ({ body })),
            scope,
          )
          .map(([where, patch, s]): Request => ({ kind: "updateMany", entity, where, patch: { ...patch, ...s } })),
      ),
  },
  {
    weight: 2,
    arbitrary: writable.chain((entity) =>
      fc.record({ kind: fc.constant("deleteMany" as const), entity: fc.constant(entity), where: WHERE[entity] }),
    ),
  },
);

const requestArb = fc.tuple(routeArb, fc.boolean()).map(([r, bknd]): Request => ({ ...r, bknd }));

// ---------- running one request and judging the answer ----------

const q = (v: unknown) => encodeURIComponent(JSON.stringify(v));
const byId = (a: number, b: number) => a - b;
const idsIn = (rows: unknown[]) => (rows as Row[]).map((r) => r.id).sort(byId);
const pickId = (tables: Tables, entity: string, { pick, own: mine }: Picked, c: Caller) => {
  const rows = mine && c.tenant !== null ? own(c, tables, entity) : tables[entity]!;
  const i = pick % (rows.length + 1);
  return i === rows.length ? MISSING : rows[i]!.id;
};
const resolve = (tables: Tables, c: Caller, body: Body): Body =>
  Object.fromEntries(
    Object.entries(body).map(([k, v]) => [
      k,
      typeof v === "object" && v !== null && "pick" in v ? pickId(tables, "notes", v as Picked, c) : v,
    ]),
  );

interface Sent {
  method: string;
  path: string;
  body?: unknown;
}

/** The HTTP request for `r`; `id` overrides the picked row (the missing id for the comparison of 6.2). */
function toHttp(r: Request, c: Caller, tables: Tables, id?: number): Sent {
  const base = `/api/data/${r.bknd ? "entity/" : ""}${r.entity}`;
  const at = (pick: Picked) => `${base}/${id ?? pickId(tables, r.entity, pick, c)}`;
  switch (r.kind) {
    case "list": {
      const page = r.page ?? PAGE;
      if (r.post)
        return { method: "POST", path: `${base}/query`, body: { where: r.where, sort: r.sort, with: r.with, ...page } };
      const params = [`limit=${page.limit}`, `offset=${page.offset}`];
      if (r.where) params.push(`where=${q(r.where)}`);
      if (r.sort) params.push(`sort=${r.sort}`);
      if (r.with) params.push(`with=${q(r.with)}`);
      return { method: "GET", path: `${base}?${params.join("&")}` };
    }
    case "count":
    case "exists":
      if (r.post) return { method: "POST", path: `${base}/fn/${r.kind}`, body: r.where ?? {} };
      return { method: "GET", path: `${base}/${r.kind}${r.where ? `?where=${q(r.where)}` : ""}` };
    case "one":
      return { method: "GET", path: `${at(r.pick)}${r.with ? `?with=${q(r.with)}` : ""}` };
    case "ref":
      return { method: "GET", path: `${at(r.pick)}/${r.relation}?limit=${PAGE.limit}` };
    case "create":
      return { method: "POST", path: base, body: resolve(tables, c, r.body) };
    case "updateOne":
      return { method: "PATCH", path: at(r.pick), body: resolve(tables, c, r.patch) };
    case "deleteOne":
      return { method: "DELETE", path: at(r.pick) };
    case "updateMany":
      return { method: "PATCH", path: base, body: { update: r.patch, where: r.where } };
    case "deleteMany":
      return { method: "DELETE", path: base, body: r.where };
  }
}

/** Every row of a response (and of its `with`, recursively) is of the caller's account, and `with` is exact. */
function expectOwnRows(
  c: Caller,
  tables: Tables,
  entity: string,
  rows: unknown[],
  spec: WithSpec | undefined,
  what: string,
) {
  const sees = seesFor(c);
  for (const row of rows as Row[]) {
    const stored = tables[entity]!.find((r) => r.id === row.id);
    const at = `${what}\n  ${entity} #${row.id}`;
    expect(
      c.tenant !== null && stored !== undefined && tenantOf(entity, stored) === c.tenant,
      `${at} is not of account ${c.tenant}`,
    ).toBe(true);
    if ("account_id" in row) expect(row.account_id, at).toBe(c.tenant);
    for (const [name, inner] of Object.entries(spec ?? {})) {
      const rel = relationsOf(entity)[name]!;
      const want = related(rel, stored!, tables).filter((r) => sees(rel.target, r));
      const got = row[name] as unknown;
      const gotRows = got === undefined || got === null ? [] : Array.isArray(got) ? got : [got];
      // a `with` reads at most WITH_LIMIT rows per parent (the default limit): then some of them
      if (want.length > WITH_LIMIT)
        expect(idsIn(want), `${at}: with ${name}`).toEqual(expect.arrayContaining(idsIn(gotRows)));
      else expect(idsIn(gotRows), `${at}: with ${name}`).toEqual(idsIn(want));
      expectOwnRows(c, tables, rel.target, gotRows, inner.with, what);
    }
  }
}

/** No write touches another account's rows: theirs are as before, but for references to rows the write deleted. */
function expectOthersUnchanged(c: Caller, before: Tables, after: Tables, what: string) {
  const theirs = (entity: string, rows: Row[]) =>
    rows.filter((r) => c.tenant === null || tenantOf(entity, r) !== c.tenant);
  const deleted = (entity: string) =>
    new Set(before[entity]!.filter((r) => !after[entity]!.some((a) => a.id === r.id)).map((r) => r.id));
  const gone: Record<string, Set<number>> = { note_id: deleted("notes"), author_id: deleted("users") };
  // planted links into this account lose their target as the foreign key says (set null)
  const unlinked = (r: Row) => ({
    ...r,
    ...Object.fromEntries(
      Object.entries(gone)
        .filter(([k, ids]) => ids.has(r[k] as number))
        .map(([k]) => [k, null]),
    ),
  });
  for (const entity of READS)
    expect(theirs(entity, after[entity]!), `${what}\n  changed ${entity} of another account`).toEqual(
      theirs(entity, before[entity]!).map(unlinked),
    );
  const ownRow = (entity: string, id: unknown) => {
    const row = before[entity]!.find((r) => r.id === id);
    return c.tenant !== null && row !== undefined && tenantOf(entity, row) === c.tenant;
  };
  const links = before.notes_tags!.filter((l) => !ownRow("notes", l.notes_id) && !ownRow("tags", l.tags_id));
  expect(after.notes_tags, `${what}\n  changed links of another account`).toEqual(expect.arrayContaining(links));
}

/** The rows a caller's where picks among `rows` (its hops read as the caller reads, 4.13 and 6.1). */
function matching(c: Caller, tables: Tables, entity: string, rows: Row[], where: Where | undefined): Row[] {
  const world = { schema: SCHEMA, tables, sees: seesFor(c) };
  return where === undefined ? rows : rows.filter((r) => holds(where, world, entity, r) === true);
}

/** The status a request must get, where the fixture's roles and the caller's account decide it alone. */
function expectedStatus(c: Caller, r: Request, tables: Tables, sent: Sent): number | number[] | undefined {
  const mine = (entity: string, id: unknown) => own(c, tables, entity).some((row) => row.id === id);
  const body = (sent.body ?? {}) as Body;
  const patch = (r.kind === "updateMany" ? body.update : r.kind === "deleteMany" ? {} : body) as Body;
  switch (r.kind) {
    case "list":
    case "count":
    case "exists":
      if (!canRead(c, r.entity)) return 403;
      return r.where && callerWhereProblem(SCHEMA, r.where, r.entity, (e) => canRead(c, e)) ? 400 : 200;
    case "one":
    case "ref": {
      if (!canRead(c, r.entity)) return 403;
      const id = pickId(tables, r.entity, r.pick, c);
      const row = tables[r.entity]!.find((x) => x.id === id);
      if (!row || !seesFor(c)(r.entity, row)) return 404;
      return r.kind === "ref" && !canRead(c, relationsOf(r.entity)[r.relation]!.target) ? [200, 403] : 200;
    }
    case "create": {
      if (!canCreate(c)) return 403;
      if ("account_id" in body) return 400;
      if (c.tenant === null) return 403;
      const taken = (field: string) =>
        body[field] != null && own(c, tables, r.entity).some((x) => x[field] === body[field]);
      if (r.entity === "comments" && !mine("notes", body.note_id)) return 409;
      return taken(r.entity === "tags" ? "name" : "slug") ? 409 : 201;
    }
    case "updateOne":
    case "deleteOne": {
      if (!canChange(c, r.entity)) return 403;
      const id = pickId(tables, r.entity, r.pick, c);
      const row = own(c, tables, r.entity).find((x) => x.id === id);
      if (!row) return "account_id" in patch ? [400, 404] : 404;
      if (!mayChange(c, row)) return "account_id" in patch ? [400, 403] : 403;
      if ("account_id" in patch) return 400;
      const field = r.entity === "tags" ? "name" : "slug";
      if (
        r.kind === "updateOne" &&
        patch[field] != null &&
        own(c, tables, r.entity).some((x) => x.id !== id && x[field] === patch[field])
      )
        return 409;
      if (r.kind === "updateOne" && "note_id" in patch && !mine("notes", patch.note_id)) return 409;
      return 200;
    }
    case "updateMany":
    case "deleteMany":
      if (!canChange(c, r.entity)) return 403;
      return "account_id" in patch ? 400 : 200;
  }
}

/** Ask `r` as `c` and judge the answer; returns the tables as they are afterwards (reads change nothing). */
async function check(server: TestServer, before: Tables, c: Caller, r: Request): Promise<Tables> {
  const sent = toHttp(r, c, before);
  const res = await server.request(sent.method, sent.path, sent.body, c.headers);
  const what = `${c.name}: ${sent.method} ${decodeURIComponent(sent.path)} ${sent.body === undefined ? "" : JSON.stringify(sent.body)}\n  -> ${res.status} ${res.text.slice(0, 800)}`;
  const writes = !["list", "count", "exists", "one", "ref"].includes(r.kind);
  const after = writes ? await readTables(server) : before;
  if (writes) expectOthersUnchanged(c, before, after, what);

  const want = expectedStatus(c, r, before, sent);
  if (want !== undefined) expect([want].flat(), what).toContain(res.status);

  // 6.2: another account's row answers what a row that does not exist answers, byte for byte
  if (r.kind === "one" || r.kind === "ref" || r.kind === "updateOne" || r.kind === "deleteOne") {
    const id = pickId(before, r.entity, r.pick, c);
    const row = before[r.entity]!.find((x) => x.id === id);
    if (row && (c.tenant === null || tenantOf(r.entity, row) !== c.tenant)) {
      const missing = toHttp(r, c, before, MISSING);
      const other: TestResponse = await server.request(missing.method, missing.path, missing.body, c.headers);
      expect(
        { status: res.status, text: res.text },
        `${what}\n  vs the missing id: ${other.status} ${other.text}`,
      ).toEqual({ status: other.status, text: other.text });
    }
  }
  if (res.status >= 300) return after;

  const own_ = (t: Tables) => own(c, t, r.entity);
  switch (r.kind) {
    case "list": {
      const visible = before[r.entity]!.filter((row) => seesFor(c)(r.entity, row));
      const expected = matching(c, before, r.entity, visible, r.where);
      const rows = res.body.data as Row[];
      expect(res.body.meta, what).toMatchObject({ count: expected.length, total: visible.length, items: rows.length });
      // the page: as many rows as limit and offset leave of the expected ones, every one of them expected
      const { limit, offset } = r.page ?? PAGE;
      expect(rows.length, what).toBe(Math.min(limit, Math.max(0, expected.length - offset)));
      expect(idsIn(expected), what).toEqual(expect.arrayContaining(idsIn(rows)));
      expectOwnRows(c, before, r.entity, rows, r.with, what);
      return after;
    }
    case "count":
    case "exists": {
      const visible = before[r.entity]!.filter((row) => seesFor(c)(r.entity, row));
      const n = matching(c, before, r.entity, visible, r.where).length;
      const got = r.post ? res.body[r.kind] : res.body.data[r.kind];
      expect(got, what).toBe(r.kind === "count" ? n : n > 0);
      return after;
    }
    case "one":
      expect(res.body.data.id, what).toBe(pickId(before, r.entity, r.pick, c));
      expectOwnRows(c, before, r.entity, [res.body.data], r.with, what);
      return after;
    case "ref": {
      const rel = relationsOf(r.entity)[r.relation]!;
      const parent = before[r.entity]!.find((x) => x.id === pickId(before, r.entity, r.pick, c))!;
      const want = related(rel, parent, before).filter((x) => seesFor(c)(rel.target, x));
      expect(res.body.data.length, what).toBe(Math.min(PAGE.limit, want.length));
      expect(idsIn(want), what).toEqual(expect.arrayContaining(idsIn(res.body.data)));
      expectOwnRows(c, before, rel.target, res.body.data, undefined, what);
      return after;
    }
    case "create":
    case "updateOne":
      expectOwnRows(c, after, r.entity, [res.body.data], undefined, what);
      if (r.kind === "create")
        expect(own_(after).length, `${what}\n  one more row of the account`).toBe(own_(before).length + 1);
      else
        expect(
          after[r.entity]!.find((x) => x.id === res.body.data.id),
          what,
        ).toMatchObject(sent.body as Body);
      return after;
    case "deleteOne":
      expectOwnRows(c, before, r.entity, [res.body.data], undefined, what);
      expect(
        after[r.entity]!.some((x) => x.id === res.body.data.id),
        what,
      ).toBe(false);
      return after;
    case "updateMany":
    case "deleteMany": {
      const expected = matching(
        c,
        before,
        r.entity,
        own_(before).filter((row) => mayChange(c, row)),
        r.where,
      );
      expect(idsIn(res.body.data), what).toEqual(idsIn(expected));
      expectOwnRows(c, r.kind === "deleteMany" ? before : after, r.entity, res.body.data, undefined, what);
      const changed = new Set(idsIn(expected));
      for (const row of own_(before)) {
        const now = after[r.entity]!.find((x) => x.id === row.id);
        if (r.kind === "deleteMany")
          expect(now === undefined, `${what}\n  ${r.entity} #${row.id}`).toBe(changed.has(row.id));
        else if (changed.has(row.id)) expect(now, what).toMatchObject(r.patch);
        else expect(now, `${what}\n  ${r.entity} #${row.id} is not among those asked for`).toEqual(row);
      }
      return after;
    }
  }
}

// ---------- the property ----------

/** Requests worth asking every run: another account named in a where, an `$or` around it, a path into it. */
const EXAMPLES: [boolean, number, Request][] = [
  [true, 0, { kind: "list", entity: "notes", where: { $or: [{ account_id: 2 }, { id: { $gt: 0 } }] }, post: false }],
  [true, 0, { kind: "count", entity: "notes", where: { account_id: { $ne: 1 } }, post: true }],
  [
    true,
    1,
    {
      kind: "list",
      entity: "comments",
      where: { "note.account_id": { $in: [1, 2, 3, 4] } },
      with: { note: {} },
      post: true,
    },
  ],
  [true, 2, { kind: "exists", entity: "users", where: { email: { $like: "*@t2.test" } }, post: false }],
  [
    true,
    0,
    { kind: "list", entity: "notes", with: { author: {}, comments: { with: { note: {} } }, tags: {} }, post: false },
  ],
  [
    true,
    3,
    {
      kind: "updateMany",
      entity: "notes",
      where: { $or: [{ account_id: 2 }, { title: { $ne: "zzz" } }] },
      patch: { title: "alpha" },
    },
  ],
  [true, 4, { kind: "list", entity: "accounts", where: { $not: [{ id: 1 }] }, post: false }],
];

describe("tenant isolation holds for random accounts, callers and requests (6.1, 6.2, property)", () => {
  let server: TestServer;
  let callers: Caller[];
  /** the database as the last write left it, read directly */
  let tables: Tables;

  beforeAll(async () => {
    const [specs] = fc.sample(fc.array(accountArb, { minLength: 3, maxLength: 4 }), { numRuns: 1, seed: SEED });
    ({ server, callers } = await boot(specs!));
    tables = await readTables(server);
  });
  afterAll(() => server?.close());

  it("no response holds another account's row, counts are the caller's account's, no write reaches another account (6.1, 6.2)", async () => {
    try {
      await fc.assert(
        fc.asyncProperty(fc.boolean(), fc.nat(), requestArb, async (writer, n, r) => {
          // half the time one who may write, so that writes get past the guard as often as not
          const among = writer ? callers.filter((c) => c.tenant !== null && canCreate(c)) : callers;
          tables = await check(server, tables, among[n % among.length]!, r);
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: true, includeErrorInReport: true, examples: EXAMPLES },
      );
    } catch (error) {
      // the world and the requests both come from the seed; later requests see what earlier writes did
      throw new Error(`replay with TENANCY_PROPERTY_SEED=${SEED}\n${(error as Error).message}`);
    }
  });
});
