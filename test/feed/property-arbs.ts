/**
 * The generators of the change feed's property test (`./property.test.ts`): the guard property test's cases
 * (`../guard/property-arbs.ts`: roles with relational policies, users, rows and links, writes to many rows) with
 * field lists on the read policies (§4.8), read rules of fields on them and on the entities (§9.4, some
 * following relations), tenancy on or off (§6), a where per stream, and a trusted writer's creates, updates and
 * deletes, resolved against the rows as they are when each is sent. Not a test file.
 */
import fc from "fast-check";
import { type Case, caseArb, type EntityName, type WriteOp, whereOn } from "../guard/property-arbs.js";
import type { EntrySpec, Roles, Row, Scalar, Tables, Where } from "../guard/reference.js";
import type { EntityRules, FieldPolicy } from "./feed-reference.js";
import { type FieldRule, fieldRuleArb } from "./field-rule-arbs.js";

/** The fields the writer sends per entity; `doc_id` is generated as a pick among the writer's docs. */
export const WRITABLE: Record<EntityName, string[]> = {
  docs: ["owner_id", "status", "level", "flag"],
  notes: ["owner_id", "pinned", "doc_id"],
  tags: ["owner_id", "label"],
};
/** The same domains as the guard's generators, so that policy filters and wheres hit and miss. */
const VALUES: Record<string, fc.Arbitrary<Scalar>> = {
  owner_id: fc.option(fc.integer({ min: 1, max: 4 }), { freq: 5 }),
  status: fc.option(fc.constantFrom("a", "b", "c"), { freq: 5 }),
  level: fc.option(fc.integer({ min: -1, max: 3 }), { freq: 4 }),
  flag: fc.option(fc.boolean(), { freq: 4 }),
  pinned: fc.option(fc.boolean(), { freq: 4 }),
  label: fc.option(fc.constantFrom("x", "y", "z"), { freq: 5 }),
  doc_id: fc.option(fc.nat(), { freq: 5 }),
};

export type Values = Record<string, Scalar>;
/** A write as generated: rows are picked (modulo) among the writer's rows when it is sent. */
export type Op =
  | { kind: "create"; entity: EntityName; values: Values; tenant: number }
  | { kind: "update"; entity: EntityName; pick: number; patch: Values; tenant: number }
  | { kind: "delete"; entity: EntityName; pick: number; tenant: number }
  /** many rows in one transaction, picked by a where that may follow relations (several events at once) */
  | { kind: "updateMany"; entity: EntityName; where: Where; patch: Values; tenant: number }
  /** one of the guard case's writes (update or delete, one row or many by a where) */
  | { kind: "guard"; n: number };

export const createArb = (e: EntityName): fc.Arbitrary<Values> =>
  fc.record(Object.fromEntries(WRITABLE[e].map((f) => [f, VALUES[f]!])) as Record<string, fc.Arbitrary<Scalar>>);
const patchArb = (e: EntityName): fc.Arbitrary<Values> =>
  fc
    .uniqueArray(fc.constantFrom(...WRITABLE[e]), { minLength: 1, maxLength: 2 })
    .chain((fields) =>
      fc.tuple(...fields.map((f) => VALUES[f]!)).map((vs) => Object.fromEntries(fields.map((f, i) => [f, vs[i]!]))),
    );

const entityArb = fc.constantFrom<EntityName>("docs", "docs", "notes", "notes", "tags");
const tenantArb = fc.integer({ min: 1, max: 2 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: entityArb.chain((entity) =>
      fc.record({
        kind: fc.constant("create" as const),
        entity: fc.constant(entity),
        values: createArb(entity),
        tenant: tenantArb,
      }),
    ),
    weight: 3,
  },
  {
    arbitrary: entityArb.chain((entity) =>
      fc.record({
        kind: fc.constant("update" as const),
        entity: fc.constant(entity),
        pick: fc.nat(),
        patch: patchArb(entity),
        tenant: tenantArb,
      }),
    ),
    weight: 5,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("delete" as const),
      entity: entityArb,
      pick: fc.nat(),
      tenant: tenantArb,
    }),
    weight: 1,
  },
  {
    arbitrary: entityArb.chain((entity) =>
      fc.record({
        kind: fc.constant("updateMany" as const),
        entity: fc.constant(entity),
        where: fc.oneof(whereOn(entity, "caller", 0, 1), whereOn(entity, "caller", 1, 1)),
        patch: patchArb(entity),
        tenant: tenantArb,
      }),
    ),
    weight: 1,
  },
  { arbitrary: fc.record({ kind: fc.constant("guard" as const), n: fc.nat() }), weight: 1 },
);

