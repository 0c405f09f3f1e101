/**
 * Which requests are incidents (§7.5): escalation attempts (writes naming privileged fields) and cross-tenant
 * attempts (a where, body or path naming another tenant's account or rows, §6.5). Pure functions over what the
 * request sent and how it was answered; the HTTP layer gathers both, and asks the one question of the database
 * (`rowsOutsideTenant`) after the answer has gone.
 */

import { type Tenancy, type TenantBinding, tenantFilter } from "../guard/tenancy.js";
import { and, certainly, type Filter, not } from "../query/ast.js";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * A JSON value is walked at most this far, breadth first and without recursion, so no input can make a walk
 * throw or run long: MAX_NODES values (a where is bounded by its parser to 500 conditions and 5,000 values, a
 * body by its size) and MAX_DEPTH levels (a where's parser takes 8, each a few JSON levels deep). The caller
 * walks each part a request uses on its own budget (monitor.ts), so padding elsewhere cannot spend it.
 */
const MAX_NODES = 10_000;
const MAX_DEPTH = 64;
const COMBINATORS = new Set(["$and", "$or", "$not"]);

/** What is left of one walk: values it may still visit. */
type Budget = { nodes: number };
const budget = (): Budget => ({ nodes: MAX_NODES });

/**
 * Visit `root` and what `visit` adds under it, level by level (shallow before deep), within the budget and
 * MAX_DEPTH levels. `add` answers false once the budget is spent: the visitor stops there.
 */
function breadthFirst(
  root: unknown,
  left: Budget,
  visit: (value: unknown, add: (child: unknown) => boolean) => void,
): void {
  if (--left.nodes < 0) return;
  let level: unknown[] = [root];
  for (let depth = 0; level.length > 0; depth++) {
    const next: unknown[] = [];
    const add = (child: unknown): boolean => {
      if (depth >= MAX_DEPTH || left.nodes <= 0) return false;
      left.nodes--;
      next.push(child);
      return true;
    };
    for (const value of level) visit(value, add);
    level = next;
  }
}

/** An id as a where or body may spell it: a number, or a string of digits. */
function idOf(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isInteger(value)) return value;
  if (typeof value === "string" && /^-?\d{1,16}$/.test(value)) return Number(value);
  return undefined;
}

/** Every id under `value`: a scalar, a list (`$in`) or an operator object (`{ $eq: 2 }`, `{ $nin: [2] }`). */
function idsUnder(value: unknown, out: number[], left: Budget): void {
  breadthFirst(value, left, (v, add) => {
    const id = idOf(v);
    if (id !== undefined) out.push(id);
    else if (Array.isArray(v)) {
      for (const item of v) if (!add(item)) return;
    } else if (isObject(v)) for (const key in v) if (!add(v[key])) return;
  });
}

/**
 * The ids a JSON value names under the keys `names` accepts, walking arrays and the objects under the keys
 * `descends` accepts: the one walker of both questions below.
 */
function idsNamed(value: unknown, names: (key: string) => boolean, descends: (key: string) => boolean): number[] {
  const out: number[] = [];
  const left = budget();
  breadthFirst(value, left, (v, add) => {
    if (Array.isArray(v)) {
      for (const item of v) if (!add(item)) return;
    } else if (isObject(v))
      for (const key in v) {
        if (left.nodes <= 0) return;
        if (names(key)) idsUnder(v[key], out, left);
        else if (descends(key) && !add(v[key])) return;
      }
  });
  return out;
}

/**
 * The account ids a where names through `field` (the tenant scope column) at any depth: at its top level, in
 * a relation's nested where or `$exists`, and in the nested wheres of a `with`.
 */
export const idsNamedBy = (value: unknown, field: string): number[] =>
  idsNamed(
    value,
    (key) => key === field || key.endsWith(`.${field}`),
    () => true,
  );

/** The ids a where names through `id` on its own entity: at its top level and inside `$and`, `$or`, `$not`. */
export const idsOfWhere = (where: unknown): number[] =>
  idsNamed(
    where,
    (key) => key === "id",
    (key) => COMBINATORS.has(key),
  );

/**
 * The ids the rows of a write set through the key column `field` (an account's, or any reference's): a row's
 * own key, of each row of a list. A value nested in a row (a JSON field's) names no row.
 */
export function idsWrittenTo(rows: unknown, field: string): number[] {
  const out: number[] = [];
  const left = budget();
  for (const row of Array.isArray(rows) ? rows : [rows]) {
    if (--left.nodes < 0) break;
    if (isObject(row) && Object.hasOwn(row, field)) idsUnder(row[field], out, left);
  }
  return out;
}

/**
 * The strings the rows of a write set `field` to (a user's email), at most `max` of them, each as `normalize`
 * makes it.
 */
export function textsWrittenTo(rows: unknown, field: string, max: number, normalize: (s: string) => string): string[] {
  const out = new Set<string>();
  for (const row of (Array.isArray(rows) ? rows : [rows]).slice(0, MAX_NODES)) {
    if (out.size >= max) break;
    if (isObject(row) && typeof row[field] === "string") out.add(normalize(row[field]));
  }
  return [...out];
}

/** The rows of `entity` whose `field` is one of `values`. */
export const rowsWhere = (field: string, values: readonly (number | string)[]): Filter => ({
  kind: "in",
  field,
  negated: false,
  values: [...values],
});

/**
 * The rows `named` of `entity` that the caller's tenant is what hides: outside the very filter its lookup ANDed
 * (tenancy.ts), so a row its own account hides by policy is not one. Undefined when the caller's tenant hides
 * nothing there: a caller of every account, an entity no tenant scopes, or the tenant entity, whose ids a path
 * names outright (`idsOfWhere`, monitor.ts).
 */
export function rowsOutsideTenant(
  tenancy: Tenancy,
  binding: TenantBinding,
  entity: string,
  named: Filter,
): Filter | undefined {
  if (binding.kind === "all" || !tenancy.scoped.has(entity)) return undefined;
  return and(named, not(certainly(tenantFilter(tenancy, entity, binding))));
}

/** Whether any named account is not the caller's own (`own` undefined: a caller bound to no account). */
export const namesAnotherTenant = (ids: readonly number[], own: number | undefined): boolean =>
  ids.some((id) => id !== own);

/** The field names a write body sets: a row's keys, each row's of a list, an update-many's `update`. */
export function writtenFields(body: unknown): Set<string> {
  const fields = new Set<string>();
  const rows = Array.isArray(body) ? body : [body];
  for (const row of rows.slice(0, MAX_NODES)) {
    if (!isObject(row)) continue;
    for (const key of Object.keys(row)) fields.add(key);
    if (isObject(row.update)) for (const key of Object.keys(row.update)) fields.add(key);
  }
  return fields;
}

/** The fields a "you may not write field(s) a, b" refusal (§4.16) names; empty for any other message. */
export function refusedFields(message: string): string[] {
  const listed = /^you may not write fields? ([^:]+)/.exec(message)?.[1];
  return listed ? listed.split(", ").map((f) => f.trim()) : [];
}

/** A refusal of writing the owner column as another user (§4.14): acting as someone else. */
export const refusedOwner = (message: string): boolean => /^you may not write field \S+: it is the owner/.test(message);
