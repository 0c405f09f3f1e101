/**
 * The app and the generators of the guard's differential property test (`./property.test.ts`): three entities
 * linked by relations (notes → doc many-to-one, docs ↔ tags many-to-many), random roles, policies whose
 * conditions look at the request and whose filters follow relations and `$exists` (§4.13), rows with random
 * keys, callers' wheres (some of them 400 by §4.8/§4.13) and writes. Not a test file.
 */
import { boolean, em, entity, enumm, number, relation, text } from "citadel";
import fc from "fast-check";
import type { EntrySpec, PolicySpec, RoleSpec, Roles, Row, Scalar, Schema, Where } from "./reference.js";
import { fits } from "./reference.js";

// ---------- the app under test ----------

export const ENTITIES = ["docs", "notes", "tags"] as const;
export type EntityName = (typeof ENTITIES)[number];

export const schemaJSON = em(
  {
    docs: entity("docs", {
      owner_id: number({ integer: true }),
      status: enumm({ enum: ["a", "b", "c"] }),
      level: number({ integer: true }),
      flag: boolean(),
      // never readable through the data API (§4.8); a policy's filter may still name it (§4.13: trusted)
      secret: text().hidden(),
    }),
    notes: entity("notes", { owner_id: number({ integer: true }), pinned: boolean() }),
    tags: entity("tags", { owner_id: number({ integer: true }), label: enumm({ enum: ["x", "y", "z"] }) }),
  },
  ({ docs, notes, tags }) => [
    relation(notes, "doc").manyToOne(docs),
    // a tag may sit on every doc: its `with` must not be cut at the default per-parent limit
    relation(docs, "tags").manyToMany(tags, { with_limit: 50 }),
  ],
).toJSON();

/** The same schema as the SPEC describes it (§1.3): `doc_id` on notes, the junction table `docs_tags`. */
export const SCHEMA: Schema = {
  docs: {
    fields: ["id", "owner_id", "status", "level", "flag", "secret"],
    hidden: ["secret"],
    relations: {
      notes: { target: "notes", many: true, link: { kind: "remote", column: "doc_id" } },
      tags: {
        target: "tags",
        many: true,
        link: { kind: "junction", table: "docs_tags", self: "docs_id", other: "tags_id" },
      },
    },
  },
  notes: {
    fields: ["id", "owner_id", "pinned", "doc_id"],
    relations: { doc: { target: "docs", many: false, link: { kind: "local", column: "doc_id" } } },
  },
  tags: {
    fields: ["id", "owner_id", "label"],
    relations: {
      docs: {
        target: "docs",
        many: true,
        link: { kind: "junction", table: "docs_tags", self: "tags_id", other: "docs_id" },
      },
    },
  },
  // the built-in auth entity; its hidden fields are never named here
  users: { fields: ["id", "email", "role"] },
};

/** Field names per entity (`users` is the built-in auth entity). */
export const FIELDS: Record<string, readonly string[]> = Object.fromEntries(
  Object.entries(SCHEMA).map(([e, s]) => [e, s.fields]),
);
/** Fields a caller may name and reads back. */
export const VISIBLE: Record<string, readonly string[]> = Object.fromEntries(
  Object.entries(SCHEMA).map(([e, s]) => [e, s.fields.filter((f) => !(s.hidden ?? []).includes(f))]),
);
/** Relations each read expands with `with`. */
export const WITH: Record<EntityName, string[]> = { docs: ["notes", "tags"], notes: ["doc"], tags: ["docs"] };

/** Role names double as `status` values, so `{ status: "@user.role" }` is a meaningful filter. */
export const ROLE_NAMES = ["a", "b", "c"] as const;
export const emailOf = (i: number) => `u${i + 1}@test.com`;

export const READ = "data.entity.read";
export const CREATE = "data.entity.create";
export const UPDATE = "data.entity.update";
export const DELETE = "data.entity.delete";

// ---------- a generated case ----------

