/**
 * Random read rules of fields (§9.4) for the change feed's property test, over the guard property test's
 * schema (docs, notes, tags): comparisons of the row with values, `in` lists, the row against the caller
 * (`owner_id == user.id`), the caller alone (`user.id == 2`, decided per caller), and `exists(…)` following a
 * relation; printed as rule text (§9.1) for the config, and a reference of what one means for one caller and
 * one row, written from the SPEC and not from `src/`: SQL's three-valued logic on the row, a caller's missing
 * claim NULL when compared with the row and unknown when compared with a value (an allow does not hold there,
 * §4.12), and a field shown only where its rule is TRUE. Not a test file.
 */
import fc from "fast-check";
import type { Caller, Row, Scalar, Tables } from "../guard/reference.js";
import { and3, compare, not3, type Op, or3, type Pair, type Tri } from "../guard/rule-arbs.js";

export type FieldRule =
  | { k: "and" | "or"; items: FieldRule[] }
  | { k: "not"; item: FieldRule }
  /** a field of the row and a value (`null` with `==` / `!=` only) */
  | { k: "cmp"; field: string; op: Op; value: Scalar }
  | { k: "in"; field: string; negated: boolean; values: Scalar[] }
  /** a field of the row and the caller's id */
  | { k: "mine"; field: string; op: "==" | "!=" }
  /** the caller's id and a value: decided per caller, whatever the row */
  | { k: "claim"; op: "==" | "!="; value: number }
  /** `exists(entity, inner == outer.outer and where)` */
  | { k: "exists"; entity: string; inner: string; outer: string; where: FieldRule };

/** Values per field; `ordered` fields take `<` and friends too. */
const VALUES: Record<string, { values: Scalar[]; ordered: boolean }> = {
  id: { values: [1, 2, 3, 5, 8], ordered: true },
  owner_id: { values: [1, 2, 3, 4], ordered: true },
  level: { values: [-1, 0, 1, 2, 3], ordered: true },
  doc_id: { values: [1, 2, 3, 4, 6], ordered: true },
  status: { values: ["a", "b", "c"], ordered: false },
  label: { values: ["x", "y", "z"], ordered: false },
  flag: { values: [true, false], ordered: false },
  pinned: { values: [true, false], ordered: false },
};

/**
 * The fields a rule on each entity compares (its own, `id` and keys included), and the one it compares with
 * the caller's id. `common` is a rule of a policy for every entity: it compiles on each, `users` included.
 */
const ROW_FIELDS: Record<string, string[]> = {
  docs: ["id", "owner_id", "status", "level", "flag"],
  notes: ["id", "owner_id", "pinned", "doc_id"],
  tags: ["id", "owner_id", "label"],
  common: ["id"],
};
const MINE: Record<string, string> = { docs: "owner_id", notes: "owner_id", tags: "owner_id", common: "id" };
/** Relations a rule on each entity follows with `exists`: [target, inner column, outer column]. */
const HOPS: Record<string, [string, string, string][]> = {
  docs: [["notes", "doc_id", "id"]],
  notes: [["docs", "id", "doc_id"]],
  tags: [["docs", "owner_id", "owner_id"]],
  common: [["docs", "owner_id", "id"]],
};

function cmpOf(field: string): fc.Arbitrary<{ op: Op; value: Scalar }> {
  const { values, ordered } = VALUES[field]!;
  const ops: Op[] = ordered ? ["==", "!=", "<", "<=", ">", ">="] : ["==", "!="];
  return fc.oneof(
    { arbitrary: fc.record({ op: fc.constantFrom(...ops), value: fc.constantFrom(...values) }), weight: 4 },
    { arbitrary: fc.record({ op: fc.constantFrom<Op>("==", "!="), value: fc.constant<Scalar>(null) }), weight: 1 },
  );
}

/** A comparison of a field of `at`'s row, an `in` list, or the row or the caller against the caller's id. */
function leafArb(at: string): fc.Arbitrary<FieldRule> {
  const field = fc.constantFrom(...ROW_FIELDS[at]!);
  const cmp = field.chain((f) => cmpOf(f).map(({ op, value }): FieldRule => ({ k: "cmp", field: f, op, value })));
  const list = field.chain((f) =>
    fc
      .tuple(fc.boolean(), fc.uniqueArray(fc.constantFrom(...VALUES[f]!.values), { minLength: 1, maxLength: 3 }))
      .map(([negated, values]): FieldRule => ({ k: "in", field: f, negated, values })),
  );
  const mine = fc
    .constantFrom<"==" | "!=">("==", "==", "!=")
    .map((op): FieldRule => ({ k: "mine", field: MINE[at]!, op }));
  const claim = fc
    .tuple(fc.constantFrom<"==" | "!=">("==", "!="), fc.integer({ min: 1, max: 4 }))
    .map(([op, value]): FieldRule => ({ k: "claim", op, value }));
  return fc.oneof(
    { arbitrary: cmp, weight: 5 },
    { arbitrary: list, weight: 2 },
    { arbitrary: mine, weight: 3 },
    { arbitrary: claim, weight: 1 },
  );
}

/**
 * A read rule for a field of `at` (an entity, or `common`: a policy reaching docs, notes and tags alike), up to
 * two levels of and/or/not, sometimes following a relation with `exists`.
 */
