/**
 * Per-row field rules (§9.4) where rows are read and written: a field readable only on some rows is shown on
 * those rows alone (a flag column computed in the same SQL), sorted as NULL elsewhere, and written only when
 * every row the write touches satisfies its write rule. `where` gets the same treatment in where.ts.
 */
import { type AliasedRawBuilder, expressionBuilder, type RawBuilder, sql } from "kysely";
import type { Db } from "../db/connection.js";
import { type Dialect, orderTerm } from "../dialect/index.js";
import type { ForbiddenError } from "../errors.js";
import { and, type Filter } from "../query/ast.js";
import { compileFilter } from "../query/compile.js";
import type { Scope, SortKey } from "../query/options.js";
import type { Row } from "./codec.js";

export type RowFields = ReadonlyMap<string, Filter> | undefined;

const flagOf = (field: string) => `__shown_${field}`;

// biome-ignore lint/suspicious/noExplicitAny: tables are only known at runtime
const builder = () => expressionBuilder<any, any>();

/** Whether the field's rule holds on `table`'s row, as SQL. */
const holds = (rule: Filter, table: string) => compileFilter(builder(), rule, table);

/** One flag column per rule-bound field of `output`: 1 on the rows where the caller may read it. */
export function shownFlags(rowFields: RowFields, output: string[], table: string): AliasedRawBuilder<number, string>[] {
  if (!rowFields) return [];
  return output
    .filter((f) => rowFields.has(f))
    .map((f) => sql<number>`case when ${holds(rowFields.get(f)!, table)} then 1 else 0 end`.as(flagOf(f)));
}

/** Whether a row read with `shownFlags` shows `field` (its flag not yet removed by `hideUnshown`). */
export const shownOn = (row: Row, rowFields: RowFields, field: string): boolean =>
  !rowFields?.has(field) || Number(row[flagOf(field)]) === 1;

/** Remove from a row the values its flags say the caller may not read (absent, not null: §9.4). */
export function hideUnshown(row: Row, rowFields: RowFields): Row {
  if (!rowFields) return row;
  for (const field of rowFields.keys()) {
    const flag = flagOf(field);
    if (!(flag in row)) continue;
    if (!Number(row[flag])) delete row[field];
    delete row[flag];
  }
  return row;
}

/** An ORDER BY term: a rule-bound field sorts as NULL on the rows where it is hidden (no ranking oracle). */
export function sortTerm(dialect: Dialect, rowFields: RowFields, table: string, key: SortKey): RawBuilder<unknown> {
  const column = `${table}.${key.field}`;
  const rule = rowFields?.get(key.field);
  if (!rule) return orderTerm(dialect, column, key.dir);
  return orderTerm(dialect, sql`(case when ${holds(rule, table)} then ${sql.ref(column)} end)`, key.dir);
}

/**
 * §9.4: a written field with a write rule is refused (403 naming it) unless the rule holds on every row
 * written: before the write (the rows as they are) and after it (the rows as written). A rule whose value is
 * UNKNOWN on a row does not hold there.
 */
export async function checkFieldWrites(
  trx: Db,
  entity: string,
  ids: number[],
  written: Iterable<string>,
  write: Scope,
  refuse: (field: string) => ForbiddenError,
): Promise<void> {
  if (!write.rowFields || ids.length === 0) return;
  for (const field of written) {
    const rule = write.rowFields.get(field);
    if (!rule) continue;
    const inRule = and(rule, { kind: "in", field: "id", negated: false, values: ids });
    const row = await trx
      .selectFrom(entity)
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where((eb) => compileFilter(eb, inRule, entity))
      .executeTakeFirst();
    if (Number(row?.n ?? 0) !== ids.length) throw refuse(field);
  }
}