// ---------- field rules ----------

/**
 * Names a field rule may list (the config refuses a name no entity the policy reaches has, §1.5): those of every
 * entity, `users` included, or also those of the one entity a top-level `entity` condition names. Allowlists
 * never keep `updated_at`, so that an update of fields a subscriber cannot read is no event for it.
 */
const COMMON = { fields: ["created_at"], omit: ["created_at", "updated_at"] };
const OWN: Record<string, string[]> = {
  // `secret` is hidden (§4.8): an allowlist naming it must still not show it
  docs: ["owner_id", "status", "level", "flag", "secret"],
  notes: ["owner_id", "pinned", "doc_id"],
  tags: ["owner_id", "label"],
  users: ["email", "role"],
};
/**
 * Fields a policy's read rules (§9.4) may name: its entity's own (not the hidden `secret`) when its condition
 * names one, else fields every entity has (`users` too: the rule compiles on each entity that has the field).
 */
const RULED: Record<string, string[]> = {
  docs: ["owner_id", "status", "level", "flag", "updated_at"],
  notes: ["owner_id", "pinned", "doc_id", "updated_at"],
  tags: ["owner_id", "label", "updated_at"],
  common: ["created_at", "updated_at"],
};
/** Read rules for up to three fields, generated for each entity a policy may be written for (and for all). */
type RuleSet = Record<keyof typeof RULED, FieldRule[]>;
export type Rule =
  | { kind: "fields" | "omit"; names: number[] }
  | { kind: "rules"; names: number[]; rules: RuleSet }
  | null;
const ruleSetArb: fc.Arbitrary<RuleSet> = fc.record(
  Object.fromEntries(
    Object.keys(RULED).map((at) => [at, fc.array(fieldRuleArb(at), { minLength: 3, maxLength: 3 })]),
  ) as Record<keyof typeof RULED, fc.Arbitrary<FieldRule[]>>,
);
const namesArb = fc.uniqueArray(fc.nat({ max: 6 }), { minLength: 1, maxLength: 3 });
const ruleArb: fc.Arbitrary<Rule> = fc.option(
  fc.oneof(
    {
      arbitrary: fc.record({ kind: fc.constantFrom<"fields" | "omit">("fields", "fields", "omit"), names: namesArb }),
      weight: 3,
    },
    { arbitrary: fc.record({ kind: fc.constant("rules" as const), names: namesArb, rules: ruleSetArb }), weight: 2 },
  ),
  { freq: 3, nil: null },
);

const READ = "data.entity.read";

/**
 * The roles with field rules given in turn to their read policies that allow or filter (a rule lists only names
 * some entity the policy reaches has, or the config is refused, §1.5) and to their plain read grants (which
 * become a grant with one allow policy carrying the rule), plus `root`, which reads everything.
 */
export function withFieldRules(roles: Roles, rules: Rule[]): Roles {
  let next = 0;
  const ruled = (p: FieldPolicy): FieldPolicy => {
    const rule = rules[next++ % rules.length];
    // a condition naming the entity below its top level may reach no entity at all: no rule there
    const mentions = JSON.stringify(p.condition ?? {}).split('"entity":').length - 1;
    if (!rule || p.effect === "deny" || mentions > (p.condition && "entity" in p.condition ? 1 : 0)) return p;
    const entity = typeof p.condition?.entity === "string" ? (p.condition.entity as string) : undefined;
    if (rule.kind === "rules") {
      const at = entity && entity in RULED ? entity : "common";
      const pool = RULED[at]!;
      const rules = rule.names.map((i, k) => [pool[i % pool.length]!, rule.rules[at]![k]!] as const);
      return { ...p, fieldRules: Object.fromEntries(rules) };
    }
    const home = entity === undefined ? undefined : OWN[entity];
    const pool = [...COMMON[rule.kind], ...(home ?? [])];
    const names = [...new Set(rule.names.map((i) => pool[i % pool.length]!))];
    return { ...p, [rule.kind]: names };
  };
  const entry = (e: EntrySpec): EntrySpec => {
    if (e === READ) {
      const policy = ruled({ effect: "allow" });
      return policy.fields || policy.omit || policy.fieldRules
        ? { permission: READ, effect: "allow", policies: [policy] }
        : e;
    }
    return typeof e === "string" || e.permission !== READ || !e.policies
      ? e
      : { ...e, policies: e.policies.map(ruled) };
  };
  const out: Roles = {};
  for (const [name, role] of Object.entries(roles)) out[name] = { ...role, permissions: role.permissions.map(entry) };
  return { ...out, root: { implicit_allow: true, permissions: [] } };
}

