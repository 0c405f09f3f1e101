/**
 * Random rule expressions (§9.1) over a small schema, printed as rule text, and a reference of what a rule
 * means for one caller and one row, written from the SPEC (§4.12, §9.1) and not from `src/`: SQL's
 * three-valued logic on the row's values, and a claim the caller lacks as unknown (an allow does not hold
 * there, a deny does). Shared by rules-fuzz.test.ts and rules-property.test.ts. Not a test file.
 */
import { boolean, em, entity, enumm, number, relation, text } from "citadel";
import fc from "fast-check";
import { decodeJwt, type JWTPayload, SignJWT } from "jose";
import { expect } from "vitest";
import type { TestServer } from "../helpers/server.js";

/** items (owned, text/number/boolean/enum, every field nullable) and others (each may point at an item). */
export const ruleSchema = em(
  {
    items: entity("items", { t: text(), n: number(), b: boolean(), e: enumm({ enum: ["x", "y", "z"] }) }),
    others: entity("others", { t: text(), n: number() }),
    users: entity("users", {}),
  },
  ({ items, others, users }) => [
    relation(items, "owner").manyToOne(users, { owner: true }),
    relation(others, "item").manyToOne(items),
  ],
);

export type Scalar = string | number | boolean | null;
export type Tri = boolean | null;
export type Row = Record<string, Scalar> & { id: number };
export interface Tables {
  items: Row[];
  others: Row[];
}

/** The fields of items a rule, a field rule or a caller's where may name (`id` and the owner key too). */
export const ITEM_FIELDS = ["t", "n", "b", "e"] as const;
export type ItemField = (typeof ITEM_FIELDS)[number];

/** A caller: its role, and its claims (`id` and `role` always, the others only sometimes); anonymous has none. */
export interface RuleCaller {
  role: string;
  user?: { id: number; role: string; dept?: string; level?: number; flag?: boolean };
}

// ---------- the rule tree ----------

type Kind = "text" | "number" | "boolean" | "enum" | "id";
export type Side =
  | { k: "row"; field: string; as: "bare" | "record" }
  | { k: "claim"; name: string }
  | { k: "outer"; field: string }
  | { k: "lit"; value: Scalar };
export type Rule =
  | { k: "and" | "or"; items: Rule[] }
  | { k: "not"; item: Rule }
  | { k: "cmp"; left: Side; op: Op; right: Side }
  | { k: "in"; negated: boolean; left: Side; values: Scalar[] }
  | { k: "bare"; side: Side }
  | { k: "const"; value: boolean }
  | { k: "role"; roles: string[]; any: boolean }
  | { k: "owns" }
  | { k: "exists"; where: Rule };
export type Op = "==" | "!=" | "<" | "<=" | ">" | ">=";

const TEXTS = ["a", "b", "ab", "B", "it's"];
const NUMBERS = [-1, 0, 1, 2, 2.5, 3];
const ENUMS = ["x", "y", "z"];
export const ROLES = ["r", "s"];
export const DEPTS = ["a", "b", "ab"];

const FIELDS: Record<"items" | "others", Record<string, Kind>> = {
  items: { t: "text", n: "number", b: "boolean", e: "enum", id: "id", owner_id: "id" },
  others: { t: "text", n: "number", id: "id", item_id: "id" },
};
/** Claims and the kind of value each holds; `user.missing` is never held. */
const CLAIMS: Record<string, Kind> = {
  "user.id": "id",
  "user.dept": "text",
  "user.level": "number",
  "user.flag": "boolean",
  "user.missing": "text",
};

const literalOf = (kind: Kind): fc.Arbitrary<Scalar> => {
  switch (kind) {
    case "text":
      return fc.constantFrom(...TEXTS);
    case "number":
      return fc.constantFrom(...NUMBERS);
    case "boolean":
      return fc.boolean();
    case "enum":
      return fc.constantFrom(...ENUMS);
    case "id":
      return fc.integer({ min: 1, max: 4 });
  }
};
const ORDERED: Kind[] = ["text", "number", "enum", "id"];
const op = (kind: Kind, allowNull: boolean): fc.Arbitrary<Op> =>
  ORDERED.includes(kind) && !allowNull
    ? fc.constantFrom("==", "!=", "<", "<=", ">", ">=")
    : fc.constantFrom<Op>("==", "!=");

