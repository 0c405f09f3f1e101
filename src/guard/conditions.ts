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
  if (key === "id") return ctx.id;
  return ctx.user?.[key.slice("user.".length)];
}

function like(value: unknown, pattern: unknown, caseSensitive: boolean): boolean {
  if (typeof value !== "string" || typeof pattern !== "string") return false;
  const source = pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*");
  return new RegExp(`^${source}$`, caseSensitive ? "s" : "is").test(value);
}

function compare(actual: unknown, op: string, expected: unknown): boolean {
  const ordered = (f: (a: number | string, b: number | string) => boolean) =>
    (typeof actual === "number" || typeof actual === "string") &&
    typeof actual === typeof expected &&
    f(actual, expected as number | string);
  switch (op) {
    case "$eq":
      return actual === expected;
    case "$ne":
      return actual !== undefined && actual !== expected;
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
      return actual !== undefined && Array.isArray(expected) && !expected.includes(actual);
    case "$like":
      return like(actual, expected, true);
    case "$ilike":
      return like(actual, expected, false);
    case "$isnull":
      return (actual === undefined || actual === null) === expected;
    case "$between":
      return Array.isArray(expected) && compare(actual, "$gte", expected[0]) && compare(actual, "$lte", expected[1]);
    default:
      return false;
  }
}

/** Does the request context satisfy the condition? Unknown values (anonymous `user.*`) never match. */
export function matchCondition(condition: Condition, ctx: RequestContext): boolean {
  return Object.entries(condition).every(([key, value]) => {
    if (key === "$and") return [value].flat().every((c) => matchCondition(c as Condition, ctx));
    if (key === "$or") return [value].flat().some((c) => matchCondition(c as Condition, ctx));
    if (key === "$not") return ![value].flat().every((c) => matchCondition(c as Condition, ctx));
    const actual = lookup(ctx, key);
    if (Array.isArray(value)) return compare(actual, "$in", value);
    if (!isObject(value)) return compare(actual, "$eq", value);
    return Object.entries(value).every(([op, expected]) => compare(actual, op, expected));
  });
}
