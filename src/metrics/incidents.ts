/**
 * Which requests are incidents (§7.5): escalation attempts (writes naming privileged fields) and cross-tenant
 * attempts (a where or body naming another tenant's account, §6.5). Pure functions over what the request sent
 * and how it was answered; the HTTP layer gathers both.
 */

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** A JSON value walked at most this far: a where is bounded (500 nodes) by its parser, a body by its size. */
const MAX_NODES = 10_000;
const COMBINATORS = new Set(["$and", "$or", "$not"]);

/** An id as a where or body may spell it: a number, or a string of digits. */
function idOf(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isInteger(value)) return value;
  if (typeof value === "string" && /^-?\d{1,16}$/.test(value)) return Number(value);
  return undefined;
}

/** Every id under `value`: a scalar, a list (`$in`) or an operator object (`{ $eq: 2 }`, `{ $nin: [2] }`). */
function idsUnder(value: unknown, out: number[], budget: { nodes: number }): void {
  if (--budget.nodes < 0) return;
  const id = idOf(value);
  if (id !== undefined) out.push(id);
  else if (Array.isArray(value)) for (const v of value) idsUnder(v, out, budget);
  else if (isObject(value)) for (const v of Object.values(value)) idsUnder(v, out, budget);
}

/**
 * The ids a JSON value names under the keys `names` accepts, walking arrays and the objects under the keys
 * `descends` accepts: the one walker of both questions below.
 */
function idsNamed(value: unknown, names: (key: string) => boolean, descends: (key: string) => boolean): number[] {
  const out: number[] = [];
  const budget = { nodes: MAX_NODES };
  const walk = (v: unknown): void => {
    if (--budget.nodes < 0) return;
    if (Array.isArray(v)) for (const item of v) walk(item);
    else if (isObject(v))
      for (const [key, inner] of Object.entries(v)) {
        if (names(key)) idsUnder(inner, out, budget);
        else if (descends(key)) walk(inner);
      }
  };
  walk(value);
  return out;
}

/**
 * The account ids a JSON value names through `field` (the tenant scope column) at any depth: in a where, a
 * relation's nested where or `$exists`, and in the rows of a write alike.
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