/** A leaf comparing two sides of one kind; the printer may swap them (the compiler flips the operator). */
function leafArb(
  entity: "items" | "others",
  withOuter: boolean,
  skip: readonly string[],
  minList: number,
): fc.Arbitrary<Rule> {
  const fields = Object.entries(FIELDS[entity]).filter(([f]) => entity !== "items" || !skip.includes(f));
  const rowSide = (field: string): fc.Arbitrary<Side> =>
    fc.constantFrom<"bare" | "record">("bare", "bare", "record").map((as) => ({ k: "row", field, as }));
  const rowVsLiteral = fc.constantFrom(...fields).chain(([field, kind]) =>
    fc.oneof(
      fc
        .tuple(rowSide(field), op(kind, false), literalOf(kind))
        .map(([left, o, value]): Rule => ({ k: "cmp", left, op: o, right: { k: "lit", value } })),
      fc
        .tuple(rowSide(field), fc.constantFrom<Op>("==", "!="))
        .map(([left, o]): Rule => ({ k: "cmp", left, op: o, right: { k: "lit", value: null } })),
      fc
        .tuple(
          rowSide(field),
          fc.boolean(),
          // no null in a list: the where language refuses it (`x == null` asks for NULL)
          fc.array(literalOf(kind), { minLength: minList, maxLength: 3 }),
        )
        .map(([left, negated, values]): Rule => ({ k: "in", negated, left, values })),
    ),
  );
  const claimsOf = (kind: Kind) =>
    Object.entries(CLAIMS).filter(([, k]) => k === kind || (kind === "enum" && k === "text"));
  const rowVsClaim = fc
    .constantFrom(...fields.filter(([, kind]) => claimsOf(kind).length > 0))
    .chain(([field, kind]) =>
      fc
        .tuple(rowSide(field), op(kind, false), fc.constantFrom(...claimsOf(kind)))
        .map(([left, o, [name]]): Rule => ({ k: "cmp", left, op: o, right: { k: "claim", name } })),
    );
  const claimVsLiteral = fc.constantFrom(...Object.entries(CLAIMS)).chain(([name, kind]) =>
    fc.oneof(
      fc
        .tuple(op(kind, false), literalOf(kind === "text" ? "text" : kind))
        .map(([o, value]): Rule => ({ k: "cmp", left: { k: "claim", name }, op: o, right: { k: "lit", value } })),
      fc
        .constantFrom<Op>("==", "!=")
        .map((o): Rule => ({ k: "cmp", left: { k: "claim", name }, op: o, right: { k: "lit", value: null } })),
      fc
        .tuple(fc.boolean(), fc.array(literalOf(kind), { minLength: minList, maxLength: 3 }))
        .map(([negated, values]): Rule => ({ k: "in", negated, left: { k: "claim", name }, values })),
    ),
  );
  const bare: fc.Arbitrary<Rule> = fc.constantFrom<Rule>(
    ...(entity === "items" && !skip.includes("b")
      ? [{ k: "bare" as const, side: { k: "row" as const, field: "b", as: "bare" as const } }]
      : []),
    { k: "bare", side: { k: "claim", name: "user.flag" } },
  );
  const choices: { arbitrary: fc.Arbitrary<Rule>; weight: number }[] = [
    { arbitrary: rowVsLiteral, weight: 6 },
    { arbitrary: rowVsClaim, weight: 2 },
    { arbitrary: claimVsLiteral, weight: 2 },
    { arbitrary: bare, weight: 1 },
    { arbitrary: fc.boolean().map((value): Rule => ({ k: "const", value })), weight: 1 },
    {
      arbitrary: fc
        .tuple(fc.subarray(ROLES, { minLength: 1 }), fc.boolean())
        .map(([roles, any]): Rule => ({ k: "role", roles: any ? roles : [roles[0]!], any })),
      weight: 1,
    },
  ];
  if (entity === "items") choices.push({ arbitrary: fc.constant<Rule>({ k: "owns" }), weight: 1 });
  if (withOuter) {
    const outerCmp = fc
      .constantFrom<[string, string, Kind]>(
        ["item_id", "id", "id"],
        ...(skip.includes("t") ? [] : [["t", "t", "text"] as [string, string, Kind]]),
        ...(skip.includes("n") ? [] : [["n", "n", "number"] as [string, string, Kind]]),
        ["id", "owner_id", "id"],
      )
      .chain(([inner, outer, kind]) =>
        op(kind, false).map(
          (o): Rule => ({
            k: "cmp",
            left: { k: "row", field: inner, as: "bare" },
            op: o,
            right: { k: "outer", field: outer },
          }),
        ),
      );
    choices.push({ arbitrary: outerCmp, weight: 4 });
  }
  return fc.oneof(...choices);
}

