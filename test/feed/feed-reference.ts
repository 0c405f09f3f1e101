/**
 * The reference of the change feed (SPEC §8.2), on top of the guard's (`../guard/reference.ts`, written from the
 * SPEC): which row images a subscriber may see (its read permission row by row, §4.12, inside its tenant, §6.1,
 * and its where, every hop under its own read permission, §4.13), which fields it may read (§4.8) and on which
 * rows (§4.12, §9.4: read rules, decided on each image like the row), and the message one mutation's before and
 * after images make for it. Not a test file.
 */
import { isDeepStrictEqual } from "node:util";
import {
  allowedOn,
  type Caller,
  conditionMatches,
  defaultRole,
  foldWhere,
  type Model,
  type PolicySpec,
  type Reader,
  type RelationSpec,
  type Roles,
  type Row,
  readerOf,
  rowMatches,
  type Schema,
  type Tables,
  type Where,
} from "../guard/reference.js";
import { type FieldRule, type Fold, foldFieldRule, ruleShows } from "./field-rule-arbs.js";

const READ = "data.entity.read";

/**
 * A policy with the field rules of §4.8 (an allowlist or a denylist of the fields its grant shows) or read rules
 * of fields (§9.4, written `fields: { f: { read } }` in the config).
 */
export type FieldPolicy = PolicySpec & { fields?: string[]; omit?: string[]; fieldRules?: Record<string, FieldRule> };

/** Read rules of fields on each entity, for every role (§9.4, `field_rules` in the config). */
export type EntityRules = Partial<Record<string, Record<string, FieldRule>>>;

/** The guard's model with the entities' read rules. */
export interface FeedModel extends Model {
  entityRules: EntityRules;
}

/** The tenant a subscriber is bound to (§6.1): one account, none (it sees no scoped row), or every one. */
export type Binding = number | null | "all";

export interface Subscriber {
  name: string;
  caller: Caller;
  tenant: Binding;
  headers: Record<string, string>;
}

/** What the outbox holds of one mutation (§8.1): the stored row before and after, decoded. */
export interface OutboxEvent {
  seq: number;
  at: string;
  action: "create" | "update" | "delete";
  entity: string;
  id: number;
  before: Row | null;
  after: Row | null;
}

/**
 * A message as the subscriber must receive it (§8.2): `event`, the JSON of `data`, and as its `id` the outbox
 * sequence number (sealed: the test opens the id it gets with the server's key).
 */
export interface Message {
  event: "create" | "update" | "delete";
  seq: number;
  data: { action: string; entity: string; id: number; record: Record<string, unknown>; at: string };
}

const inTenant = (tenant: Binding, row: Row) => tenant === "all" || (tenant !== null && row.account_id === tenant);

const scopedTables = new WeakMap<Tables, Map<Binding, Tables>>();

/**
 * The tables as a subscriber bound to a tenant reads them (§6.1): every entity's rows of its tenant only (none
 * when it has none), junction tables whole. A policy filter is trusted as written (§4.13), yet its relation
 * hops and `$exists` are reads of scoped entities like any other: a row of another account, or a user without
 * one (root), must neither open nor close a row to this subscriber, or the feed would tell it about the other
 * account (the product ANDs the tenant into each subquery, `withinSubqueries` in src/guard/tenancy.ts).
 */
function tablesFor(m: Model, tables: Tables, tenant: Binding): Tables {
  if (tenant === "all") return tables;
  const memo = scopedTables.get(tables) ?? new Map<Binding, Tables>();
  scopedTables.set(tables, memo);
  if (!memo.has(tenant)) {
    const scoped = ([name, rows]: [string, Row[]]) => [
      name,
      name in m.schema ? rows.filter((r) => inTenant(tenant, r)) : rows,
    ];
    memo.set(tenant, Object.fromEntries(Object.entries(tables).map(scoped)));
  }
  return memo.get(tenant)!;
}

/**
 * The subscriber's reads at one state of the tables, for the hops of its where: an entity it may read at all,
 * the rows of it inside its read permission and its tenant, and the fields of each row it may read (§9.4).
 */
export function readerFor(m: FeedModel, tables: Tables, s: Subscriber): Reader & Required<Pick<Reader, "shows">> {
  const scoped = tablesFor(m, tables, s.tenant);
  const base = readerOf(m, scoped, s.caller);
  return {
    canRead: base.canRead,
    sees: (entity: string, row: Row) => inTenant(s.tenant, row) && base.sees(entity, row),
    // a read rule's `exists` reaches the rows of the subscriber's tenant, as a policy's filter does
    shows: showsOf(m, s.caller, scoped),
  };
}