export type Patch = Record<string, Scalar>;
export type WriteOne = {
  kind: "updateOne" | "deleteOne";
  subject: number;
  entity: EntityName;
  id: number;
  patch: Patch;
};
export type WriteMany = {
  kind: "updateMany" | "deleteMany";
  subject: number;
  entity: EntityName;
  where: Where;
  patch: Patch;
};
export type WriteOp = WriteOne | WriteMany;

type Fresh = Omit<Row, "id">;
/** The wheres one subject sends with list, count and exists. */
export type Asks = (Where | undefined)[];
export interface Case {
  roles: Roles;
  /** the role of each user; user i gets id i + 1 (created first in the seed) */
  users: string[];
  /** rows in id order (ids from 1); `docs_tags` as [doc id, tag id] pairs */
  rows: { docs: Fresh[]; notes: Fresh[]; tags: Fresh[]; docs_tags: [number, number][] };
  /**
   * callers' wheres per entity and subject (users, then anonymous): one each for list, count and exists (a
   * shorter list repeats its first); undefined = none
   */
  wheres: Record<EntityName, Asks[]>;
  writes: WriteOp[];
}

// ---------- where objects ----------

type Entry = [string, unknown];
const PATTERNS = ["a", "b*", "*c", "*", "A*", "?", "x*"];

/** Values a field can be compared with; policy filters may also use placeholders of a fitting type. */
function valueArb(field: string, placeholders: boolean): fc.Arbitrary<Scalar> {
  const ph = (...names: string[]) => (placeholders ? [fc.constantFrom(...names.map((n) => `@user.${n}`))] : []);
  switch (field) {
    case "id":
      return fc.oneof(fc.integer({ min: 1, max: 24 }), ...ph("id"));
    case "owner_id":
      return fc.oneof({ arbitrary: fc.integer({ min: 1, max: 4 }), weight: 3 }, ...ph("id").map(weight(2)));
    case "doc_id":
      return fc.oneof({ arbitrary: fc.integer({ min: 1, max: 12 }), weight: 4 }, ...ph("id").map(weight(1)));
    case "level":
      return fc.oneof({ arbitrary: fc.integer({ min: -1, max: 3 }), weight: 4 }, ...ph("id").map(weight(1)));
    case "status":
    case "role":
      return fc.oneof(
        { arbitrary: fc.constantFrom("a", "b", "c"), weight: 4 },
        ...ph("role").map(weight(2)),
        ...ph("email", "nickname").map(weight(1)),
      );
    case "label":
      return fc.oneof({ arbitrary: fc.constantFrom("x", "y", "z"), weight: 4 }, ...ph("role").map(weight(1)));
    case "secret":
      return fc.constantFrom("s", "t");
    case "email":
      return fc.oneof(fc.constantFrom(emailOf(0), emailOf(1), "nobody@test.com"), ...ph("email"));
    default:
      return fc.boolean();
  }
}
function weight<T>(w: number) {
  return (arbitrary: fc.Arbitrary<T>) => ({ arbitrary, weight: w });
}

/** Fields the generators know values for. */
const KNOWN = ["id", "owner_id", "status", "level", "flag", "pinned", "doc_id", "label", "email", "role"];
const ORDERED = new Set(["id", "owner_id", "level", "status", "doc_id"]);
const TEXT = new Set(["status", "label"]);

function fieldEntry(fields: readonly string[], placeholders: boolean): fc.Arbitrary<Entry> {
  return fc.constantFrom(...fields).chain((field) => {
    const val = valueArb(field, placeholders);
    const list = fc.array(val, { maxLength: 3 });
    const choices: fc.Arbitrary<Entry>[] = [
      val.map((v) => ["$eq", v]),
      val.map((v) => ["$ne", v]),
      list.map((l) => ["$in", l]),
      list.map((l) => ["$nin", l]),
      fc.boolean().map((v) => ["$isnull", v]),
    ];
    if (ORDERED.has(field)) {
      for (const o of ["$gt", "$gte", "$lt", "$lte"]) choices.push(val.map((v) => [o, v]));
      choices.push(fc.tuple(val, val).map((p) => ["$between", p]));
    }
    if (TEXT.has(field))
      choices.push(
        fc.constantFrom(...PATTERNS).map((p) => ["$like", p]),
        fc.constantFrom(...PATTERNS).map((p) => ["$ilike", p]),
      );
    const ops = fc.uniqueArray(fc.oneof(...choices), { minLength: 1, maxLength: 2, selector: (e) => e[0] });
    return fc
      .oneof(
        { arbitrary: ops.map((es) => Object.fromEntries(es) as unknown), weight: 6 },
        { arbitrary: val as fc.Arbitrary<unknown>, weight: 3 },
        { arbitrary: fc.constant(null), weight: 1 },
        { arbitrary: fc.array(val, { minLength: 1, maxLength: 3 }) as fc.Arbitrary<unknown>, weight: 1 },
      )
      .map((v) => [field, v] as Entry);
  });
}

