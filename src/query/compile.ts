/**
 * The one function that turns a Filter into a Kysely expression; values become bound parameters. It writes
 * portable SQL: booleans as booleans, `like` (case-sensitive) and `ilike` with standard LIKE patterns; the
 * database's dialect (src/dialect/) renders them for its engine, so nothing here depends on one.
 */
import { type Expression, type ExpressionBuilder, expressionBuilder, type SqlBool, sql } from "kysely";
import { likePattern } from "../dialect/index.js";
import { type Filter, isOuterRef, isPlaceholder, type Operand } from "./ast.js";

// biome-ignore lint/suspicious/noExplicitAny: tables are only known at runtime
type AnyBuilder = ExpressionBuilder<any, any>;

const SQL_OPERATORS = { $eq: "=", $ne: "!=", $gt: ">", $gte: ">=", $lt: "<", $lte: "<=" } as const;

/** Where the filtered row and its enclosing rows are: `table` is the current alias, `outer` the one around it. */
interface Scope {
  table: string;
  outer?: string;
  depth: number;
}

/**
 * The alias of a subquery at depth n is `citadel_s<n>`: entity and junction tables may not start with `citadel_`
 * (schema/compile.ts), so no table of the query can bear it. A plain `s1` was a valid entity name, and an outer
 * table of that name was shadowed by the subquery: `@row.<field>` then named the subquery's own row.
 */
const SUBQUERY_ALIAS = "citadel_s";

/** Items of one flat AND/OR: a longer list is written as nested groups of at most this many. */
const MAX_FLAT = 64;

/**
 * `a or b or c …`. SQLite parses a flat chain into a tree as deep as the chain is long and refuses one deeper
 * than 1,000 ("Expression tree is too large"), which a long rule (§9.1) or a where's 500 conditions can reach:
 * a longer list becomes nested groups, `(a or … ) or (… )`, whose depth grows with the logarithm.
 */
function chain(eb: AnyBuilder, kind: "and" | "or", parts: Expression<SqlBool>[]): Expression<SqlBool> {
  if (parts.length <= MAX_FLAT) return eb[kind](parts);
  const groups: Expression<SqlBool>[] = [];
  for (let i = 0; i < parts.length; i += MAX_FLAT) groups.push(eb[kind](parts.slice(i, i + MAX_FLAT)));
  return chain(eb, kind, groups);
}

function compile(eb: AnyBuilder, filter: Filter, at: Scope): Expression<SqlBool> {
  const ref = (field: string) => eb.ref(`${at.table}.${field}`);
  // an outer reference is a column of the enclosing row, never a parameter
  const operand = (value: Operand) => {
    if (isPlaceholder(value)) throw new Error(`unbound placeholder @${value.placeholder}`);
    if (isOuterRef(value)) {
      if (!at.outer) throw new Error(`@row.${value.outer} outside a subquery`);
      return eb.ref(`${at.outer}.${value.outer}`);
    }
    return value;
  };
  const text = (value: Operand) => String(operand(value));
  switch (filter.kind) {
    case "const":
      return eb.lit(filter.value);
    case "and":
    case "or":
      return chain(
        eb,
        filter.kind,
        filter.items.map((f) => compile(eb, f, at)),
      );
    case "not":
      return eb.not(compile(eb, filter.item, at));
    case "compare":
      return eb(ref(filter.field), SQL_OPERATORS[filter.op], operand(filter.value));
    case "in":
      // `x IN ()` is false and `x NOT IN ()` true, even for a NULL x (and not every engine parses an empty list)
      if (filter.values.length === 0) return eb.lit(filter.negated);
      return eb(ref(filter.field), filter.negated ? "not in" : "in", filter.values.map(operand));
    case "like":
      return eb(ref(filter.field), filter.caseSensitive ? "like" : "ilike", likePattern(text(filter.pattern)));
    case "isnull":
      return eb(ref(filter.field), filter.isNull ? "is" : "is not", null);
    case "between":
      return eb.between(ref(filter.field), operand(filter.low), operand(filter.high));
    case "exists": {
      const inner: Scope = { table: `${SUBQUERY_ALIAS}${at.depth + 1}`, outer: at.table, depth: at.depth + 1 };
      return eb.exists(
        eb
          .selectFrom(`${filter.table} as ${inner.table}`)
          .select(sql.lit(1).as("one"))
          .where((sub: AnyBuilder) => compile(sub, filter.where, inner)),
      );
    }
  }
}

/** Compile `filter` against columns of `table` (a table name or alias). */
export function compileFilter(eb: AnyBuilder, filter: Filter, table: string): Expression<SqlBool> {
  return compile(eb, filter, { table, depth: 0 });
}

/**
 * The expression builder of every `withFilter`: it holds no state, and `where` with a callback makes one per
 * query (a fifth of building the count query of a list, measured: 9-10 µs against 7-8.5).
 */
const WHERE: AnyBuilder = expressionBuilder();

/**
 * Add `filter` as a WHERE clause. An unrestricted filter adds none: SQLite counts a whole table from its
 * b-tree only when there is no WHERE at all (measured: 137 µs → 2 µs for 10,000 rows).
 */
export function withFilter<QB>(qb: QB, filter: Filter, table: string): QB {
  if (filter.kind === "const" && filter.value) return qb;
  // biome-ignore lint/suspicious/noExplicitAny: every Kysely builder with a where clause
  return (qb as any).where(compileFilter(WHERE, filter, table));
}