/**
 * Whether a row image lies inside what the subscriber watches, with the tables as they are when the event is
 * sent: its tenant, its read permission on that row (a policy filter's hops reach the rows of the subscriber's
 * tenant: trusted, §4.13, yet scoped, §6.1), and its where. (The reader's memo is by id, so images, which share
 * ids with rows, are never put through it.)
 */
export function watches(
  m: Model,
  tables: Tables,
  s: Subscriber,
  reader: Reader,
  entity: string,
  where: Where | undefined,
  image: Row,
): boolean {
  const scoped = tablesFor(m, tables, s.tenant);
  return (
    inTenant(s.tenant, image) &&
    allowedOn(m, scoped, s.caller, READ, entity, image) &&
    rowMatches(m, scoped, reader, entity, image, where)
  );
}

// ---------- fields (§4.8, §4.12, §9.4) ----------

/**
 * What one policy hides of an entity's fields, and on which rows: every row when its condition does not depend
 * on the row, else the rows its condition may reach (`condition` with the row's `id`, §4.12), as read-one of
 * each row would.
 */
interface Restriction {
  hides(field: string): boolean;
  /** its read rules (§9.4): a field with one is shown only where it holds */
  rules?: Record<string, FieldRule>;
  /** the rows it restricts: undefined, every row; else those where this condition is not FALSE */
  rows?: Where;
}

/**
 * The restrictions of fields on an entity: each policy of a grant of read that may apply (an entry whose
 * policies cannot match does not apply; one that grants no row restricts none) hides what its allowlist does not
 * keep and what its denylist names (`id` always kept); all of them hold, since a grant without field rules never
 * lifts another's. Fails closed on an unknown claim.
 */
function restrictionsOf(roles: Roles, caller: Caller, entity: string): Restriction[] {
  const role = roles[caller.role ?? defaultRole(roles) ?? ""];
  const out: Restriction[] = [];
  for (const raw of role?.permissions ?? []) {
    if (typeof raw === "string" || raw.permission !== READ || raw.effect === "deny") continue;
    const folded = ((raw.policies ?? []) as FieldPolicy[]).map((p) => ({
      p,
      ...(p.condition ? foldWhere(p.condition, { entity, user: caller.user }) : { certain: true, possible: true }),
    }));
    const possible = folded.filter((f) => f.possible !== false);
    if (possible.length === 0 || folded.every((f) => f.certain === false)) continue;
    for (const { p, possible: reach } of possible) {
      if (p.effect === "deny" || (!p.fields && !p.omit && !p.fieldRules)) continue;
      out.push({
        hides: (f) => f !== "id" && ((p.fields !== undefined && !p.fields.includes(f)) || p.omit?.includes(f) === true),
        ...(p.fieldRules ? { rules: p.fieldRules } : {}),
        ...(reach === true ? {} : { rows: p.condition }),
      });
    }
  }
  return out;
}

/** On which rows a caller reads a field: every row, or only some (§4.12, §9.4). */
export type Reach = "all" | "row";

const fold3 = (xs: Fold[]): Fold => (xs.includes(false) ? false : xs.every((x) => x === true) ? true : "row");

/**
 * The fields of `visible` (every field but the hidden ones, §4.8) a caller reads on an entity, and on which
 * rows: a field a policy that reaches every row hides, or whose read rules (the entity's and those of each
 * policy that may apply, ANDed) hold on no row for this caller, is not read at all; one that a policy reaching
 * only some rows hides, or whose rules depend on the row, only on some rows. A policy reaching only some rows
 * leaves the others alone: its rule holds wherever its condition cannot.
 */
export function fieldReach(
  m: FeedModel,
  caller: Caller,
  entity: string,
  visible: readonly string[],
): Map<string, Reach> {
  const restrictions = restrictionsOf(m.roles, caller, entity);
  const out = new Map<string, Reach>();
  for (const f of visible) {
    if (restrictions.some((r) => r.rows === undefined && r.hides(f))) continue;
    const own = m.entityRules[entity]?.[f];
    const rules: Fold[] = own ? [foldFieldRule(own, caller)] : [];
    for (const r of restrictions) {
      const rule = r.rules?.[f];
      if (!rule) continue;
      const fold = foldFieldRule(rule, caller);
      rules.push(r.rows === undefined || fold === true ? fold : "row");
    }
    const ruled = fold3(rules);
    if (ruled === false) continue;
    const someRows = ruled === "row" || restrictions.some((r) => r.rows !== undefined && r.hides(f));
    out.set(f, someRows ? "row" : "all");
  }
  return out;
}