/**
 * A where object over `fields`, with `$and`/`$or`/`$not` nested up to `depth`; `extra` adds entries that are
 * no plain field (relation paths, `$exists`).
 */
function whereArb(
  fields: readonly string[],
  placeholders: boolean,
  depth = 2,
  extra?: fc.Arbitrary<Entry>,
  extraWeight = 1,
): fc.Arbitrary<Where> {
  const plain = fieldEntry(fields, placeholders);
  const leaf = extra ? fc.oneof({ arbitrary: plain, weight: 2 }, { arbitrary: extra, weight: extraWeight }) : plain;
  const entry: fc.Arbitrary<Entry> =
    depth === 0
      ? leaf
      : fc.oneof(
          { arbitrary: leaf, weight: 3 },
          {
            arbitrary: fc.tuple(
              fc.constantFrom("$and", "$or", "$not"),
              fc.oneof(
                fc.array(whereArb(fields, placeholders, depth - 1, extra, extraWeight), { minLength: 1, maxLength: 2 }),
                fc.uniqueArray(leaf, { minLength: 1, maxLength: 2, selector: (e) => e[0] }).map(Object.fromEntries),
              ),
            ) as fc.Arbitrary<Entry>,
            weight: 1,
          },
        );
  return fc.uniqueArray(entry, { minLength: 1, maxLength: 2, selector: (e) => e[0] }).map(Object.fromEntries);
}

// ---------- relational filters (§4.13) ----------

/** Who writes the where: a policy (trusted, placeholders, hidden fields) or a caller (its own reach). */
type Mode = "policy" | "caller";

/**
 * `$exists` correlations by enclosing entity and target: the subquery's where names the enclosing row as
 * `@row.<field>`, comparing values of one type. NULL keys (`doc_id`, `owner_id`, `level`) make them UNKNOWN.
 */
const LINKS: Record<string, Record<string, Where[]>> = {
  docs: {
    notes: [{ doc_id: "@row.id" }, { owner_id: "@row.owner_id" }],
    docs: [{ owner_id: "@row.owner_id", id: { $ne: "@row.id" } }, { level: { $gt: "@row.level" } }],
    tags: [{ owner_id: "@row.owner_id" }],
    users: [{ id: "@row.owner_id" }, { id: { $in: ["@row.owner_id", "@row.level"] } }],
  },
  notes: {
    docs: [{ id: "@row.doc_id" }, { owner_id: "@row.owner_id" }, { id: "@row.doc_id", flag: "@row.pinned" }],
    notes: [{ doc_id: "@row.doc_id", id: { $ne: "@row.id" } }],
    tags: [{ owner_id: { $between: ["@row.owner_id", "@row.doc_id"] } }],
    users: [{ id: "@row.owner_id" }],
  },
  tags: {
    docs: [{ owner_id: "@row.owner_id" }],
    notes: [{ owner_id: { $nin: ["@row.owner_id", 1] } }],
    tags: [{ owner_id: "@row.owner_id", id: { $ne: "@row.id" } }],
    users: [{ id: "@row.owner_id" }],
  },
  users: {
    docs: [{ owner_id: "@row.id" }],
    notes: [{ owner_id: "@row.id" }],
    tags: [{ owner_id: "@row.id" }],
    users: [{ role: "@row.role", id: { $ne: "@row.id" } }],
  },
};

