/**
 * An in-memory reference of the guard (SPEC §4), written from the SPEC and not from `src/guard`: who asks,
 * which permission entries apply, deny wins, AND of filters inside an entry, OR across entries, placeholders,
 * and what list / count / read one / update / delete must answer. `where` is evaluated with SQL's three-valued
 * logic (§2.2) by `test/helpers/where-reference.ts`, shared with `test/data/where-property.test.ts`. Not a test file itself.
 */

import { evalWhere, type Scalar, type Where } from "../helpers/where-reference.js";

export type { Scalar, Tri, Where } from "../helpers/where-reference.js";
export type Row = { id: number } & Record<string, Scalar>;

export interface PolicySpec {
  condition?: Where;
  effect: "allow" | "deny" | "filter";
  filter?: Where;
}
export type EntrySpec = string | { permission: string; effect: "allow" | "deny"; policies?: PolicySpec[] };
export interface RoleSpec {
  is_default?: boolean;
  implicit_allow?: boolean;
  permissions: EntrySpec[];
}
export type Roles = Record<string, RoleSpec>;

/** Who asks: a role from a token (with its claims), or nobody (`role` and `user` undefined). */
export interface Caller {
  role?: string;
  user?: Record<string, Scalar>;
}

/** The request context a policy condition is matched against (§4.3). */
export interface Context {
  entity: string;
  id?: number;
  user?: Record<string, Scalar>;
}

/** Field names of every entity (including `id`), to know when a filter names a field an entity lacks. */
export type Schema = Record<string, readonly string[]>;

/** Does the row match a caller's where? Only TRUE selects a row. */
export const rowMatches = (row: Row, where: Where | undefined): boolean =>
  where === undefined || evalWhere(where, (k) => row[k] ?? null) === true;

// ---------- policy filters: placeholders and fields ----------

/** Walk a where object, calling `field` for every field name and `value` for every operand. */
function walk(where: unknown, field: (name: string) => void, value: (v: unknown) => void): void {
  for (const [key, v] of Object.entries(where as object)) {
    if (key === "$and" || key === "$or" || key === "$not") {
      for (const item of Array.isArray(v) ? v : Object.entries(v as object).map(([k, c]) => ({ [k]: c })))
        walk(item, field, value);
      continue;
    }
    field(key);
    if (v !== null && typeof v === "object" && !Array.isArray(v))
      for (const w of Object.values(v)) [w].flat().forEach(value);
    else [v].flat().forEach(value);
  }
}

const PLACEHOLDER = /^@user\.(\w+)$/;

/**
 * A policy filter for one row of one entity (§4.4): a placeholder without a value, or a field the entity lacks,
 * makes the whole filter match nothing (even under `$not`); otherwise placeholders take the claim's value.
 */
export function filterMatches(filter: Where, row: Row, fields: readonly string[], user: Caller["user"]): boolean {
  let usable = true;
  walk(
    filter,
    (name) => {
      if (!fields.includes(name)) usable = false;
    },
    (v) => {
      const m = typeof v === "string" ? PLACEHOLDER.exec(v) : null;
      if (m) {
        const claim = user?.[m[1]!];
        if (claim === undefined || claim === null || typeof claim === "object") usable = false;
      }
    },
  );
  if (!usable) return false;
  const bound = JSON.parse(JSON.stringify(filter), (_k, v) => {
    const m = typeof v === "string" ? PLACEHOLDER.exec(v) : null;
    return m ? user![m[1]!] : v;
  }) as Where;
  return evalWhere(bound, (k) => row[k] ?? null) === true;
}

/**
 * A policy condition against the request context (§4.3, §4.12): same operators and logic as where; a missing
 * value is NULL. An allow or filter applies only when the condition is TRUE; a deny applies unless it is
 * FALSE (an unknown deny applies). `id` is always known here: routes naming no row are decided row by row.
 */
export function conditionMatches(condition: Where, ctx: Context & { id: number }, deny = false): boolean {
  const truth = evalWhere(condition, (key) => contextValue(ctx, key));
  return truth === true || (deny && truth !== false);
}

function contextValue(ctx: Context, key: string): Scalar {
  if (key === "entity") return ctx.entity;
  if (key === "id") return ctx.id ?? null;
  if (key.startsWith("user.")) return ctx.user?.[key.slice(5)] ?? null;
  throw new Error(`reference: unknown condition key ${key}`);
}

// ---------- decisions ----------

/** Denied, or granted for the rows any one grant admits; a grant is the AND of its filters ([] = every row). */
export type Decision = { granted: false; why: string } | { granted: true; grants: Where[][]; why: string };

export function defaultRole(roles: Roles): string | undefined {
  return Object.entries(roles).find(([, r]) => r.is_default)?.[0];
}

const entryOf = (raw: EntrySpec) => (typeof raw === "string" ? { permission: raw, effect: "allow" as const } : raw);