/**
 * A random well-formed rule over items: and/or/not, comparisons, in, claims, roles, owners, exists(others, …);
 * `skip` names fields of items it never mentions; `minList` is the fewest values of an `in` list.
 */
export function ruleArb(depth = 3, skip: readonly string[] = [], minList = 0): fc.Arbitrary<Rule> {
  const { tree } = fc.letrec<{ tree: Rule; inner: Rule }>((tie) => ({
    tree: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      { arbitrary: leafArb("items", false, skip, minList), weight: 5 },
      {
        arbitrary: fc
          .tuple(fc.constantFrom<"and" | "or">("and", "or"), fc.array(tie("tree"), { minLength: 2, maxLength: 3 }))
          .map(([k, items]): Rule => ({ k, items })),
        weight: 2,
      },
      { arbitrary: tie("tree").map((item): Rule => ({ k: "not", item })), weight: 1 },
      { arbitrary: tie("inner").map((where): Rule => ({ k: "exists", where })), weight: 1 },
    ),
    inner: fc.oneof(
      { depthSize: "small", maxDepth: depth },
      { arbitrary: leafArb("others", true, skip, minList), weight: 4 },
      {
        arbitrary: fc
          .tuple(fc.constantFrom<"and" | "or">("and", "or"), fc.array(tie("inner"), { minLength: 2, maxLength: 3 }))
          .map(([k, items]): Rule => ({ k, items })),
        weight: 2,
      },
      { arbitrary: tie("inner").map((item): Rule => ({ k: "not", item })), weight: 1 },
    ),
  }));
  return tree;
}

// ---------- printing ----------

const quote = (s: string) => (s.includes("'") ? `"${s}"` : `'${s}'`);
const lit = (v: Scalar) => (v === null ? "null" : typeof v === "string" ? quote(v) : String(v));
const side = (s: Side): string =>
  s.k === "row"
    ? s.as === "record"
      ? `record.${s.field}`
      : s.field
    : s.k === "claim"
      ? s.name
      : s.k === "outer"
        ? `outer.${s.field}`
        : lit(s.value);
const FLIP: Record<Op, Op> = { "==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<=" };

/** The rule as text; `swap` writes a comparison's sides the other way round (`2 < n` for `n > 2`). */
export function printRule(rule: Rule, swap: (r: Rule) => boolean = () => false): string {
  const p = (r: Rule): string => printRule(r, swap);
  switch (rule.k) {
    case "and":
    case "or":
      return rule.items.map((i) => (i.k === "and" || i.k === "or" ? `(${p(i)})` : p(i))).join(` ${rule.k} `);
    case "not":
      return `not (${p(rule.item)})`;
    case "cmp":
      // null is written on the right (`x == null`); a claim is never put right of a literal's place swap
      return swap(rule) && rule.right.k !== "outer" && !(rule.right.k === "lit" && rule.right.value === null)
        ? `${side(rule.right)} ${FLIP[rule.op]} ${side(rule.left)}`
        : `${side(rule.left)} ${rule.op} ${side(rule.right)}`;
    case "in":
      return `${side(rule.left)} ${rule.negated ? "not in" : "in"} [${rule.values.map(lit).join(", ")}]`;
    case "bare":
      return side(rule.side);
    case "const":
      return String(rule.value);
    case "role":
      return rule.any ? `@has_any_role([${rule.roles.map(quote).join(", ")}])` : `@has_role(${quote(rule.roles[0]!)})`;
    case "owns":
      return "@owns_record()";
    case "exists":
      return `exists(others, ${p(rule.where)})`;
  }
}

// ---------- the reference ----------