/**
 * Whether a caller reads a field on a row (§4.12, §9.4): every read rule of it holds there (the entity's, and
 * those of each policy that may reach the row), and no policy that may reach the row hides it. `tables`: the
 * rows a rule's `exists` reaches.
 */
function showsOf(m: FeedModel, caller: Caller, tables: Tables) {
  const memo = new Map<string, Restriction[]>();
  return (entity: string, row: Row, field: string): boolean => {
    if (!memo.has(entity)) memo.set(entity, restrictionsOf(m.roles, caller, entity));
    const own = m.entityRules[entity]?.[field];
    if (own && !ruleShows(own, caller, tables, row)) return false;
    const ctx = { entity, id: row.id, user: caller.user };
    return memo.get(entity)!.every((r) => {
      if (r.rows !== undefined && !conditionMatches(r.rows, ctx, true)) return true;
      const rule = r.rules?.[field];
      return !r.hides(field) && (rule === undefined || ruleShows(rule, caller, tables, row));
    });
  };
}

/** The fields a subscriber reads of one image (none when there is no image). */
export function fieldsOn(
  reach: ReadonlyMap<string, Reach>,
  reader: Required<Pick<Reader, "shows">>,
  entity: string,
  image: Row | null,
): string[] {
  if (image === null) return [];
  return [...reach].filter(([f, how]) => how === "all" || reader.shows(entity, image, f)).map(([f]) => f);
}

/**
 * The schema as one caller's where may name it (§4.8, §4.13, §9.4): a field it may not read on any row of an
 * entity is as hidden there; one it may read only on some rows is named freely but matched only there
 * (`Reader.shows`) and not as `@row.<field>`; a relation whose key it may not read on every row (on either
 * side) is as absent, since following it would tell the key; naming either is 400. `visible(entity)`: every
 * field but the hidden ones. For a where's problems only.
 */
export function schemaFor(m: FeedModel, caller: Caller, visible: (entity: string) => readonly string[]): Schema {
  const reach = (entity: string) => fieldReach(m, caller, entity, visible(entity));
  const readable = (entity: string) => [...reach(entity)].filter(([, how]) => how === "all").map(([f]) => f);
  const named = (entity: string) => [...reach(entity).keys()];
  const followable = (entity: string, rel: RelationSpec) =>
    rel.link.kind === "junction" || readable(rel.link.kind === "local" ? entity : rel.target).includes(rel.link.column);
  return Object.fromEntries(
    Object.entries(m.schema).map(([entity, spec]) => {
      const relations = Object.entries(spec.relations ?? {}).filter(([, rel]) => followable(entity, rel));
      const hidden = spec.fields.filter((f) => !named(entity).includes(f));
      const rowRuled = named(entity).filter((f) => !readable(entity).includes(f));
      return [entity, { ...spec, hidden, rowRuled, relations: Object.fromEntries(relations) }];
    }),
  );
}

// ---------- messages ----------

const pick = (row: Row, fields: readonly string[]) =>
  Object.fromEntries(fields.filter((f) => f in row).map((f) => [f, row[f]]));

/** The fields an update is compared on: `updated_at` changes on every write. */
const stampless = (fields: readonly string[]) => fields.filter((f) => f !== "updated_at");

/**
 * §8.2: visible after only is a create (with the fields it reads of the row after), before only a delete (with
 * the row as it was, and the fields it read of it), both an update with the row as it is now, unless what it
 * reads of the row after is what it read of the row before, `updated_at` aside (telling it would tell that
 * something hidden changed: a field hidden on both is no change, and `updated_at` changes on every write);
 * neither is nothing. `fields`: what it reads of each image.
 */
export function messageFor(
  event: OutboxEvent,
  fields: { before: readonly string[]; after: readonly string[] },
  before: boolean,
  after: boolean,
): Message | undefined {
  let action: Message["event"];
  let record: Record<string, unknown>;
  if (after && !before) [action, record] = ["create", pick(event.after!, fields.after)];
  else if (before && !after) [action, record] = ["delete", pick(event.before!, fields.before)];
  else if (before && after) {
    record = pick(event.after!, fields.after);
    if (isDeepStrictEqual(pick(event.after!, stampless(fields.after)), pick(event.before!, stampless(fields.before))))
      return undefined;
    action = "update";
  } else return undefined;
  return {
    event: action,
    seq: event.seq,
    data: { action, entity: event.entity, id: event.id, record, at: event.at },
  };
}
