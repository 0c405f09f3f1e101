/**
 * The reference of relational filters (SPEC §4.13), written from the SPEC and not from `src/query`: relation
 * paths (`{ "doc.flag": true }`, `{ doc: {…} }`, `{ notes: { $some | $none | $every: {…} } }`, many-to-many
 * through a junction table) and `$exists: { entity, where }` whose where may name the enclosing row as
 * `@row.<field>`. Each is SQL's EXISTS of a related row, so it is TRUE or FALSE, never UNKNOWN; `$every` is
 * "no related row fails it" (a related row whose condition is UNKNOWN does not fail it, as with
 * `NOT EXISTS (… AND NOT inner)` in SQL). Which related rows count is the caller's business: every row for a
 * policy's filter (trusted as written), the rows it may read for a caller's where. Not a test file.
 */

import { type Env, evalWhere, NULL, type Scalar, type Tri, type Where } from "../helpers/where-reference.js";

export type Row = { id: number } & Record<string, Scalar>;
/** Rows of every entity, and of junction tables, by table name. */
export type Tables = Record<string, Row[]>;

/** How a relation links two rows: a key on this row, a key on the related row, or a junction table. */
export type Link =
  | { kind: "local"; column: string }
  | { kind: "remote"; column: string }
  | { kind: "junction"; table: string; self: string; other: string };
export interface RelationSpec {
  target: string;
  many: boolean;
  link: Link;
}
export interface EntitySpec {
  /** every field, `id` included */
  fields: readonly string[];
  /** fields never readable through the data API (§4.8) */
  hidden?: readonly string[];
  /**
   * fields a caller may read only on some rows (§9.4, §4.12): a where may name them (matched only where they
   * are readable, `World.shows`) but not as `@row.<field>`, whose value a subquery would compare on every row
   */
  rowRuled?: readonly string[];
  relations?: Record<string, RelationSpec>;
}
export type Schema = Record<string, EntitySpec>;

const QUANTIFIERS = ["$some", "$none", "$every"];
const COMBINATORS = ["$and", "$or", "$not"];
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The rows a relation links to one row. */
export function related(rel: RelationSpec, row: Row, tables: Tables): Row[] {
  const link = rel.link;
  const rows = tables[rel.target]!;
  if (link.kind === "local") return row[link.column] === null ? [] : rows.filter((r) => r.id === row[link.column]);
  if (link.kind === "remote") return rows.filter((r) => r[link.column] === row.id);
  const others = new Set(tables[link.table]!.filter((j) => j[link.self] === row.id).map((j) => j[link.other]));
  return rows.filter((r) => others.has(r.id));
}

/** `{ rel: { $none: w } }` → ["$none", w]; `{ rel: w }` → ["$some", w]. */
function quantified(value: unknown): [string, unknown] {
  const keys = isObject(value) ? Object.keys(value) : [];
  return keys.length === 1 && QUANTIFIERS.includes(keys[0]!)
    ? [keys[0]!, (value as Where)[keys[0]!]]
    : ["$some", value];
}

/** What an evaluation sees: the schema, the tables, and which related rows count. */
export interface World {
  schema: Schema;
  tables: Tables;
  sees(entity: string, row: Row): boolean;
  /** whether a caller's where sees a field of a row (§9.4: only where it may read it); every field when absent */
  shows?(entity: string, row: Row, field: string): boolean;
}
interface Frame {
  entity: string;
  row: Row;
  outer?: Frame;
}

/** The truth of a where (placeholders already bound) for one row of `entity`. */
export function holds(where: Where, world: World, entity: string, row: Row): Tri {
  return truth(where, world, { entity, row });
}

function truth(where: Where, world: World, frame: Frame): Tri {
  const env: Env = {
    get: (key) => frame.row[key] ?? null,
    hop: (key, value) => hop(key, value, world, frame),
    operand: (v) =>
      typeof v === "string" && v.startsWith("@row.") && frame.outer ? (frame.outer.row[v.slice(5)] ?? NULL) : v,
    ...(world.shows ? { shown: (key: string) => world.shows!(frame.entity, frame.row, key) } : {}),
  };
  return evalWhere(where, env);
}

function hop(key: string, value: unknown, world: World, frame: Frame): Tri | undefined {
  if (key === "$exists") {
    const { entity, where } = value as { entity: string; where?: Where };
    return world.tables[entity]!.some(
      (r) => world.sees(entity, r) && truth(where ?? {}, world, { entity, row: r, outer: frame }) === true,
    );
  }
  const spec = world.schema[frame.entity]!;
  if (spec.fields.includes(key)) return undefined;
  const dot = key.indexOf(".");
  const rel = spec.relations?.[dot > 0 ? key.slice(0, dot) : key];
  if (!rel) throw new Error(`reference: ${frame.entity} has no field or relation "${key}"`);
  const [quantifier, inner] = quantified(dot > 0 ? { [key.slice(dot + 1)]: value } : value);
  const rows = related(rel, frame.row, world.tables).filter((r) => world.sees(rel.target, r));
  const at = (r: Row) => truth(inner as Where, world, { entity: rel.target, row: r, outer: frame });
  if (quantifier === "$every") return !rows.some((r) => at(r) === false);
  const some = rows.some((r) => at(r) === true);
  return quantifier === "$some" ? some : !some;
}

