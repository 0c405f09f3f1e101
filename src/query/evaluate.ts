/**
 * The in-memory evaluator of the one Filter AST, with SQL's three-valued logic: TRUE, FALSE and UNKNOWN
 * (`null`). Policy conditions are folded with it, and anything that must judge a row outside SQL (the
 * change feed, tests' references) uses it, so every operator has exactly one meaning besides its SQL.
 */
import { type Comparison, type Filter, isOuterRef, isPlaceholder, type Operand, type Scalar } from "./ast.js";

/** TRUE, FALSE or UNKNOWN (`null`), as in SQL. */
export type Truth = boolean | null;

/**
 * Where an evaluated filter looks its fields up: a row, or a request context. `against` is the value the field is
 * compared with (none for `isnull`): a row's value is what it is, but a caller's claim is seen as a column of
 * that value's type would see it (guard/bind.ts), or as no value.
 */
export type Lookup = (field: string, against?: Scalar) => Scalar | undefined;

const and3 = (values: Truth[]): Truth => (values.includes(false) ? false : values.includes(null) ? null : true);
const or3 = (values: Truth[]): Truth => (values.includes(true) ? true : values.includes(null) ? null : false);
const not3 = (value: Truth): Truth => (value === null ? null : !value);

/** SQLite stores booleans as 0/1 and compares them as numbers. */
const comparable = (v: Scalar): number | string | null => (typeof v === "boolean" ? Number(v) : v);

function ordered(a: Scalar, b: Scalar, test: (x: number | string, y: number | string) => boolean): Truth {
  const x = comparable(a);
  const y = comparable(b);
  if (x === null || y === null) return null;
  // SQLite orders numbers before text; values of one type compare naturally
  if (typeof x !== typeof y) return test(typeof x === "number" ? 0 : 1, typeof y === "number" ? 0 : 1);
  return test(x, y);
}

const COMPARE: Record<Comparison, (x: number | string, y: number | string) => boolean> = {
  $eq: (x, y) => x === y,
  $ne: (x, y) => x !== y,
  $gt: (x, y) => x > y,
  $gte: (x, y) => x >= y,
  $lt: (x, y) => x < y,
  $lte: (x, y) => x <= y,
};

/** `*` is the only wildcard; case-insensitive patterns fold ASCII letters, as SQLite's LIKE does. */
function like(value: Scalar, pattern: Scalar, caseSensitive: boolean): Truth {
  if (value === null || pattern === null) return null;
  const fold = (t: string) => (caseSensitive ? t : t.replace(/[A-Z]/g, (c) => c.toLowerCase()));
  const parts = fold(String(pattern)).split("*");
  const text = fold(String(comparable(value)));
  // match the literal parts in order, without building a RegExp from user input
  if (parts.length === 1) return text === parts[0];
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (!text.startsWith(first) || text.length < first.length + last.length || !text.endsWith(last)) return false;
  let at = first.length;
  const end = text.length - last.length;
  for (const part of parts.slice(1, -1)) {
    const found = text.indexOf(part, at);
    if (found < 0 || found + part.length > end) return false;
    at = found + part.length;
  }
  return true;
}

const value = (operand: Operand): Scalar => {
  if (isPlaceholder(operand)) throw new Error(`unbound placeholder @${operand.placeholder}`);
  if (isOuterRef(operand)) throw new Error("an outer reference outside a subquery");
  return operand;
};

/** Evaluate one filter against `lookup`; a missing field is NULL. */
export function evaluate(filter: Filter, lookup: Lookup): Truth {
  const get = (field: string, against?: Operand): Scalar =>
    lookup(field, against === undefined ? undefined : value(against)) ?? null;
  switch (filter.kind) {
    case "const":
      return filter.value;
    case "and":
      return and3(filter.items.map((f) => evaluate(f, lookup)));
    case "or":
      return or3(filter.items.map((f) => evaluate(f, lookup)));
    case "not":
      return not3(evaluate(filter.item, lookup));
    case "compare":
      return ordered(get(filter.field, filter.value), value(filter.value), COMPARE[filter.op]);
    case "in": {
      // as in SQL: `x IN ()` is false and `x NOT IN ()` true, whatever x is
      if (filter.values.length === 0) return filter.negated;
      const found = or3(filter.values.map((v) => ordered(get(filter.field, v), value(v), COMPARE.$eq)));
      return filter.negated ? not3(found) : found;
    }
    case "like":
      return like(get(filter.field, filter.pattern), value(filter.pattern), filter.caseSensitive);
    case "isnull":
      return (get(filter.field) === null) === filter.isNull;
    case "between":
      return and3([
        ordered(get(filter.field, filter.low), value(filter.low), COMPARE.$gte),
        ordered(get(filter.field, filter.high), value(filter.high), COMPARE.$lte),
      ]);
    case "exists":
      // other rows are not at hand in memory: unknown, so a deny holds and an allow does not (fail closed)
      return null;
  }
}

/** Whether a filter can be TRUE and whether it can be FALSE for some row, in SQL's logic (NULL compares UNKNOWN). */
function outcomes(filter: Filter): { canTrue: boolean; canFalse: boolean } {
  const any = { canTrue: true, canFalse: true };
  const unknown = { canTrue: false, canFalse: false };
  switch (filter.kind) {
    case "const":
      return { canTrue: filter.value, canFalse: !filter.value };
    case "and": {
      const items = filter.items.map(outcomes);
      return { canTrue: items.every((i) => i.canTrue), canFalse: items.some((i) => i.canFalse) };
    }
    case "or": {
      const items = filter.items.map(outcomes);
      return { canTrue: items.some((i) => i.canTrue), canFalse: items.every((i) => i.canFalse) };
    }
    case "not": {
      const item = outcomes(filter.item);
      return { canTrue: item.canFalse, canFalse: item.canTrue };
    }
    case "exists":
      return { canTrue: outcomes(filter.where).canTrue, canFalse: true };
    case "compare":
      return filter.value === null ? unknown : any;
    case "between":
      return filter.low === null || filter.high === null ? unknown : any;
    case "like":
      return filter.pattern === null ? unknown : any;
    case "in":
      // as in SQL: `x IN ()` is false and `x NOT IN ()` true; a NULL among the values never makes IN true
      if (filter.values.length === 0) return { canTrue: filter.negated, canFalse: !filter.negated };
      return filter.values.every((v) => v === null) ? unknown : any;
    case "isnull":
      return any;
  }
}

/**
 * Whether some row could satisfy the filter: false when it is FALSE or UNKNOWN whatever the row holds — e.g. a
 * rule comparing a column with a caller value the caller does not have (bound to NULL, §9.1).
 */
export const canHold = (filter: Filter): boolean => outcomes(filter).canTrue;