/** SQL's comparison of two values (NULL → unknown); values of one kind only, as the generator makes them. */
export function compare(a: Scalar, o: Op, b: Scalar): Tri {
  if (a === null || b === null) return null;
  const x = typeof a === "boolean" ? Number(a) : a;
  const y = typeof b === "boolean" ? Number(b) : b;
  switch (o) {
    case "==":
      return x === y;
    case "!=":
      return x !== y;
    case "<":
      return x < y;
    case "<=":
      return x <= y;
    case ">":
      return x > y;
    case ">=":
      return x >= y;
  }
}
/** SQL's three-valued AND, OR and NOT (null is UNKNOWN). */
export const and3 = (xs: Tri[]): Tri => (xs.includes(false) ? false : xs.includes(null) ? null : true);
export const or3 = (xs: Tri[]): Tri => (xs.includes(true) ? true : xs.includes(null) ? null : false);
export const not3 = (x: Tri): Tri => (x === null ? null : !x);

/**
 * What a rule is for one caller and row, as two SQL truth values: `certain` is where it holds (TRUE) — an
 * allow or filter applies there — and `possible` is where it may hold — a deny applies unless it is FALSE.
 * A row's NULL is SQL's unknown in both; a claim the caller lacks is unknown (§4.12): FALSE for `certain`,
 * TRUE for `possible`. `exists` holds when some row of others certainly (possibly) satisfies its rule.
 */
export interface Pair {
  certain: Tri;
  possible: Tri;
}

interface Env {
  caller: RuleCaller;
  tables: Tables;
  row: Row;
  outer?: Row;
}

const claim = (caller: RuleCaller, name: string): Scalar | undefined =>
  (caller.user as Record<string, Scalar | undefined> | undefined)?.[name.slice("user.".length)];
const known = (t: boolean): Pair => ({ certain: t, possible: t });
const UNKNOWN_CLAIM: Pair = { certain: false, possible: true };

function leafValue(s: Side, env: Env): Scalar {
  if (s.k === "row") return env.row[s.field] ?? null;
  if (s.k === "outer") return env.outer![s.field] ?? null;
  if (s.k === "lit") return s.value;
  // a claim compared with a field of the row: its value, or NULL when the caller lacks it
  return claim(env.caller, s.name) ?? null;
}

export function evalRule(rule: Rule, env: Env): Pair {
  const same = (t: Tri): Pair => ({ certain: t, possible: t });
  switch (rule.k) {
    case "and":
    case "or": {
      const items = rule.items.map((r) => evalRule(r, env));
      const f = rule.k === "and" ? and3 : or3;
      return { certain: f(items.map((i) => i.certain)), possible: f(items.map((i) => i.possible)) };
    }
    case "not": {
      const inner = evalRule(rule.item, env);
      return { certain: not3(inner.possible), possible: not3(inner.certain) };
    }
    case "const":
      return known(rule.value);
    case "role":
      return known(rule.roles.includes(env.caller.role));
    case "owns":
      return same(compare(env.row.owner_id ?? null, "==", env.caller.user?.id ?? null));
    case "bare":
      return evalRule({ k: "cmp", left: rule.side, op: "==", right: { k: "lit", value: true } }, env);
    case "cmp": {
      const { left, right } = rule;
      if (left.k === "claim" && right.k === "lit") {
        const value = claim(env.caller, left.name);
        // `user.x == null` asks whether the caller has the claim: a missing claim is no unknown there
        if (right.value === null) return known((value === undefined) === (rule.op === "=="));
        if (value === undefined) return UNKNOWN_CLAIM;
        return known(compare(value, rule.op, right.value) === true);
      }
      if (right.k === "lit" && right.value === null) {
        const isNull = leafValue(left, env) === null;
        return same(rule.op === "==" ? isNull : !isNull);
      }
      // a row compared with a claim the caller lacks is unknown too, inside exists(…) as well (§4.12)
      if ([left, right].some((s) => s.k === "claim" && claim(env.caller, s.name) === undefined)) return UNKNOWN_CLAIM;
      return same(compare(leafValue(left, env), rule.op, leafValue(right, env)));
    }
    case "in": {
      const membership = (value: Scalar): Tri => {
        if (rule.values.length === 0) return rule.negated;
        const found = or3(rule.values.map((v) => compare(value, "==", v)));
        return rule.negated ? not3(found) : found;
      };
      if (rule.left.k === "claim") {
        const value = claim(env.caller, rule.left.name);
        const truth = membership(value ?? null);
        return truth === null ? UNKNOWN_CLAIM : known(truth);
      }
      return same(membership(leafValue(rule.left, env)));
    }
    case "exists": {
      const inner = env.tables.others.map((o) =>
        evalRule(rule.where, { caller: env.caller, tables: env.tables, row: o, outer: env.row }),
      );
      return { certain: inner.some((p) => p.certain === true), possible: inner.some((p) => p.possible === true) };
    }
  }
}

