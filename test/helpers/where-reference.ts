/**
 * A reference evaluator of the `where` language (§2.2) with SQL's three-valued logic, written from the SPEC
 * and not from `src/query`. Shared by the where property test and the guard's reference. Not a test file.
 * Keys that are no field of the row (relation paths, `$exists`, §4.13) and operands bound per row
 * (`@row.<field>`) are left to an optional environment: the guard's reference knows the other tables.
 */

export type Scalar = string | number | boolean | null;
export type Where = Record<string, unknown>;
/** SQL's TRUE / FALSE / UNKNOWN, and "maybe" for a condition on the id of a request naming no single row */
export type Tri = boolean | null | "maybe";

/**
 * A NULL read from a column (`@row.<field>` of a row whose field is NULL). Compared, it is UNKNOWN, as in SQL
 * (`x = NULL`); only the literal `null` of a where means IS NULL.
 */
export const NULL = Symbol("a NULL column value");
type Operand = Scalar | typeof NULL;

/** Where an evaluation looks things up. */
export interface Env {
  /** the value of a field of the current row (a missing one is NULL) */
  get(key: string): Scalar;
  /** the truth of a key that is no field (a relation path, `$exists`); undefined when `key` is a field */
  hop?(key: string, value: unknown): Tri | undefined;
  /** an operand as the database sees it, e.g. `@row.<field>` → that column of the enclosing row */
  operand?(value: unknown): unknown;
  /**
   * whether the caller may read a field on the current row (§9.4): a where that names a field anywhere (under
   * `$not`, `$or`, at any depth) is FALSE on a row where that field is hidden, whatever the rest of it says.
   * Every field when absent.
   */
  shown?(key: string): boolean;
}

/**
 * "maybe" is a condition on `id` where the route names no single row: it may hold for some rows. A deny with
 * such a condition holds for the whole request; an allow does not.
 */
const and3 = (xs: Tri[]): Tri =>
  xs.includes(false) ? false : xs.includes(null) ? null : xs.includes("maybe") ? "maybe" : true;
const or3 = (xs: Tri[]): Tri =>
  xs.includes(true) ? true : xs.includes("maybe") ? "maybe" : xs.includes(null) ? null : false;
const not3 = (x: Tri): Tri => (x === null || x === "maybe" ? x : !x);

/** Stands for the id of a request that names no single row. */
export const ANY_ID = "\u0000any id";

/** `*` is the only wildcard (§2.2); `$ilike` folds ASCII case. */
function glob(value: string, pattern: string, insensitive: boolean): boolean {
  const fold = (t: string) => (insensitive ? t.replace(/[A-Z]/g, (c) => c.toLowerCase()) : t);
  const source = fold(pattern)
    .split("*")
    .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${source}$`, "s").test(fold(value));
}

/** `x = y` and the ordered comparisons, once both sides are known not to be NULL. */
function compare(x: string | number | boolean, name: string, y: string | number | boolean): boolean {
  switch (name) {
    case "$eq":
      return x === y;
    case "$ne":
      return x !== y;
    case "$gt":
      return x > y;
    case "$gte":
      return x >= y;
    case "$lt":
      return x < y;
    case "$lte":
      return x <= y;
  }
  throw new Error(`reference: unknown comparison ${name}`);
}

function op(x: Scalar, name: string, v: unknown): Tri {
  if (name === "$isnull") return (x === null) === v;
  if (name === "$in" || name === "$nin" || name === "$notin") {
    const list = v as Operand[];
    // SQL: `x IN ()` is false and `x NOT IN ()` is true whatever x is
    if (list.length === 0) return name !== "$in";
    if (x === ANY_ID) return "maybe";
    // `x IN (a, b)` is `x = a OR x = b`: a NULL item makes a miss UNKNOWN
    const found = or3(list.map((y) => (x === null || y === NULL || y === null ? null : x === y)));
    return name === "$in" ? found : not3(found);
  }
  if ((name === "$eq" || name === "$ne") && v === null) return (x === null) === (name === "$eq");
  if (x === null) return null;
  if (x === ANY_ID) return "maybe";
  if (name === "$between") {
    // `lo <= x AND x <= hi`, each side UNKNOWN against a NULL bound
    const [lo, hi] = v as [Operand, Operand];
    const side = (y: Operand, o: string): Tri => (y === NULL || y === null ? null : compare(x, o, y));
    return and3([side(lo, "$gte"), side(hi, "$lte")]);
  }
  if (v === NULL) return null;
  if (name === "$like" || name === "$ilike") return glob(String(x), String(v), name === "$ilike");
  return compare(x, name, v as string | number | boolean);
}

function groupItems(v: unknown, env: Env, named: Set<string>): Tri[] {
  if (Array.isArray(v)) return v.map((c) => evaluate(c as Where, env, named));
  return Object.entries(v as object).map(([k, c]) => evaluate({ [k]: c }, env, named));
}

/** Evaluate a where object over any key → value lookup (a row, or a request context), or a fuller `Env`. */
export function evalWhere(where: Where, lookup: ((key: string) => Scalar) | Env): Tri {
  const env: Env = typeof lookup === "function" ? { get: lookup } : lookup;
  const named = new Set<string>();
  const truth = evaluate(where, env, named);
  // §9.4: the where sees only rows where every field it names is readable (a hop's fields are its own business)
  return env.shown && [...named].some((key) => !env.shown!(key)) ? false : truth;
}

/** The truth of a where on the current row, collecting the fields it names in `named`. */
function evaluate(where: Where, env: Env, named: Set<string>): Tri {
  const bind = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(bind) : env.operand && (typeof v === "string" || v === null) ? env.operand(v) : v;
  return and3(
    Object.entries(where).map(([key, v]): Tri => {
      if (key === "$and") return and3(groupItems(v, env, named));
      if (key === "$or") return or3(groupItems(v, env, named));
      if (key === "$not") return not3(and3(groupItems(v, env, named)));
      const hop = env.hop?.(key, v);
      if (hop !== undefined) return hop;
      named.add(key);
      const x = env.get(key);
      if (v === null) return x === null;
      if (Array.isArray(v)) return op(x, "$in", bind(v));
      if (typeof v === "object") return and3(Object.entries(v as object).map(([o, w]) => op(x, o, bind(w))));
      return op(x, "$eq", bind(v));
    }),
  );
}