/** §4.1–4.3, 4.7, 4.12: the decision for one permission on one row (`ctx.id`). */
export function decide(roles: Roles, caller: Caller, permission: string, ctx: Context & { id: number }): Decision {
  const roleName = caller.role ?? defaultRole(roles);
  if (roleName === undefined) return { granted: false, why: "anonymous and no default role" };
  const role = roles[roleName];
  if (!role) return { granted: false, why: `unknown role ${roleName}` };
  const grants: Where[][] = [];
  const why: string[] = [];
  for (const [i, raw] of role.permissions.entries()) {
    const entry = entryOf(raw);
    if (entry.permission !== permission) continue;
    const policies = entry.policies ?? [];
    const matches = (p: PolicySpec) =>
      p.condition === undefined || conditionMatches(p.condition, ctx, entry.effect === "deny" || p.effect === "deny");
    const matched = policies.filter(matches);
    if (policies.length > 0 && matched.length === 0) continue; // the entry does not apply
    if (entry.effect === "deny") return { granted: false, why: `entry ${i} denies` };
    if (matched.some((p) => p.effect === "deny")) return { granted: false, why: `a policy of entry ${i} denies` };
    grants.push(matched.filter((p) => p.effect === "filter").map((p) => p.filter!));
    why.push(`entry ${i}`);
  }
  if (grants.length > 0) return { granted: true, grants, why: `${roleName}: ${why.join(", ")}` };
  if (role.implicit_allow) return { granted: true, grants: [[]], why: `${roleName}: implicit_allow` };
  return { granted: false, why: `${roleName}: no entry applies` };
}

/**
 * A condition folded without knowing the row: TRUE, FALSE or depends-on-the-row ("row"), where and/or/not
 * fold constants only (as the guard's compiler does). `certain` is where it is TRUE, `possible` where it is
 * not FALSE.
 */
type Fold = true | false | "row";
const and3 = (xs: Fold[]): Fold => (xs.includes(false) ? false : xs.every((x) => x === true) ? true : "row");
const or3 = (xs: Fold[]): Fold => (xs.includes(true) ? true : xs.every((x) => x === false) ? false : "row");
const not3 = (x: Fold): Fold => (x === "row" ? "row" : !x);

function foldWhere(where: Where, ctx: Context): { certain: Fold; possible: Fold } {
  const parts = Object.entries(where).map(([key, v]) => {
    const items = () =>
      (Array.isArray(v) ? v : Object.entries(v as object).map(([k, c]) => ({ [k]: c }))).map((c) =>
        foldWhere(c as Where, ctx),
      );
    if (key === "$and" || key === "$not") {
      const xs = items();
      const inner = { certain: and3(xs.map((x) => x.certain)), possible: and3(xs.map((x) => x.possible)) };
      return key === "$and" ? inner : { certain: not3(inner.possible), possible: not3(inner.certain) };
    }
    if (key === "$or") {
      const xs = items();
      return { certain: or3(xs.map((x) => x.certain)), possible: or3(xs.map((x) => x.possible)) };
    }
    if (key === "id") return { certain: "row" as Fold, possible: "row" as Fold };
    const truth = evalWhere({ [key]: v }, (k) => contextValue(ctx, k));
    return { certain: truth === true, possible: truth !== false };
  });
  return { certain: and3(parts.map((p) => p.certain)), possible: and3(parts.map((p) => p.possible)) };
}

/**
 * On a route that names no row (list, count, many-row writes) the request itself is 403 only when a deny
 * reaches every row whatever its id, or when no entry can grant any row (§4.12).
 */
export function deniedForEveryRow(roles: Roles, caller: Caller, permission: string, entity: string): boolean {
  const roleName = caller.role ?? defaultRole(roles);
  const role = roleName === undefined ? undefined : roles[roleName];
  if (!role) return true;
  const ctx = { entity, user: caller.user };
  let grantable = false;
  for (const raw of role.permissions) {
    const entry = entryOf(raw);
    if (entry.permission !== permission) continue;
    const folded = (entry.policies ?? []).map((p) => ({
      p,
      ...(p.condition ? foldWhere(p.condition, ctx) : { certain: true as Fold, possible: true as Fold }),
    }));
    if (folded.length === 0) {
      if (entry.effect === "deny") return true;
      grantable = true;
      continue;
    }
    if (entry.effect === "deny") {
      if (or3(folded.map((f) => f.possible)) === true) return true;
      continue;
    }
    if (folded.some((f) => f.p.effect === "deny" && f.possible === true)) return true;
    if (or3(folded.map((f) => f.certain)) !== false) grantable = true;
  }
  return !grantable && !role.implicit_allow;
}

/** Is the row inside what the permission grants on that very row? (routes naming no row decide row by row) */
function allowedOn(m: Model, caller: Caller, permission: string, entity: string, row: Row): boolean {
  const d = decide(m.roles, caller, permission, { entity, id: row.id, user: caller.user });
  return admits(d, row, m.schema[entity]!, caller.user);
}

/** Is the row inside a granted decision? */
export function admits(d: Decision, row: Row, fields: readonly string[], user: Caller["user"]): boolean {
  if (!d.granted) return false;
  return d.grants.some((g) => g.every((f) => filterMatches(f, row, fields, user)));
}

// ---------- operations ----------

export type Tables = Record<string, Row[]>;

const READ = "data.entity.read";
const UPDATE = "data.entity.update";
const DELETE = "data.entity.delete";