/**
 * Whether a rule is decided for the caller without looking at any row: TRUE or FALSE whatever the row
 * (a role test, a claim compared with a value, a constant, and/or/not of those), else "row". On a route
 * naming one row, `id` compared with values is decided too (`id`, outside exists).
 */
export type Fold = boolean | "row";
export function foldRule(rule: Rule, caller: RuleCaller, id?: number): { certain: Fold; possible: Fold } {
  const f3 = (xs: Fold[], isAnd: boolean): Fold =>
    xs.includes(!isAnd) ? !isAnd : xs.every((x) => x === isAnd) ? isAnd : "row";
  const rowless: Env = { caller, tables: { items: [], others: [] }, row: { id: id ?? 0 } };
  switch (rule.k) {
    case "and":
    case "or": {
      const items = rule.items.map((r) => foldRule(r, caller, id));
      const isAnd = rule.k === "and";
      return {
        certain: f3(
          items.map((i) => i.certain),
          isAnd,
        ),
        possible: f3(
          items.map((i) => i.possible),
          isAnd,
        ),
      };
    }
    case "not": {
      const inner = foldRule(rule.item, caller, id);
      const neg = (x: Fold): Fold => (x === "row" ? "row" : !x);
      return { certain: neg(inner.possible), possible: neg(inner.certain) };
    }
    case "const":
    case "role": {
      const t = evalRule(rule, rowless).certain === true;
      return { certain: t, possible: t };
    }
    case "bare":
      return foldRule({ k: "cmp", left: rule.side, op: "==", right: { k: "lit", value: true } }, caller, id);
    case "cmp":
    case "in": {
      const left = rule.left;
      const right = rule.k === "cmp" ? rule.right : undefined;
      // on a route naming one row, `id` compared with values is known from the route (§4.12)
      const routeId = id !== undefined && left.k === "row" && left.field === "id";
      if ((left.k === "claim" || routeId) && (rule.k === "in" || right?.k === "lit")) {
        const p = evalRule(rule, rowless);
        return { certain: p.certain === true, possible: p.possible === true };
      }
      return { certain: "row", possible: "row" };
    }
    case "exists": {
      const inner = foldRule(rule.where, caller);
      return {
        certain: inner.certain === false ? false : "row",
        possible: inner.possible === false ? false : "row",
      };
    }
    default:
      return { certain: "row", possible: "row" };
  }
}

// ---------- rows and callers ----------

export const itemArb = (users: number) =>
  fc.record({
    t: fc.option(fc.constantFrom(...TEXTS), { freq: 4 }),
    n: fc.option(fc.constantFrom(...NUMBERS), { freq: 4 }),
    b: fc.option(fc.boolean(), { freq: 4 }),
    e: fc.option(fc.constantFrom(...ENUMS), { freq: 4 }),
    owner_id: fc.option(fc.integer({ min: 1, max: users }), { freq: 3 }),
  });
export const otherArb = (items: number) =>
  fc.record({
    t: fc.option(fc.constantFrom(...TEXTS), { freq: 4 }),
    n: fc.option(fc.constantFrom(...NUMBERS), { freq: 4 }),
    item_id: fc.option(fc.integer({ min: 1, max: items }), { freq: 3 }),
  });

/** Extra claims of a user's token (each may be missing). */
export const claimsArb = fc.record(
  { dept: fc.constantFrom(...DEPTS), level: fc.constantFrom(...NUMBERS), flag: fc.boolean() },
  { requiredKeys: [] },
);

/**
 * Log in, then sign the same token again with a case's extra claims (`user.dept`, …) under the app's `secret`:
 * a caller whose claims, present or missing, the case chooses.
 */
export async function loginWithClaims(
  server: TestServer,
  email: string,
  password: string,
  secret: string,
  extra: Record<string, unknown>,
): Promise<{ claims: JWTPayload; headers: Record<string, string> }> {
  const res = await server.request("POST", "/api/auth/password/login", { email, password });
  expect(res.status, res.text).toBe(200);
  const claims = decodeJwt(res.body.token);
  const token = await new SignJWT({ ...claims, ...extra })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(new TextEncoder().encode(secret));
  return { claims, headers: { authorization: `Bearer ${token}` } };
}
