/**
 * `with` expansion: one query per relation (never per row), each under the related entity's own read scope,
 * with the per-parent limit applied in SQL by `row_number()`.
 */
import { sql } from "kysely";
import { type Db, dialectOf } from "../db/connection.js";
import { and } from "../query/ast.js";
import { compileFilter } from "../query/compile.js";
import type { Scope, SortKey, WithSpec } from "../query/options.js";
import type { Row } from "./codec.js";
import { hideUnshown, shownFlags, sortTerm } from "./field-rules.js";
import type { Models } from "./models.js";

const PARENT = "__parent";
const RANK = "__rank";

/** The columns to read for a set of rows: what the caller sees, plus keys the expansion needs. */
export function columnsFor(output: string[], specs: WithSpec[]): string[] {
  const columns = new Set(["id", ...output]);
  for (const s of specs) if (s.relation.path.kind === "local") columns.add(s.relation.path.column);
  return [...columns];
}

export function pick(row: Row, columns: string[]): Row {
  const out: Row = {};
  for (const c of columns) out[c] = row[c];
  return out;
}

const orderBy = (db: Db, table: string, sort: SortKey[], rowFields: Scope["rowFields"]) =>
  sql.join(sort.map((k) => sortTerm(dialectOf(db), rowFields, table, k)));

/** Attach each spec's related rows to `rows` (mutates them), recursing into nested specs. */
export async function expand(db: Db, models: Models, rows: Row[], specs: WithSpec[]): Promise<void> {
  if (rows.length === 0) return;
  for (const spec of specs) {
    const { relation, view } = spec;
    const model = models.get(relation.target)!;
    const output = spec.select ?? model.visibleFields.filter((f) => !view.scope.fields || view.scope.fields.has(f));
    const columns = columnsFor(output, spec.with);
    const filter = and(view.scope.filter, spec.where);
    const path = relation.path;

    let related: Row[];
    if (path.kind === "local") {
      const keys = [...new Set(rows.map((r) => r[path.column]).filter((k) => k !== null && k !== undefined))];
      related =
        keys.length === 0
          ? []
          : await db
              .selectFrom(`${relation.target} as t`)
              .select(columns.map((c) => `t.${c}`))
              .select(shownFlags(view.scope.rowFields, output, "t"))
              .select(sql.ref("t.id").as(PARENT))
              .where((eb) => eb.and([eb("t.id", "in", keys), compileFilter(eb, filter, "t")]))
              .execute();
    } else {
      const parents = rows.map((r) => r.id);
      const parentRef = path.kind === "remote" ? `t.${path.column}` : `j.${path.selfColumn}`;
      let inner = db.selectFrom(`${relation.target} as t`);
      if (path.kind === "junction") inner = inner.innerJoin(`${path.table} as j`, `j.${path.otherColumn}`, "t.id");
      const ranked = inner
        .select(columns.map((c) => `t.${c}`))
        .select(shownFlags(view.scope.rowFields, output, "t"))
        .select(sql.ref(parentRef).as(PARENT))
        .select(
          sql`row_number() over (partition by ${sql.ref(parentRef)} order by ${orderBy(db, "t", spec.sort, view.scope.rowFields)})`.as(
            RANK,
          ),
        )
        .where((eb) => eb.and([eb(parentRef, "in", parents), compileFilter(eb, filter, "t")]));
      related = await db
        .selectFrom(ranked.as("r"))
        .selectAll()
        .where(RANK, "<=", relation.cardinality === "one" ? 1 : spec.limit)
        .orderBy(RANK)
        .execute();
    }

    for (const r of related) model.codec.decode(hideUnshown(r, view.scope.rowFields));
    await expand(db, models, related, spec.with);

    const byParent = new Map<unknown, Row[]>();
    for (const r of related) {
      const key = r[PARENT];
      const shaped = pick(r, [...output, ...spec.with.map((w) => w.relation.name)]);
      const list = byParent.get(key);
      if (list) list.push(shaped);
      else byParent.set(key, [shaped]);
    }
    for (const row of rows) {
      const key = path.kind === "local" ? row[path.column] : row.id;
      const found = byParent.get(key) ?? [];
      row[relation.name] = relation.cardinality === "one" ? (found[0] ?? null) : found;
    }
  }
}