// ---------- a case ----------

export interface FeedCase {
  base: Case;
  tenancy: boolean;
  rules: Rule[];
  /** read rules of fields on the entities, for every role (§9.4) */
  entityRules: EntityRules;
  /** the where of subscriber k's stream on entity j at k * 3 + j; undefined: none */
  wheres: (Where | undefined)[];
  ops: Op[];
  /** picks the sentinel candidates */
  seed: number;
}

const streamWhere = (e: EntityName) =>
  fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 4 },
    { arbitrary: whereOn(e, "caller", 0), weight: 2 },
    { arbitrary: whereOn(e, "caller", 1), weight: 2 },
    { arbitrary: whereOn(e, "caller", 2, 1), weight: 1 },
  );
/** Up to five subscribers (three users, anonymous, a publishable key), one stream per entity each. */
const wheresArb = fc.tuple(
  ...Array.from({ length: 5 }, () => fc.tuple(...(["docs", "notes", "tags"] as const).map(streamWhere))),
);

/** Fields of each entity a read rule of the entity may name (§9.4): any it shows but `id`. */
const ENTITY_RULED: Record<EntityName, string[]> = {
  docs: ["owner_id", "status", "level", "flag", "created_at", "updated_at"],
  notes: ["owner_id", "pinned", "doc_id", "created_at", "updated_at"],
  tags: ["owner_id", "label", "created_at", "updated_at"],
};
/** Up to two ruled fields per entity, in about half the cases. */
const entityRulesArb: fc.Arbitrary<EntityRules> = fc.oneof(
  { arbitrary: fc.constant({}), weight: 1 },
  {
    arbitrary: fc.record(
      Object.fromEntries(
        (Object.keys(ENTITY_RULED) as EntityName[]).map((e) => [
          e,
          fc
            .uniqueArray(fc.constantFrom(...ENTITY_RULED[e]), { maxLength: 2 })
            .chain((fields) =>
              fc
                .tuple(...fields.map(() => fieldRuleArb(e)))
                .map((rules) => Object.fromEntries(fields.map((f, i) => [f, rules[i]!]))),
            ),
        ]),
      ) as Record<EntityName, fc.Arbitrary<Record<string, FieldRule>>>,
    ),
    weight: 1,
  },
);

export const feedCaseArb = (writes: number): fc.Arbitrary<FeedCase> =>
  fc.record({
    base: caseArb,
    tenancy: fc.boolean(),
    rules: fc.array(ruleArb, { minLength: 16, maxLength: 16 }),
    entityRules: entityRulesArb,
    wheres: wheresArb.map((w) => w.flat()),
    ops: fc.array(opArb, { minLength: writes, maxLength: writes }),
    seed: fc.integer(),
  });

// ---------- sending a write ----------

/** An HTTP write of the trusted writer (the secret key of `tenant`, or the one without a tenant). */
export interface Write {
  method: "POST" | "PATCH" | "DELETE";
  path: string;
  body?: unknown;
  tenant: number | undefined;
  what: string;
}

/** The writer's rows of an entity: its tenant's, or every row without tenancy. */
const rowsOf = (tables: Tables, entity: string, tenant: number | undefined) =>
  tables[entity]!.filter((r) => tenant === undefined || r.account_id === tenant);

/** `doc_id` as generated (a pick) → one of the writer's docs, or null. */
function resolveValues(values: Values, tables: Tables, tenant: number | undefined): Values {
  if (!("doc_id" in values) || values.doc_id === null) return values;
  const docs = rowsOf(tables, "docs", tenant);
  return { ...values, doc_id: docs.length === 0 ? null : docs[(values.doc_id as number) % docs.length]!.id };
}

