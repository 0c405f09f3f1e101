/**
 * The one filter AST. A caller's `where`, a policy's `filter` and condition, and (later) tenant scopes all
 * become a Filter, and `compile.ts` turns any Filter into a Kysely expression. Values are always bound
 * parameters. `exists` is a correlated subquery: relation paths and `$exists` (§4.13) compile to it.
 */

export type Scalar = string | number | boolean | null;

export const COMPARISONS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"] as const;
export type Comparison = (typeof COMPARISONS)[number];

/** A value that is not known until request time, e.g. `@user.id` → `{ placeholder: "user.id" }`. */
export interface Placeholder {
  placeholder: string;
  /**
   * what the column it is compared with holds: a caller's value of another type (a string claim against a
   * number column) binds as no value, so the comparison is UNKNOWN on every engine instead of a PostgreSQL
   * type error (500) or SQLite's cross-type comparison
   */
  expects?: "number" | "string" | "boolean";
  /** a date column: the caller's value binds as a write would store it (schema/dates.ts), or as no value */
  date?: "date" | "datetime";
}

/** A column of the enclosing row, inside an `exists` (`@row.team_id`, or the key a relation path follows). */
export interface OuterRef {
  outer: string;
}

export type Operand = Scalar | Placeholder | OuterRef;

export type Filter =
  | { kind: "const"; value: boolean }
  | { kind: "and"; items: Filter[] }
  | { kind: "or"; items: Filter[] }
  | { kind: "not"; item: Filter }
  | { kind: "compare"; field: string; op: Comparison; value: Operand }
  | { kind: "in"; field: string; negated: boolean; values: Operand[] }
  | { kind: "like"; field: string; caseSensitive: boolean; pattern: Operand }
  | { kind: "isnull"; field: string; isNull: boolean }
  | { kind: "between"; field: string; low: Operand; high: Operand }
  /** some row of `table` satisfies `where` (whose OuterRefs name the enclosing row's columns) */
  | { kind: "exists"; table: string; where: Filter };

export const TRUE: Filter = { kind: "const", value: true };
export const FALSE: Filter = { kind: "const", value: false };

export const isPlaceholder = (v: unknown): v is Placeholder =>
  typeof v === "object" && v !== null && "placeholder" in v;

export const isOuterRef = (v: unknown): v is OuterRef => typeof v === "object" && v !== null && "outer" in v;

/** AND several filters; `undefined` entries mean "no restriction". */
export function and(...filters: (Filter | undefined)[]): Filter {
  const items = filters.filter((f): f is Filter => f !== undefined && !(f.kind === "const" && f.value));
  if (items.some((f) => f.kind === "const" && !f.value)) return FALSE;
  if (items.length === 0) return TRUE;
  if (items.length === 1) return items[0] as Filter;
  return { kind: "and", items };
}

/** OR several filters: any unrestricted one makes the whole unrestricted. */
export function or(...filters: Filter[]): Filter {
  if (filters.some((f) => f.kind === "const" && f.value)) return TRUE;
  const items = filters.filter((f) => !(f.kind === "const" && !f.value));
  if (items.length === 0) return FALSE;
  return items.length === 1 ? (items[0] as Filter) : { kind: "or", items };
}

/**
 * `filter IS TRUE`, written with the AST's own nodes: TRUE where the filter is TRUE, FALSE where it is FALSE or
 * UNKNOWN, so a NOT around it can never turn an UNKNOWN into a TRUE that depends on something else. A leaf
 * holds only when its field and operands are not NULL (`x IN (…, NULL)` and `x NOT IN (…, NULL)` as SQL
 * decides them); EXISTS and IS NULL are two-valued already. Meant for filters over one row whose operands
 * are bound values (a field rule bound for a request); an outer reference is taken as not NULL.
 */
export function certainly(filter: Filter): Filter {
  return truth(filter, true);
}