const fieldsFor = (entity: string, mode: Mode) => (mode === "policy" ? FIELDS[entity]! : VISIBLE[entity]!);

const cache = new Map<string, fc.Arbitrary<Where>>();

/**
 * A where on `entity` that may follow up to `hops` relations or `$exists` deep (§4.13): to-one paths in both
 * spellings and with a quantifier, to-many and many-to-many with `$some`/`$none`/`$every`, `$exists` with
 * `@row` correlations. `@row` is used only directly in an `$exists`' where, as the SPEC shows it.
 */
export function whereOn(entity: string, mode: Mode, hops: number, depth = 2): fc.Arbitrary<Where> {
  const key = `${entity} ${mode} ${hops} ${depth}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const placeholders = mode === "policy";
  const extras: fc.WeightedArbitrary<Entry>[] = [];
  if (hops > 0) {
    for (const [name, rel] of Object.entries(SCHEMA[entity]!.relations ?? {})) {
      const inner = whereOn(rel.target, mode, hops - 1, 1);
      const quantified = fc
        .tuple(fc.constantFrom("$some", "$some", "$none", "$every"), fc.oneof(inner, inner, fc.constant({})))
        .map(([q, w]) => [name, { [q]: w }] as Entry);
      extras.push({ arbitrary: quantified, weight: 2 });
      if (!rel.many)
        extras.push(
          { arbitrary: inner.map((w) => [name, w] as Entry), weight: 2 },
          {
            arbitrary: fieldEntry(fieldsFor(rel.target, mode), placeholders).map(
              ([f, v]) => [`${name}.${f}`, v] as Entry,
            ),
            weight: 2,
          },
        );
    }
    const targets = Object.keys(LINKS[entity]!);
    const exists = fc
      .record({
        target: fc.constantFrom(...targets),
        pick: fc.nat(),
        correlated: fc.oneof({ arbitrary: fc.constant(true), weight: 5 }, { arbitrary: fc.constant(false), weight: 1 }),
      })
      .chain(({ target, pick, correlated }) => {
        const links = LINKS[entity]![target]!;
        const link = correlated ? links[pick % links.length]! : undefined;
        return fc.option(whereOn(target, mode, hops - 1, 1), { nil: undefined, freq: 2 }).map((more): Entry => {
          const where = link && more ? { $and: [link, more] } : (link ?? more);
          return ["$exists", { entity: target, ...(where ? { where } : {}) }];
        });
      });
    extras.push({ arbitrary: exists, weight: 2 });
  }
  const arb =
    extras.length === 0
      ? whereArb(fieldsFor(entity, mode), placeholders, depth)
      : // a caller's where follows relations as often as it names fields; a policy's less (it decides visibility)
        whereArb(fieldsFor(entity, mode), placeholders, depth, fc.oneof(...extras), mode === "caller" ? 2 : 1);
  cache.set(key, arb);
  return arb;
}

/**
 * Entries of a caller's where that are 400 for every caller (§2.3, §4.8, §4.13): a hidden field, directly or
 * through a relation; a to-many relation without a quantifier; a field the related entity lacks.
 */
const REFUSED: Record<string, Entry[]> = {
  docs: [
    ["secret", "s"],
    ["notes", { pinned: true }],
    ["notes.pinned", true],
    ["tags", { $some: { flag: true } }],
  ],
  notes: [
    ["doc.secret", "s"],
    ["doc", { $none: { secret: "t" } }],
    ["doc", { pinned: true }],
  ],
  tags: [
    ["docs", { flag: true }],
    ["docs", { $every: { secret: { $isnull: true } } }],
  ],
};

// ---------- roles and policies ----------

/** Which entities a top-level `entity` condition value selects (decided from the SPEC's operators). */
const ENTITY_VALUES: unknown[] = [
  "docs",
  "notes",
  "tags",
  "users",
  { $in: ["docs", "notes"] },
  { $ne: "docs" },
  { $nin: ["notes"] },
  ["docs", "users"],
];
function selects(value: unknown, name: string): boolean {
  if (typeof value === "string") return value === name;
  if (Array.isArray(value)) return value.includes(name);
  const [[o, v]] = Object.entries(value as object) as [[string, string | string[]]];
  if (o === "$in") return (v as string[]).includes(name);
  if (o === "$nin") return !(v as string[]).includes(name);
  return v !== name; // $ne
}

const COMBINATORS = ["$and", "$or", "$not"];

/** A condition on the request context: `user.role`, `user.id`, `id`, combinators; `entity` sometimes nested. */
function contextEntry(depth: number): fc.Arbitrary<Entry> {
  const role = fc.constantFrom(...ROLE_NAMES);
  const leaf: fc.Arbitrary<Entry> = fc.oneof(
    fc
      .oneof(
        role as fc.Arbitrary<unknown>,
        fc.uniqueArray(role, { maxLength: 2 }).map((l) => ({ $in: l })),
        fc.uniqueArray(role, { maxLength: 2 }).map((l) => ({ $nin: l })),
        role.map((r) => ({ $ne: r })),
        fc.boolean().map((b) => ({ $isnull: b })),
      )
      .map((v) => ["user.role", v] as Entry),
    fc
      .oneof(
        fc.integer({ min: 1, max: 4 }) as fc.Arbitrary<unknown>,
        fc.integer({ min: 1, max: 4 }).map((n) => ({ $lte: n })),
        fc.uniqueArray(fc.integer({ min: 1, max: 4 }), { maxLength: 2 }).map((l) => ({ $in: l })),
        fc.uniqueArray(fc.integer({ min: 1, max: 4 }), { maxLength: 2 }).map((l) => ({ $nin: l })),
        fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 })).map((b) => ({ $between: b })),
        fc.integer({ min: 1, max: 4 }).map((n) => ({ $ne: n })),
        fc.boolean().map((b) => ({ $isnull: b })),
      )
      .map((v) => ["user.id", v] as Entry),
    fc
      .oneof(
        fc.integer({ min: 1, max: 24 }) as fc.Arbitrary<unknown>,
        fc.integer({ min: 1, max: 24 }).map((n) => ({ $lte: n })),
        fc.integer({ min: 1, max: 24 }).map((n) => ({ $gt: n })),
        fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { maxLength: 3 }).map((l) => ({ $in: l })),
        fc.boolean().map((b) => ({ $isnull: b })),
      )
      .map((v) => ["id", v] as Entry),
    fc.constantFrom(...ENTITY_VALUES).map((v) => ["entity", v] as Entry),
  );
  if (depth === 0) return leaf;
  return fc.oneof(
    { arbitrary: leaf, weight: 4 },
    {
      arbitrary: fc.tuple(
        fc.constantFrom(...COMBINATORS),
        fc.array(
          fc
            .uniqueArray(contextEntry(depth - 1), { minLength: 1, maxLength: 2, selector: (e) => e[0] })
            .map(Object.fromEntries),
          { minLength: 1, maxLength: 2 },
        ),
      ) as fc.Arbitrary<Entry>,
      weight: 1,
    },
  );
}

/** `undefined` with weight `none`, else a value of `arb` with weight `some`. */
const maybe = <T>(arb: fc.Arbitrary<T>, none: number, some: number): fc.Arbitrary<T | undefined> =>
  fc.oneof({ arbitrary: fc.constant(undefined), weight: none }, { arbitrary: arb, weight: some });

/** Filters as people write them, mixed in so that many cases have a few rows in and a few out. */
const TYPICAL: Where[] = [
  { owner_id: "@user.id" },
  { flag: true },
  { pinned: true },
  { status: "@user.role" },
  { status: { $in: ["a", "b"] } },
  { level: { $gte: 1 } },
  { $or: [{ owner_id: "@user.id" }, { flag: true }] },
  { $not: { owner_id: "@user.id" } },
  { id: { $lte: 8 } },
  // §4.13: through relations, trusted (hidden fields and entities the caller cannot read count)
  { "doc.owner_id": "@user.id" },
  { doc: { flag: true } },
  { doc: { secret: "s" } },
  { doc: { $none: { flag: false } } },
  { $exists: { entity: "docs", where: { id: "@row.doc_id", owner_id: "@user.id" } } },
  { notes: { $some: { owner_id: "@user.id" } } },
  { notes: { $none: { pinned: false } } },
  { notes: { $every: { pinned: true } } },
  { tags: { $some: { label: "x" } } },
  { $or: [{ owner_id: "@user.id" }, { notes: { $some: { owner_id: "@user.id" } } }] },
  { docs: { $some: { owner_id: "@user.id" } } },
  { docs: { $every: { flag: true } } },
  { $exists: { entity: "users", where: { id: "@row.owner_id", role: "@user.role" } } },
  { $exists: { entity: "docs", where: { owner_id: "@row.owner_id", flag: true } } },
  { $not: { $exists: { entity: "notes", where: { owner_id: "@row.owner_id", pinned: true } } } },
];

/** A policy filter that fits every entity of `homes` (a strict policy must fit each one it names). */
function filterFor(homes: string[]): fc.Arbitrary<Where> {
  const typical = TYPICAL.filter((f) => homes.every((e) => fits(SCHEMA, f, e)));
  const common = KNOWN.filter((f) => homes.every((e) => FIELDS[e]!.includes(f)));
  const random =
    homes.length === 1
      ? fc.oneof(
          { arbitrary: whereOn(homes[0]!, "policy", 0), weight: 2 },
          { arbitrary: whereOn(homes[0]!, "policy", 1), weight: 3 },
          { arbitrary: whereOn(homes[0]!, "policy", 2, 1), weight: 1 },
        )
      : whereArb(common.length === 0 ? ["id"] : common, true);
  return typical.length === 0
    ? random
    : fc.oneof({ arbitrary: fc.constantFrom(...typical), weight: 1 }, { arbitrary: random, weight: 1 });
}

const ENTITY_VALUE = fc.oneof(
  { arbitrary: fc.constant<unknown>("docs"), weight: 3 },
  { arbitrary: fc.constantFrom(...ENTITY_VALUES), weight: 2 },
);

/**
 * A policy: optional condition (a top-level `entity` key picks the entities; otherwise the policy is for every
 * entity and its filter fits one "home" entity, or all of them), an effect, and a filter exactly when the
 * effect is "filter".
 */
const policyArb: fc.Arbitrary<PolicySpec> = fc
  .record({
    topEntity: maybe(ENTITY_VALUE, 3, 2),
    rest: maybe(
      fc
        .uniqueArray(contextEntry(1), { minLength: 1, maxLength: 2, selector: (e) => e[0] })
        .map((es) => es.filter(([k]) => k !== "entity")),
      3,
      2,
    ),
    effect: fc.oneof(
      { arbitrary: fc.constant<PolicySpec["effect"]>("filter"), weight: 8 },
      { arbitrary: fc.constant<PolicySpec["effect"]>("allow"), weight: 2 },
      { arbitrary: fc.constant<PolicySpec["effect"]>("deny"), weight: 1 },
    ),
    home: fc.constantFrom<EntityName | "any">("docs", "docs", "notes", "tags", "any", "any"),
  })
  .chain(({ topEntity, rest, effect, home }) => {
    const entries: Entry[] = [...(topEntity === undefined ? [] : [["entity", topEntity] as Entry]), ...(rest ?? [])];
    const condition = entries.length > 0 ? (Object.fromEntries(entries) as Where) : undefined;
    const base = { ...(condition ? { condition } : {}), effect };
    if (effect !== "filter") return fc.constant(base as PolicySpec);
    // without a top-level entity condition the filter is lenient: it reaches no row of an entity it does not fit
    const homes =
      topEntity !== undefined
        ? Object.keys(FIELDS).filter((e) => selects(topEntity, e))
        : home === "any"
          ? ["docs", "notes", "tags"]
          : [home];
    return filterFor(homes).map((filter) => ({ ...base, filter }) as PolicySpec);
  });

const entryFor = (permission: string): fc.Arbitrary<EntrySpec> =>
  fc.oneof(
    { arbitrary: fc.constant<EntrySpec>(permission), weight: 1 },
    {
      arbitrary: fc
        .record({
          effect: fc.oneof(
            { arbitrary: fc.constant<"allow" | "deny">("allow"), weight: 6 },
            { arbitrary: fc.constant<"allow" | "deny">("deny"), weight: 1 },
          ),
          policies: fc.oneof(
            { arbitrary: fc.constant(undefined), weight: 1 },
            { arbitrary: fc.constant([] as PolicySpec[]), weight: 1 },
            { arbitrary: fc.array(policyArb, { minLength: 1, maxLength: 3 }), weight: 12 },
          ),
        })
        .map(({ policies, effect }): EntrySpec => ({ permission, effect, ...(policies ? { policies } : {}) })),
      weight: 8,
    },
  );

/** Each role gets 0–2 entries per permission (read most often), in a random order. */
const roleArb: fc.Arbitrary<RoleSpec> = fc
  .record({
    implicit_allow: fc.oneof({ arbitrary: fc.constant(false), weight: 4 }, { arbitrary: fc.constant(true), weight: 1 }),
    read: fc.array(entryFor(READ), { minLength: 1, maxLength: 2 }),
    update: fc.array(entryFor(UPDATE), { maxLength: 2 }),
    delete: fc.array(entryFor(DELETE), { maxLength: 1 }),
    create: fc.array(entryFor(CREATE), { maxLength: 1 }),
  })
  .chain(({ implicit_allow, ...byPermission }) => {
    const all = Object.values(byPermission).flat();
    return fc
      .shuffledSubarray(all, { minLength: all.length, maxLength: all.length })
      .map((permissions) => ({ implicit_allow, permissions }));
  });

const rolesArb: fc.Arbitrary<Roles> = fc
  .record({
    count: fc.integer({ min: 2, max: 3 }),
    specs: fc.array(roleArb, { minLength: 3, maxLength: 3 }),
    defaultIndex: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
  })
  .map(({ count, specs, defaultIndex }) =>
    Object.fromEntries(
      ROLE_NAMES.slice(0, count).map((name, i) => [
        name,
        defaultIndex !== undefined && defaultIndex % count === i ? { ...specs[i]!, is_default: true } : specs[i]!,
      ]),
    ),
  );

// ---------- rows and writes ----------

const docRow = fc.record({
  owner_id: fc.option(fc.integer({ min: 1, max: 4 }), { freq: 5 }),
  status: fc.option(fc.constantFrom("a", "b", "c"), { freq: 5 }),
  level: fc.option(fc.integer({ min: -1, max: 3 }), { freq: 4 }),
  flag: fc.option(fc.boolean(), { freq: 4 }),
  secret: fc.option(fc.constantFrom("s", "t"), { freq: 3 }),
});
const noteRow = (docs: number) =>
  fc.record({
    owner_id: fc.option(fc.integer({ min: 1, max: 4 }), { freq: 5 }),
    pinned: fc.option(fc.boolean(), { freq: 4 }),
    doc_id: fc.option(fc.integer({ min: 1, max: docs }), { freq: 5 }),
  });
const tagRow = fc.record({
  owner_id: fc.option(fc.integer({ min: 1, max: 4 }), { freq: 5 }),
  label: fc.option(fc.constantFrom("x", "y", "z"), { freq: 5 }),
});

const rowsArb: fc.Arbitrary<Case["rows"]> = fc
  .record({
    docs: fc.array(docRow, { minLength: 6, maxLength: 18 }),
    tags: fc.array(tagRow, { minLength: 2, maxLength: 4 }),
  })
  .chain(({ docs, tags }) =>
    fc.record({
      docs: fc.constant(docs),
      tags: fc.constant(tags),
      notes: fc.array(noteRow(docs.length), { minLength: 3, maxLength: 8 }),
      docs_tags: fc.uniqueArray(
        fc.tuple(fc.integer({ min: 1, max: docs.length }), fc.integer({ min: 1, max: tags.length })),
        {
          maxLength: 12,
          selector: ([d, t]) => `${d} ${t}`,
        },
      ),
    }),
  );

function patchArb(entityName: EntityName): fc.Arbitrary<Patch> {
  const values: Record<string, fc.Arbitrary<Scalar>> = {
    owner_id: fc.option(fc.integer({ min: 1, max: 4 }), { freq: 6 }),
    status: fc.option(fc.constantFrom("a", "b", "c"), { freq: 6 }),
    level: fc.option(fc.integer({ min: -1, max: 3 }), { freq: 6 }),
    flag: fc.boolean(),
    pinned: fc.boolean(),
    // a key to a doc the caller may not read, or to none, is refused like a missing one (§4.17)
    doc_id: fc.option(fc.integer({ min: 1, max: 20 }), { freq: 6 }),
    label: fc.option(fc.constantFrom("x", "y", "z"), { freq: 6 }),
  };
  const writable = VISIBLE[entityName]!.filter((f) => f !== "id");
  return fc
    .uniqueArray(fc.constantFrom(...writable), { minLength: 1, maxLength: 2 })
    .chain((fields) =>
      fc.tuple(...fields.map((f) => values[f]!)).map((vs) => Object.fromEntries(fields.map((f, i) => [f, vs[i]!]))),
    );
}

/** A caller's where: none, plain, through relations (§4.13), or with an entry that is 400 for everyone. */
const callerWhere = (e: EntityName) =>
  fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 2 },
    { arbitrary: whereOn(e, "caller", 0), weight: 3 },
    { arbitrary: whereOn(e, "caller", 1), weight: 5 },
    { arbitrary: whereOn(e, "caller", 2, 1), weight: 2 },
    {
      arbitrary: fc
        .tuple(whereOn(e, "caller", 1, 1), fc.constantFrom(...REFUSED[e]!))
        .map(([w, [k, v]]) => ({ ...w, [k]: v })),
      weight: 1,
    },
  );

const asksArb = (e: EntityName): fc.Arbitrary<Asks> => fc.array(callerWhere(e), { minLength: 3, maxLength: 3 });

/** The where of a write to many rows: plain fields, relation paths and `$exists`, as in a read (4.13). */
const manyWhere = (entity: EntityName): fc.Arbitrary<Where> =>
  fc.oneof(whereArb(VISIBLE[entity]!, false, 1), whereOn(entity, "caller", 1, 1));

const writeArb: fc.Arbitrary<WriteOp> = fc
  .record({
    kind: fc.constantFrom("updateOne", "updateOne", "updateOne", "deleteOne", "updateMany", "updateMany", "deleteMany"),
    subject: fc.integer({ min: 0, max: 3 }),
    entity: fc.constantFrom<EntityName>("docs", "docs", "notes"),
  })
  .chain(
    ({ kind, subject, entity }): fc.Arbitrary<WriteOp> =>
      kind === "updateOne" || kind === "deleteOne"
        ? fc
            .record({
              id: fc.oneof(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 24 })),
              patch: patchArb(entity),
            })
            .map((r) => ({ kind, subject, entity, ...r }))
        : fc
            .record({ where: manyWhere(entity), patch: patchArb(entity) })
            .map((r) => ({ kind, subject, entity, ...r })),
  );

export const caseArb: fc.Arbitrary<Case> = rolesArb.chain((roles) =>
  fc.record({
    roles: fc.constant(roles),
    users: fc.array(fc.constantFrom(...Object.keys(roles)), { minLength: 2, maxLength: 3 }),
    rows: rowsArb,
    wheres: fc.record({
      docs: fc.array(asksArb("docs"), { minLength: 4, maxLength: 4 }),
      notes: fc.array(asksArb("notes"), { minLength: 4, maxLength: 4 }),
      tags: fc.array(asksArb("tags"), { minLength: 4, maxLength: 4 }),
    }),
    writes: fc.array(writeArb, { minLength: 2, maxLength: 6 }),
  }),
);
