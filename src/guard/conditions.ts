/**
 * Policy conditions (§4.3): the `where` language matched in memory against the request context
 * `{ entity, id, user }`. Keys are `entity`, `id` and `user.<claim>`; checked once at startup.
 */
import { ConfigError } from "../errors.js";

export interface RequestContext {
  entity: string;
  id?: number;
  user?: Record<string, unknown>;
}

export type Condition = Record<string, unknown>;

const OPERATORS = new Set([
  "$eq",
  "$ne",
  "$gt",
  "$gte",
  "$lt",
  "$lte",
  "$in",
  "$nin",
  "$notin",
  "$like",
  "$ilike",
  "$isnull",
  "$between",
]);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

const isContextKey = (key: string) => key === "entity" || key === "id" || /^user\.[A-Za-z_][\w]*$/.test(key);

/** Check a condition's keys, operators and entity names; throws ConfigError with the path. */
export function validateCondition(condition: unknown, path: string, entities: ReadonlySet<string>): void {
  if (!isObject(condition)) throw new ConfigError(path, "expected an object");
  for (const [key, value] of Object.entries(condition)) {
    const at = `${path}.${key}`;
    if (key === "$and" || key === "$or" || key === "$not") {
      const items = Array.isArray(value) ? value : [value];
      items.forEach((item, i) => {
        validateCondition(item, Array.isArray(value) ? `${at}[${i}]` : at, entities);
      });
      continue;
    }
    if (!isContextKey(key))
      throw new ConfigError(at, `unknown condition key "${key}" (expected entity, id or user.<claim>)`);
    if (isObject(value))
      for (const op of Object.keys(value))
        if (!OPERATORS.has(op)) throw new ConfigError(`${at}.${op}`, `unknown operator "${op}"`);
    if (key === "entity") {
      const named = isObject(value) ? Object.values(value).flat() : [value].flat();
      for (const name of named)
        if (typeof name === "string" && !entities.has(name)) throw new ConfigError(at, `unknown entity "${name}"`);
    }
  }
}

function lookup(ctx: RequestContext, key: string): unknown {
  if (key === "entity") return ctx.entity;
  if (key === "id") return ctx.id ?? ANY_ROW;
  return ctx.user?.[key.slice("user.".length)];
}

function like(value: unknown, pattern: unknown, caseSensitive: boolean): boolean {
  if (typeof value !== "string" || typeof pattern !== "string") return false;
  const source = pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*");
  return new RegExp(`^${source}$`, caseSensitive ? "s" : "is").test(value);
}

/** Three-valued, like SQL: a comparison with a missing value (an anonymous caller's `user.id`) is unknown. */
type Truth = boolean | null | typeof MAYBE;

/** A comparison on `id` where the route names no single row: true for some rows, perhaps. */
const MAYBE = "maybe";
const ANY_ROW = Symbol("any row");

function compare(actual: unknown, op: string, expected: unknown): Truth {
  if (actual === ANY_ROW) {
    // a row always has an id
    if (op === "$isnull") return expected === false;
    if (expected === null && (op === "$eq" || op === "$ne")) return op === "$ne";
    if (Array.isArray(expected) && expected.length === 0) return op !== "$in";
    return MAYBE;
  }
  if (op === "$isnull") return (actual === undefined || actual === null) === expected;
  // As in SQL: `x IN ()` is false and `x NOT IN ()` true, whatever x is.
  if (Array.isArray(expected) && expected.length === 0) {
    if (op === "$in") return false;
    if (op === "$nin" || op === "$notin") return true;
  }
  if (actual === undefined || actual === null) return null;
  const ordered = (f: (a: number | string, b: number | string) => boolean) =>
    (typeof actual === "number" || typeof actual === "string") &&
    typeof actual === typeof expected &&
    f(actual, expected as number | string);
  switch (op) {
    case "$eq":
      return actual === expected;
    case "$ne":
      return actual !== expected;
    case "$gt":
      return ordered((a, b) => a > b);
    case "$gte":
      return ordered((a, b) => a >= b);
    case "$lt":
      return ordered((a, b) => a < b);
    case "$lte":
      return ordered((a, b) => a <= b);
    case "$in":
      return Array.isArray(expected) && expected.includes(actual);
    case "$nin":
    case "$notin":
      return Array.isArray(expected) && !expected.includes(actual);
    case "$like":
      return like(actual, expected, true);
    case "$ilike":
      return like(actual, expected, false);
    case "$between":
      return Array.isArray(expected)
        ? all([compare(actual, "$gte", expected[0]), compare(actual, "$lte", expected[1])])
        : false;
    default:
      return false;
  }
}

function all(values: Truth[]): Truth {
  if (values.includes(false)) return false;
  if (values.includes(null)) return null;
  return values.includes(MAYBE) ? MAYBE : true;
}

function any(values: Truth[]): Truth {
  if (values.includes(true)) return true;
  if (values.includes(MAYBE)) return MAYBE;
  return values.includes(null) ? null : false;
}

function evaluate(condition: Condition, ctx: RequestContext): Truth {
  return all(
    Object.entries(condition).map(([key, value]): Truth => {
      const items = () => [value].flat().map((c) => evaluate(c as Condition, ctx));
      if (key === "$and") return all(items());
      if (key === "$or") return any(items());
      if (key === "$not") {
        const inner = all(items());
        return inner === null || inner === MAYBE ? inner : !inner;
      }
      const actual = lookup(ctx, key);
      if (Array.isArray(value)) return compare(actual, "$in", value);
      if (!isObject(value)) return compare(actual, "$eq", value);
      return all(Object.entries(value).map(([op, expected]) => compare(actual, op, expected)));
    }),
  );
}

/**
 * Does the request context satisfy the condition? Only a definite yes matches: a missing value
 * (anonymous `user.*`) is unknown, and `$not` of unknown stays unknown (§4.4). On a route that names no
 * single row, comparisons on `id` may hold for some rows: `possibly` makes such a condition match (a deny
 * then holds for the whole request: when in doubt, deny); an allow needs a definite yes.
 */
export function matchCondition(condition: Condition, ctx: RequestContext, possibly = false): boolean {
  const truth = evaluate(condition, ctx);
  return truth === true || (possibly && truth === MAYBE);
}