/** Where `filter` is certainly `wanted` (TRUE or FALSE): never where it is UNKNOWN. */
function truth(filter: Filter, wanted: boolean): Filter {
  switch (filter.kind) {
    case "const":
      return filter.value === wanted ? TRUE : FALSE;
    case "and":
      return wanted ? and(...filter.items.map((f) => truth(f, true))) : or(...filter.items.map((f) => truth(f, false)));
    case "or":
      return wanted ? or(...filter.items.map((f) => truth(f, true))) : and(...filter.items.map((f) => truth(f, false)));
    case "not":
      return truth(filter.item, !wanted);
    case "exists":
    case "isnull":
      return wanted ? filter : not(filter);
    case "in": {
      // `x IN ()` is FALSE and `x NOT IN ()` TRUE, even for a NULL x (compile.ts)
      if (filter.values.length === 0) return truth(filter.negated ? TRUE : FALSE, wanted);
      const known = filter.values.filter((v) => v !== null);
      const member: Filter = { kind: "in", field: filter.field, negated: false, values: known };
      const notNull: Filter = { kind: "isnull", field: filter.field, isNull: false };
      // x IN list is TRUE when x is one of its values, FALSE when x is none and the list holds no NULL
      const isMember = wanted !== filter.negated;
      if (isMember) return known.length === 0 ? FALSE : and(notNull, member);
      return known.length < filter.values.length ? FALSE : and(notNull, not(member));
    }
    default: {
      const operands =
        filter.kind === "compare"
          ? [filter.value]
          : filter.kind === "like"
            ? [filter.pattern]
            : [filter.low, filter.high];
      if (operands.some((o) => o === null)) return FALSE;
      const notNull: Filter = { kind: "isnull", field: filter.field, isNull: false };
      return and(notNull, wanted ? filter : not(filter));
    }
  }
}

/** NOT a filter; constants fold, so a where naming no field always reduces to TRUE or FALSE. */
export function not(filter: Filter): Filter {
  return filter.kind === "const" ? { kind: "const", value: !filter.value } : { kind: "not", item: filter };
}

/** Every field of the filtered row a filter names (a subquery names its own table's, save its outer refs). */
export function fieldsOf(filter: Filter, into = new Set<string>()): Set<string> {
  switch (filter.kind) {
    case "const":
      return into;
    case "and":
    case "or":
      for (const f of filter.items) fieldsOf(f, into);
      return into;
    case "not":
      return fieldsOf(filter.item, into);
    case "exists":
      mapOperands(filter.where, (o) => {
        if (isOuterRef(o)) into.add(o.outer);
        return o;
      });
      return into;
    default:
      into.add(filter.field);
      return into;
  }
}

/** A copy of the filter with every operand (value, list item, pattern, bound) passed through `fn`. */
export function mapOperands(filter: Filter, fn: (operand: Operand) => Operand): Filter {
  switch (filter.kind) {
    case "const":
    case "isnull":
      return filter;
    case "and":
    case "or":
      return { ...filter, items: filter.items.map((f) => mapOperands(f, fn)) };
    case "not":
      return { ...filter, item: mapOperands(filter.item, fn) };
    case "exists":
      // outer refs of a nested subquery belong to its own enclosing row, not to ours
      return { ...filter, where: mapOperands(filter.where, (o) => (isOuterRef(o) ? o : fn(o))) };
    case "compare":
      return { ...filter, value: fn(filter.value) };
    case "in":
      return { ...filter, values: filter.values.map(fn) };
    case "like":
      return { ...filter, pattern: fn(filter.pattern) };
    case "between":
      return { ...filter, low: fn(filter.low), high: fn(filter.high) };
  }
}

/** Whether any node of a filter, those of its subqueries included, satisfies `test`. */
export function someNode(filter: Filter, test: (node: Filter) => boolean): boolean {
  if (test(filter)) return true;
  switch (filter.kind) {
    case "and":
    case "or":
      return filter.items.some((f) => someNode(f, test));
    case "not":
      return someNode(filter.item, test);
    case "exists":
      return someNode(filter.where, test);
    default:
      return false;
  }
}

/** Whether a filter holds any `@user.*` placeholder (then it must be bound per request). */
export function hasPlaceholders(filter: Filter): boolean {
  switch (filter.kind) {
    case "const":
    case "isnull":
      return false;
    case "and":
    case "or":
      return filter.items.some(hasPlaceholders);
    case "not":
      return hasPlaceholders(filter.item);
    case "exists":
      return hasPlaceholders(filter.where);
    case "compare":
      return isPlaceholder(filter.value);
    case "in":
      return filter.values.some(isPlaceholder);
    case "like":
      return isPlaceholder(filter.pattern);
    case "between":
      return isPlaceholder(filter.low) || isPlaceholder(filter.high);
  }
}