export function fieldRuleArb(at: string): fc.Arbitrary<FieldRule> {
  const hop = fc
    .constantFrom(...HOPS[at]!)
    .chain(([entity, inner, outer]) =>
      leafArb(entity).map((where): FieldRule => ({ k: "exists", entity, inner, outer, where })),
    );
  const leaf = fc.oneof({ arbitrary: leafArb(at), weight: 4 }, { arbitrary: hop, weight: 1 });
  const node = (depth: number): fc.Arbitrary<FieldRule> =>
    depth === 0
      ? leaf
      : fc.oneof(
          { arbitrary: leaf, weight: 3 },
          {
            arbitrary: fc
              .tuple(
                fc.constantFrom<"and" | "or">("and", "or"),
                fc.array(node(depth - 1), { minLength: 2, maxLength: 2 }),
              )
              .map(([k, items]): FieldRule => ({ k, items })),
            weight: 2,
          },
          { arbitrary: node(depth - 1).map((item): FieldRule => ({ k: "not", item })), weight: 1 },
        );
  return node(2);
}

// ---------- printing ----------

const literal = (v: Scalar) => (v === null ? "null" : typeof v === "string" ? `'${v}'` : String(v));

/** The rule as the config writes it (§9.1). */
export function printFieldRule(rule: FieldRule): string {
  const inner = (r: FieldRule) => (r.k === "and" || r.k === "or" ? `(${printFieldRule(r)})` : printFieldRule(r));
  switch (rule.k) {
    case "and":
    case "or":
      return rule.items.map(inner).join(` ${rule.k} `);
    case "not":
      return `not (${printFieldRule(rule.item)})`;
    case "cmp":
      return `${rule.field} ${rule.op} ${literal(rule.value)}`;
    case "in":
      return `${rule.field} ${rule.negated ? "not in" : "in"} [${rule.values.map(literal).join(", ")}]`;
    case "mine":
      return `${rule.field} ${rule.op} user.id`;
    case "claim":
      return `user.id ${rule.op} ${rule.value}`;
    case "exists":
      return `exists(${rule.entity}, ${rule.inner} == outer.${rule.outer} and ${inner(rule.where)})`;
  }
}

// ---------- the reference ----------

const same = (t: Tri): Pair => ({ certain: t, possible: t });

const callerId = (caller: Caller): Scalar | undefined => caller.user?.id;

function pair(rule: FieldRule, caller: Caller, tables: Tables, row: Row): Pair {
  switch (rule.k) {
    case "and":
    case "or": {
      const items = rule.items.map((r) => pair(r, caller, tables, row));
      const f = rule.k === "and" ? and3 : or3;
      return { certain: f(items.map((i) => i.certain)), possible: f(items.map((i) => i.possible)) };
    }
    case "not": {
      const inner = pair(rule.item, caller, tables, row);
      return { certain: not3(inner.possible), possible: not3(inner.certain) };
    }
    case "cmp":
      // `x == null` asks for NULL, `x != null` for a value
      if (rule.value === null) return same((row[rule.field] === null) === (rule.op === "=="));
      return same(compare(row[rule.field] ?? null, rule.op, rule.value));
    case "in": {
      const found = or3(rule.values.map((v) => compare(row[rule.field] ?? null, "==", v)));
      return same(rule.negated ? not3(found) : found);
    }
    case "mine":
      return same(compare(row[rule.field] ?? null, rule.op, callerId(caller) ?? null));
    case "claim": {
      const id = callerId(caller);
      if (id === undefined || id === null) return { certain: false, possible: true };
      const t = compare(id, rule.op, rule.value) === true;
      return { certain: t, possible: t };
    }
    case "exists": {
      const inner = (tables[rule.entity] ?? [])
        .filter((r) => compare(r[rule.inner] ?? null, "==", row[rule.outer] ?? null) === true)
        .map((r) => pair(rule.where, caller, tables, r));
      return { certain: inner.some((p) => p.certain === true), possible: inner.some((p) => p.possible === true) };
    }
  }
}

/**
 * Whether a read rule shows its field on a row to a caller: TRUE there (UNKNOWN hides, §9.4). `tables` are the
 * rows `exists` may reach: the caller's tenant's (§6.1), as they are when the event is sent (§8.2).
 */
export const ruleShows = (rule: FieldRule, caller: Caller, tables: Tables, row: Row): boolean =>
  pair(rule, caller, tables, row).certain === true;

export type Fold = boolean | "row";
const fold3 = (xs: Fold[], isAnd: boolean): Fold =>
  xs.includes(!isAnd) ? !isAnd : xs.every((x) => x === isAnd) ? isAnd : "row";

/**
 * A rule decided for a caller before any row is looked at: TRUE or FALSE whatever the row when only the caller
 * decides it, else "row". `certain` is where it holds, `possible` where it may.
 */
function folded(rule: FieldRule, caller: Caller): { certain: Fold; possible: Fold } {
  switch (rule.k) {
    case "and":
    case "or": {
      const items = rule.items.map((r) => folded(r, caller));
      const isAnd = rule.k === "and";
      return {
        certain: fold3(
          items.map((i) => i.certain),
          isAnd,
        ),
        possible: fold3(
          items.map((i) => i.possible),
          isAnd,
        ),
      };
    }
    case "not": {
      const inner = folded(rule.item, caller);
      const neg = (x: Fold): Fold => (x === "row" ? "row" : !x);
      return { certain: neg(inner.possible), possible: neg(inner.certain) };
    }
    case "claim": {
      const p = pair(rule, caller, {}, { id: 0 });
      return { certain: p.certain === true, possible: p.possible === true };
    }
    case "exists": {
      const inner = folded(rule.where, caller);
      return {
        certain: inner.certain === false ? false : "row",
        possible: inner.possible === false ? false : "row",
      };
    }
    default:
      return { certain: "row", possible: "row" };
  }
}

/** Where a read rule shows its field, for a caller: on every row (true), on none (false), or per row. */
export const foldFieldRule = (rule: FieldRule, caller: Caller): Fold => folded(rule, caller).certain;