/** The HTTP request of an op on the tables as they are now; undefined when it has no row to touch. */
export function resolve(op: Op, tables: Tables, tenancy: boolean, guardWrites: WriteOp[]): Write | undefined {
  if (op.kind === "guard") {
    if (guardWrites.length === 0) return undefined;
    const w = guardWrites[op.n % guardWrites.length]!;
    const tenant = tenancy ? (op.n % 2) + 1 : undefined;
    if ("id" in w) {
      const what = `${w.kind} ${w.entity} #${w.id} ${JSON.stringify(w.patch)}`;
      return w.kind === "updateOne"
        ? { method: "PATCH", path: `/api/data/${w.entity}/${w.id}`, body: w.patch, tenant, what }
        : { method: "DELETE", path: `/api/data/${w.entity}/${w.id}`, tenant, what };
    }
    const what = `${w.kind} ${w.entity} where ${JSON.stringify(w.where)} ${JSON.stringify(w.patch)}`;
    if (w.kind === "updateMany")
      return {
        method: "PATCH",
        path: `/api/data/${w.entity}`,
        body: { update: w.patch, where: w.where },
        tenant,
        what,
      };
    return { method: "DELETE", path: `/api/data/${w.entity}`, body: w.where, tenant, what };
  }
  const tenant = tenancy ? op.tenant : undefined;
  if (op.kind === "updateMany") {
    const update = resolveValues(op.patch, tables, tenant);
    const what = `update ${op.entity} where ${JSON.stringify(op.where)} ${JSON.stringify(update)}`;
    return { method: "PATCH", path: `/api/data/${op.entity}`, body: { update, where: op.where }, tenant, what };
  }
  if (op.kind === "create") {
    const body = resolveValues(op.values, tables, tenant);
    return {
      method: "POST",
      path: `/api/data/${op.entity}`,
      body,
      tenant,
      what: `create ${op.entity} ${JSON.stringify(body)}`,
    };
  }
  const rows = rowsOf(tables, op.entity, tenant);
  if (rows.length === 0) return undefined;
  const row = rows[op.pick % rows.length]!;
  if (op.kind === "delete")
    return {
      method: "DELETE",
      path: `/api/data/${op.entity}/${row.id}`,
      tenant,
      what: `delete ${op.entity} #${row.id}`,
    };
  const body = resolveValues(op.patch, tables, tenant);
  return {
    method: "PATCH",
    path: `/api/data/${op.entity}/${row.id}`,
    body,
    tenant,
    what: `update ${op.entity} #${row.id} ${JSON.stringify(body)}`,
  };
}

// ---------- sentinels ----------

/** A write considered as a stream's last event, with the image it would make (a guess: ids are the database's). */
export interface Candidate {
  op: Op;
  entity: EntityName;
  before: Row | null;
  after: Row | null;
}

/**
 * Writes that may give a stream of `entity` a last event: deleting each of the writer's rows (a stream that sees
 * it gets a delete), and creates of random rows (`seed` picks them; the new id guessed as the next one).
 */
export function candidates(entity: EntityName, tables: Tables, tenancy: boolean, seed: number): Candidate[] {
  const out: Candidate[] = [];
  const nextId = Math.max(0, ...tables[entity]!.map((r) => r.id)) + 1;
  for (const tenant of tenancy ? [1, 2] : [undefined]) {
    const mine = rowsOf(tables, entity, tenant);
    mine.forEach((row, pick) => {
      out.push({ op: { kind: "delete", entity, pick, tenant: tenant ?? 1 }, entity, before: row, after: null });
    });
    for (const values of fc.sample(createArb(entity), { seed: seed + (tenant ?? 0), numRuns: 40 })) {
      const resolved = resolveValues(values, tables, tenant);
      const after = { id: nextId, ...resolved, ...(entity === "docs" ? { secret: null } : {}) } as Row;
      if (tenant !== undefined) after.account_id = tenant;
      out.push({ op: { kind: "create", entity, values, tenant: tenant ?? 1 }, entity, before: null, after });
    }
  }
  return out;
}
