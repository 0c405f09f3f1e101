/**
 * The reference of the change feed (SPEC §8.2), on top of the guard's (`../guard/reference.ts`, written from the
 * SPEC): which row images a subscriber may see (its read permission row by row, §4.12, inside its tenant, §6.1,
 * and its where, every hop under its own read permission, §4.13), which fields it may read (§4.8), and the
 * message one mutation's before and after images make for it. Not a test file.
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

const READ = "data.entity.read";

/** A policy with the field rules of §4.8: an allowlist or a denylist of the fields its grant shows. */
export type FieldPolicy = PolicySpec & { fields?: string[]; omit?: string[] };

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
export function readerFor(m: Model, tables: Tables, s: Subscriber): Reader {
  const base = readerOf(m, tablesFor(m, tables, s.tenant), s.caller);
  return {
    canRead: base.canRead,
    sees: (entity: string, row: Row) => inTenant(s.tenant, row) && base.sees(entity, row),
    shows: showsOf(m.roles, s.caller),
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
      if (p.effect === "deny" || (!p.fields && !p.omit)) continue;
      out.push({
        hides: (f) => f !== "id" && ((p.fields !== undefined && !p.fields.includes(f)) || p.omit?.includes(f) === true),
        ...(reach === true ? {} : { rows: p.condition }),
      });
    }
  }
  return out;
}

/**
 * The fields of `visible` (every field but the hidden ones, §4.8) a subscriber reads on every row of an entity:
 * what an event may carry, since the feed judges rows, not fields (a field readable only on some rows is left
 * out, §9.4), and the relation keys its where may follow.
 */
export function readableFields(roles: Roles, caller: Caller, entity: string, visible: readonly string[]): string[] {
  const restrictions = restrictionsOf(roles, caller, entity);
  return visible.filter((f) => restrictions.every((r) => !r.hides(f)));
}

/** The fields of `visible` a subscriber reads on some row at least: those no row-independent policy hides. */
function fieldsOnSomeRows(roles: Roles, caller: Caller, entity: string, visible: readonly string[]): string[] {
  const restrictions = restrictionsOf(roles, caller, entity).filter((r) => r.rows === undefined);
  return visible.filter((f) => restrictions.every((r) => !r.hides(f)));
}

/** Whether a caller reads a field on a row (§4.12, §9.4): no policy that may reach the row hides it. */
function showsOf(roles: Roles, caller: Caller) {
  const memo = new Map<string, Restriction[]>();
  return (entity: string, row: Row, field: string): boolean => {
    if (!memo.has(entity)) memo.set(entity, restrictionsOf(roles, caller, entity));
    const ctx = { entity, id: row.id, user: caller.user };
    return memo
      .get(entity)!
      .every((r) => !r.hides(field) || (r.rows !== undefined && !conditionMatches(r.rows, ctx, true)));
  };
}

/**
 * The schema as one caller's where may name it (§4.8, §4.13, §9.4): a field it may not read on any row of an
 * entity is as hidden there; one it may read only on some rows is named freely but matched only there
 * (`Reader.shows`) and not as `@row.<field>`; a relation whose key it may not read on every row (on either
 * side) is as absent, since following it would tell the key; naming either is 400. `visible(entity)`: every
 * field but the hidden ones. For a where's problems only.
 */
export function schemaFor(m: Model, caller: Caller, visible: (entity: string) => readonly string[]): Schema {
  const readable = (entity: string) => readableFields(m.roles, caller, entity, visible(entity));
  const named = (entity: string) => fieldsOnSomeRows(m.roles, caller, entity, visible(entity));
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

/**
 * §8.2: visible after only is a create, before only a delete (with the row as it was), both an update with the
 * row as it is now, unless no field the subscriber reads changed (telling it would tell that something hidden
 * did); neither is nothing.
 */
export function messageFor(
  event: OutboxEvent,
  fields: readonly string[],
  before: boolean,
  after: boolean,
): Message | undefined {
  let action: Message["event"];
  let record: Record<string, unknown>;
  if (after && !before) [action, record] = ["create", pick(event.after!, fields)];
  else if (before && !after) [action, record] = ["delete", pick(event.before!, fields)];
  else if (before && after) {
    record = pick(event.after!, fields);
    if (isDeepStrictEqual(record, pick(event.before!, fields))) return undefined;
    action = "update";
  } else return undefined;
  return {
    event: action,
    seq: event.seq,
    data: { action, entity: event.entity, id: event.id, record, at: event.at },
  };
}
