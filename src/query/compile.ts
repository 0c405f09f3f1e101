/** The one function that turns a Filter into a Kysely expression; values become bound parameters. */
import { type Expression, type ExpressionBuilder, type SqlBool, sql } from "kysely";
import { type Filter, isPlaceholder, type Operand } from "./ast.js";

// biome-ignore lint/suspicious/noExplicitAny: tables are only known at runtime
type AnyBuilder = ExpressionBuilder<any, any>;

const SQL_OPERATORS = { $eq: "=", $ne: "!=", $gt: ">", $gte: ">=", $lt: "<", $lte: "<=" } as const;

/** SQLite stores booleans as 0/1. */
const bindable = (value: Operand) => {
  if (isPlaceholder(value)) throw new Error(`unbound placeholder @${value.placeholder}`);
  return typeof value === "boolean" ? Number(value) : value;
};

/** `*` is the only wildcard; for LIKE, `%` `_` and `\` are literal and escaped. */
const toLikePattern = (pattern: string) => pattern.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, "%");
/** GLOB is case-sensitive; `?` and `[` are literal and escaped as one-character classes. */
const toGlobPattern = (pattern: string) => pattern.replace(/[?[]/g, (c) => `[${c}]`);

/** Compile `filter` against columns of `table` (a table name or alias). */
export function compileFilter(eb: AnyBuilder, filter: Filter, table: string): Expression<SqlBool> {
  const ref = (field: string) => eb.ref(`${table}.${field}`);
  switch (filter.kind) {
    case "const":
      return filter.value ? sql<SqlBool>`1` : sql<SqlBool>`0`;
    case "and":
      return eb.and(filter.items.map((f) => compileFilter(eb, f, table)));
    case "or":
      return eb.or(filter.items.map((f) => compileFilter(eb, f, table)));
    case "not":
      return eb.not(compileFilter(eb, filter.item, table));
    case "compare":
      return eb(ref(filter.field), SQL_OPERATORS[filter.op], bindable(filter.value));
    case "in":
      // SQLite: `x IN ()` is false and `x NOT IN ()` is true, even for NULL x.
      if (filter.values.length === 0) return filter.negated ? sql<SqlBool>`1` : sql<SqlBool>`0`;
      return eb(ref(filter.field), filter.negated ? "not in" : "in", filter.values.map(bindable));
    case "like": {
      const pattern = String(bindable(filter.pattern));
      return filter.caseSensitive
        ? sql<SqlBool>`${ref(filter.field)} glob ${toGlobPattern(pattern)}`
        : sql<SqlBool>`${ref(filter.field)} like ${toLikePattern(pattern)} escape '\\'`;
    }
    case "isnull":
      return eb(ref(filter.field), filter.isNull ? "is" : "is not", null);
    case "between":
      return eb.between(ref(filter.field), bindable(filter.low), bindable(filter.high));
  }
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