// ---------- what a where may name ----------

/** What a where may name: a policy's filter every field and entity, a caller's where what it may read. */
interface Reach {
  field(entity: string, name: string): boolean;
  /** what `@row.<field>` may name of the outer row; `field` when absent */
  outerField?(entity: string, name: string): boolean;
  entity(name: string): boolean;
  /** whether `@row.<field>` outside any subquery is an error (policy) rather than literal text (caller) */
  strictRow: boolean;
}

/** Operands of a field's condition: the value, an operator's value, list items. */
const operandsOf = (v: unknown): unknown[] =>
  Array.isArray(v) ? v.flatMap(operandsOf) : isObject(v) ? Object.values(v).flatMap(operandsOf) : [v];

/**
 * The first thing a where names that `reach` does not allow, or undefined. `outer` is the entity `@row` may
 * name: undefined outside any subquery, null where it may not (across a junction table).
 */
function problem(
  schema: Schema,
  where: unknown,
  entity: string,
  reach: Reach,
  outer: string | null | undefined,
  path: string,
): string | undefined {
  if (!isObject(where)) return `${path}: expected an object of conditions`;
  for (const [key, v] of Object.entries(where)) {
    const at = `${path}.${key}`;
    let found: string | undefined;
    if (COMBINATORS.includes(key)) {
      const items = Array.isArray(v) ? v : isObject(v) ? Object.entries(v).map(([k, c]) => ({ [k]: c })) : undefined;
      if (!items) return `${at}: expected an array or an object of conditions`;
      for (const item of items) found ??= problem(schema, item, entity, reach, outer, at);
    } else if (key === "$exists") {
      if (!isObject(v) || typeof v.entity !== "string" || Object.keys(v).some((k) => k !== "entity" && k !== "where"))
        return `${at}: expected { entity, where }`;
      if (!schema[v.entity] || !reach.entity(v.entity)) return `${at}.entity: unknown entity "${v.entity}"`;
      found = problem(schema, v.where ?? {}, v.entity, reach, entity, `${at}.where`);
    } else if (key.startsWith("$")) return `${at}: unknown combinator`;
    else if (schema[entity]!.fields.includes(key) && reach.field(entity, key)) {
      for (const o of operandsOf(v)) {
        if (typeof o !== "string" || !o.startsWith("@row.")) continue;
        if (outer === undefined && !reach.strictRow) continue; // a caller's literal text
        if (!outer) return `${at}: ${o} names the outer row outside $exists or a relation`;
        if (!schema[outer]!.fields.includes(o.slice(5)) || !(reach.outerField ?? reach.field)(outer, o.slice(5)))
          return `${at}: unknown field in ${o}`;
      }
    } else {
      const dot = key.indexOf(".");
      const rel = schema[entity]!.relations?.[dot > 0 ? key.slice(0, dot) : key];
      if (!rel || !reach.entity(rel.target)) return `${at}: unknown field "${key}"`;
      const value = dot > 0 ? { [key.slice(dot + 1)]: v } : v;
      const [quantifier, inner] = quantified(value);
      if (rel.many && quantifier === "$some" && inner === value)
        return `${at}: a to-many relation needs $some, $none or $every`;
      found = problem(schema, inner, rel.target, reach, rel.link.kind === "junction" ? null : entity, at);
    }
    if (found) return found;
  }
  return undefined;
}

/**
 * Does a policy's filter fit an entity (every name it uses exists there, a policy's reach being everything,
 * §4.13)? A filter that does not fit an entity it applies to reaches none of its rows.
 */
export function fits(schema: Schema, where: Where, entity: string): boolean {
  const reach: Reach = { field: () => true, entity: () => true, strictRow: true };
  return problem(schema, where, entity, reach, undefined, "filter") === undefined;
}

/**
 * Why a caller's where is 400, or undefined (§2.3, §4.8, §4.13, §9.4): it may name only fields it may read
 * (never a hidden one; as `@row.<field>`, none it may read only on some rows) and follow only relations and
 * `$exists` into entities it may read at all.
 */
export function callerWhereProblem(
  schema: Schema,
  where: Where,
  entity: string,
  canRead: (entity: string) => boolean,
): string | undefined {
  const field = (e: string, name: string) => !(schema[e]!.hidden ?? []).includes(name);
  const reach: Reach = {
    field,
    outerField: (e, name) => field(e, name) && !(schema[e]!.rowRuled ?? []).includes(name),
    entity: (e) => canRead(e),
    strictRow: false,
  };
  return problem(schema, where, entity, reach, undefined, "where");
}