export interface Model {
  roles: Roles;
  schema: Schema;
}

export interface ListAnswer {
  status: 200 | 403;
  ids: number[];
  count: number;
  total: number;
}

/** List and count (§4.5, §4.3a): the read filter ANDed with the caller's where as a whole. */
export function list(m: Model, tables: Tables, caller: Caller, entity: string, where: Where | undefined): ListAnswer {
  if (deniedForEveryRow(m.roles, caller, READ, entity)) return { status: 403, ids: [], count: 0, total: 0 };
  const visible = tables[entity]!.filter((r) => allowedOn(m, caller, READ, entity, r));
  const ids = visible.filter((r) => rowMatches(r, where)).map((r) => r.id);
  return { status: 200, ids, count: ids.length, total: visible.length };
}

/** Read one: 403 when read is denied, 404 when the row is missing or outside the read filter. */
export function readOne(m: Model, tables: Tables, caller: Caller, entity: string, id: number): 200 | 403 | 404 {
  const d = decide(m.roles, caller, READ, { entity, id, user: caller.user });
  if (!d.granted) return 403;
  const row = tables[entity]!.find((r) => r.id === id);
  return row && admits(d, row, m.schema[entity]!, caller.user) ? 200 : 404;
}

export interface WriteAnswer {
  status: 200 | 400 | 403 | 404;
  /** ids the write reaches (200 only) */
  ids: number[];
  /** the tables after the write (unchanged unless 200) */
  tables: Tables;
  why: string;
}

const replace = (tables: Tables, entity: string, rows: Row[]): Tables => ({ ...tables, [entity]: rows });

/** Update or delete one row (§4.5, §4.6). */
export function writeOne(
  m: Model,
  tables: Tables,
  caller: Caller,
  entity: string,
  id: number,
  kind: "update" | "delete",
  patch: Record<string, Scalar> = {},
): WriteAnswer {
  const ctx = { entity, id, user: caller.user };
  const fields = m.schema[entity]!;
  const write = decide(m.roles, caller, kind === "update" ? UPDATE : DELETE, ctx);
  if (!write.granted) return { status: 403, ids: [], tables, why: write.why };
  const read = decide(m.roles, caller, READ, ctx);
  const row = tables[entity]!.find((r) => r.id === id);
  const readable = row !== undefined && admits(read.granted ? read : write, row, fields, caller.user);
  if (!readable) return { status: 404, ids: [], tables, why: "not readable" };
  if (!admits(write, row, fields, caller.user)) return { status: 403, ids: [], tables, why: "outside write filter" };
  if (kind === "delete")
    return {
      status: 200,
      ids: [id],
      tables: replace(
        tables,
        entity,
        tables[entity]!.filter((r) => r.id !== id),
      ),
      why: "deleted",
    };
  const after = { ...row, ...patch } as Row;
  if (!admits(write, after, fields, caller.user))
    return { status: 403, ids: [], tables, why: "write check: the row would leave the update filter" };
  return {
    status: 200,
    ids: [id],
    tables: replace(
      tables,
      entity,
      tables[entity]!.map((r) => (r.id === id ? after : r)),
    ),
    why: "updated",
  };
}

/** Update or delete many: exactly the rows inside read (when granted) AND the operation's filter AND where. */
export function writeMany(
  m: Model,
  tables: Tables,
  caller: Caller,
  entity: string,
  where: Where,
  kind: "update" | "delete",
  patch: Record<string, Scalar> = {},
): WriteAnswer {
  const permission = kind === "update" ? UPDATE : DELETE;
  if (deniedForEveryRow(m.roles, caller, permission, entity))
    return { status: 403, ids: [], tables, why: `${permission} denied` };
  const readable = !deniedForEveryRow(m.roles, caller, READ, entity);
  // The where of a many-row write names only readable fields (only `id` without read) and must narrow.
  const named: string[] = [];
  walk(
    where,
    (f) => named.push(f),
    () => {},
  );
  if (!readable && named.some((f) => f !== "id"))
    return { status: 400, ids: [], tables, why: "where names a field the caller cannot read" };
  if (named.length === 0 && rowMatches({} as Row, where))
    return { status: 400, ids: [], tables, why: "where matches every row" };
  const hit = (r: Row) =>
    (!readable || allowedOn(m, caller, READ, entity, r)) &&
    allowedOn(m, caller, permission, entity, r) &&
    rowMatches(r, where);
  const ids = tables[entity]!.filter(hit).map((r) => r.id);
  if (kind === "delete")
    return {
      status: 200,
      ids,
      tables: replace(
        tables,
        entity,
        tables[entity]!.filter((r) => !ids.includes(r.id)),
      ),
      why: "deleted",
    };
  const rows = tables[entity]!.map((r) => (ids.includes(r.id) ? ({ ...r, ...patch } as Row) : r));
  if (rows.some((r) => ids.includes(r.id) && !allowedOn(m, caller, permission, entity, r)))
    return { status: 403, ids: [], tables, why: "write check: a row would leave the update filter" };
  return { status: 200, ids, tables: replace(tables, entity, rows), why: "updated" };
}
