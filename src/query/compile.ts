/** The one function that turns a Filter into a Kysely expression; values become bound parameters. */
import { type Expression, type ExpressionBuilder, type SqlBool, sql } from "kysely";
import { type Filter, isOuterRef, isPlaceholder, type Operand } from "./ast.js";

// biome-ignore lint/suspicious/noExplicitAny: tables are only known at runtime
type AnyBuilder = ExpressionBuilder<any, any>;

const SQL_OPERATORS = { $eq: "=", $ne: "!=", $gt: ">", $gte: ">=", $lt: "<", $lte: "<=" } as const;

/** `*` is the only wildcard; for LIKE, `%` `_` and `\` are literal and escaped. */
const toLikePattern = (pattern: string) => pattern.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, "%");
/** GLOB is case-sensitive; `?` and `[` are literal and escaped as one-character classes. */
const toGlobPattern = (pattern: string) => pattern.replace(/[?[]/g, (c) => `[${c}]`);

/** Where the filtered row and its enclosing rows are: `table` is the current alias, `outer` the one around it. */
interface Scope {
  table: string;
  outer?: string;
  depth: number;
}

function compile(eb: AnyBuilder, filter: Filter, at: Scope): Expression<SqlBool> {
  const ref = (field: string) => eb.ref(`${at.table}.${field}`);
  // SQLite stores booleans as 0/1; an outer reference is a column of the enclosing row, never a parameter
  const operand = (value: Operand) => {
    if (isPlaceholder(value)) throw new Error(`unbound placeholder @${value.placeholder}`);
    if (isOuterRef(value)) {
      if (!at.outer) throw new Error(`@row.${value.outer} outside a subquery`);
      return eb.ref(`${at.outer}.${value.outer}`);
    }
    return typeof value === "boolean" ? Number(value) : value;
  };
  const text = (value: Operand) => String(operand(value));
  switch (filter.kind) {
    case "const":
      return filter.value ? sql<SqlBool>`1` : sql<SqlBool>`0`;
    case "and":
      return eb.and(filter.items.map((f) => compile(eb, f, at)));
    case "or":
      return eb.or(filter.items.map((f) => compile(eb, f, at)));
    case "not":
      return eb.not(compile(eb, filter.item, at));
    case "compare":
      return eb(ref(filter.field), SQL_OPERATORS[filter.op], operand(filter.value));
    case "in":
      // SQLite: `x IN ()` is false and `x NOT IN ()` is true, even for NULL x.
      if (filter.values.length === 0) return filter.negated ? sql<SqlBool>`1` : sql<SqlBool>`0`;
      return eb(ref(filter.field), filter.negated ? "not in" : "in", filter.values.map(operand));
    case "like":
      return filter.caseSensitive
        ? sql<SqlBool>`${ref(filter.field)} glob ${toGlobPattern(text(filter.pattern))}`
        : sql<SqlBool>`${ref(filter.field)} like ${toLikePattern(text(filter.pattern))} escape '\\'`;
    case "isnull":
      return eb(ref(filter.field), filter.isNull ? "is" : "is not", null);
    case "between":
      return eb.between(ref(filter.field), operand(filter.low), operand(filter.high));
    case "exists": {
      const inner: Scope = { table: `s${at.depth + 1}`, outer: at.table, depth: at.depth + 1 };
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
 * Add `filter` as a WHERE clause. An unrestricted filter adds none: SQLite counts a whole table from its
 * b-tree only when there is no WHERE at all (measured: 137 µs → 2 µs for 10,000 rows).
 */
export function withFilter<QB>(qb: QB, filter: Filter, table: string): QB {
  if (filter.kind === "const" && filter.value) return qb;
  // biome-ignore lint/suspicious/noExplicitAny: every Kysely builder with a where clause
  return (qb as any).where((eb: AnyBuilder) => compileFilter(eb, filter, table));
}
