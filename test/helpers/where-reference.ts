/**
 * A reference evaluator of the `where` language (§2.2) with SQL's three-valued logic, written from the SPEC
 * and not from `src/query`. Shared by the where property test and the guard's reference. Not a test file.
 */

export type Scalar = string | number | boolean | null;
export type Where = Record<string, unknown>;
/** SQL's TRUE / FALSE / UNKNOWN, and "maybe" for a condition on the id of a request naming no single row */
export type Tri = boolean | null | "maybe";

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

function op(x: Scalar, name: string, v: unknown): Tri {
  if (name === "$isnull") return (x === null) === v;
  if (name === "$in" || name === "$nin" || name === "$notin") {
    const list = v as Scalar[];
    // SQL: `x IN ()` is false and `x NOT IN ()` is true whatever x is
    if (list.length === 0) return name !== "$in";
    if (x === ANY_ID) return "maybe";
    if (x === null) return null;
    return name === "$in" ? list.includes(x) : !list.includes(x);
  }
  if ((name === "$eq" || name === "$ne") && v === null) return (x === null) === (name === "$eq");
  if (x === null) return null;
  if (x === ANY_ID) return "maybe";
  const y = v as string | number | boolean;
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
    case "$between": {
      const [lo, hi] = v as [string | number, string | number];
      return lo <= x && x <= hi;
    }
    case "$like":
      return glob(String(x), String(y), false);
    case "$ilike":
      return glob(String(x), String(y), true);
  }
  throw new Error(`reference: unknown operator ${name}`);
}

function groupItems(v: unknown, get: (key: string) => Scalar): Tri[] {
  if (Array.isArray(v)) return v.map((c) => evalWhere(c as Where, get));
  return Object.entries(v as object).map(([k, c]) => evalWhere({ [k]: c }, get));
}

/** Evaluate a where object over any key → value lookup (a row, or a request context). */
export function evalWhere(where: Where, get: (key: string) => Scalar): Tri {
  return and3(
    Object.entries(where).map(([key, v]): Tri => {
      if (key === "$and") return and3(groupItems(v, get));
      if (key === "$or") return or3(groupItems(v, get));
      if (key === "$not") return not3(and3(groupItems(v, get)));
      const x = get(key);
      if (v === null) return x === null;
      if (Array.isArray(v)) return op(x, "$in", v);
      if (typeof v === "object") return and3(Object.entries(v as object).map(([o, w]) => op(x, o, w)));
      return op(x, "$eq", v);
    }),
  );
}
