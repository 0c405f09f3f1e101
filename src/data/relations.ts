/**
 * `with` expansion: one query per relation (never per row), each under the related entity's own read scope,
 * with the per-parent limit applied in SQL by `row_number()`. Under a byte budget not yet settled, a level is
 * measured by the same query before it is read (byte-budget.ts).
 */
import { type SelectQueryBuilder, sql } from "kysely";
import { type Db, dialectOf } from "../db/connection.js";
import { and } from "../query/ast.js";
import { compileFilter } from "../query/compile.js";
import type { Scope, SortKey, WithSpec } from "../query/options.js";
import type { CompiledRelation } from "../schema/compiled.js";
import { type ByteBudget, levelWorst, MEASURED_ID, measure, type RowCost, rowCost } from "./byte-budget.js";
import type { Row } from "./codec.js";
import { hideUnshown, shownFlags, sortTerm } from "./field-rules.js";
import type { Models } from "./models.js";
import { readableFields } from "./write-checks.js";

const PARENT = "__parent";
const RANK = "__rank";

// biome-ignore lint/suspicious/noExplicitAny: tables are only known at runtime
type AnySelect = SelectQueryBuilder<any, any, any>;

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

/** What the caller reads of a level's rows: the fields it selected, or every one its scope covers. */
const outputOf = (models: Models, spec: WithSpec) =>
  spec.select ?? readableFields(models.get(spec.relation.target)!, spec.view.scope);

/** What a row of a level costs (byte-budget.ts). */
function costOf(models: Models, spec: WithSpec): RowCost {
  const entity = models.get(spec.relation.target)!.entity;
  const relations = spec.with.map((w) => w.relation.name);
  return rowCost(entity, columnsFor(outputOf(models, spec), spec.with), relations);
}

/** The key by which a parent row finds its related rows: the key it holds, or its id. */
const keyOf = (relation: CompiledRelation, row: Row) =>
  relation.path.kind === "local" ? row[relation.path.column] : row.id;

/** Rows a level brings per parent row: one of a to-one relation, at most `limit` of a to-many one. */
const perParent = (spec: WithSpec) => (spec.relation.cardinality === "one" ? 1 : spec.limit);

/** The worst case in bytes of every level of `specs` under at most `parentRows` parent rows. */
export function withWorst(models: Models, specs: WithSpec[], parentRows: number): number[] {
  const levels: number[] = [];
  for (const spec of specs) {
    const rows = parentRows * perParent(spec);
    levels.push(levelWorst(rows, costOf(models, spec)), ...withWorst(models, spec.with, rows));
  }
  return levels;
}

/**
 * The rows of one level for `rows` (their parents), under the target's read scope and the caller's where,
 * each with its parent's key (`__parent`), at most `perParent` per parent (ranked by the caller's sort).
 * `select` picks what is read of each (`t`). Undefined when no parent holds a key.
 */
function levelRows(db: Db, spec: WithSpec, rows: Row[], select: (q: AnySelect) => AnySelect): AnySelect | undefined {
  const { relation, view } = spec;
  const filter = and(view.scope.filter, spec.where);
  const path = relation.path;
  if (path.kind === "local") {
    const keys = [...new Set(rows.map((r) => r[path.column]).filter((k) => k !== null && k !== undefined))];
    if (keys.length === 0) return undefined;
    return select(db.selectFrom(`${relation.target} as t`))
      .select(sql.ref("t.id").as(PARENT))
      .where((eb) => eb.and([eb("t.id", "in", keys), compileFilter(eb, filter, "t")]));
  }
  const parents = rows.map((r) => r.id);
  const parentRef = path.kind === "remote" ? `t.${path.column}` : `j.${path.selfColumn}`;
  let inner: AnySelect = db.selectFrom(`${relation.target} as t`);
  if (path.kind === "junction") inner = inner.innerJoin(`${path.table} as j`, `j.${path.otherColumn}`, "t.id");
  const ranked = select(inner)
    .select(sql.ref(parentRef).as(PARENT))
    .select(
      sql`row_number() over (partition by ${sql.ref(parentRef)} order by ${orderBy(db, "t", spec.sort, view.scope.rowFields)})`.as(
        RANK,
      ),
    )
    .where((eb) => eb.and([eb(parentRef, "in", parents), compileFilter(eb, filter, "t")]));
  return db.selectFrom(ranked.as("ranked")).selectAll().where(RANK, "<=", perParent(spec));
}

/** Where a level sits in the request, for the byte budget: its `with` path and its worst-case parent rows. */
export interface Level {
  at: string;
  rows: number;
}

/**
 * Measure a level before reading it, and spend it (400 past the budget). Answers how many times the answer
 * writes the rows of each parent key: a row shared by parents is written under each, nested levels included.
 */
async function measureLevel(
  db: Db,
  models: Models,
  spec: WithSpec,
  rows: Row[],
  budget: ByteBudget,
  level: Level,
): Promise<Map<unknown, number>> {
  const copies = new Map<unknown, number>();
  for (const r of rows) {
    const key = keyOf(spec.relation, r);
    copies.set(key, (copies.get(key) ?? 0) + budget.copiesOf(r));
  }
  const cost = costOf(models, spec);
  const query = levelRows(db, spec, rows, (q) => q.select(sql.ref("t.id").as(MEASURED_ID)));
  const measured = query ? await measure(db, spec.relation.target, query, cost, spec.view.scope.rowFields, PARENT) : [];
  let bytes = 0;
  for (const m of measured) bytes += m.bytes * (copies.get(m.parent) ?? 1);
  budget.spend(levelWorst(level.rows, cost), bytes, { path: "with", at: level.at });
  return copies;
}

/**
 * Attach each spec's related rows to `rows` (mutates them), recursing into nested specs. Under `budget`,
 * `level` says where `rows` sit: each level below is measured before it is read while the budget is unsettled.
 */
export async function expand(
  db: Db,
  models: Models,
  rows: Row[],
  specs: WithSpec[],
  budget?: ByteBudget,
  level: Level = { at: "with", rows: rows.length },
): Promise<void> {
  if (rows.length === 0) return;
  for (const spec of specs) {
    const { relation, view } = spec;
    const model = models.get(relation.target)!;
    const output = outputOf(models, spec);
    const columns = columnsFor(output, spec.with);
    const below: Level = { at: `${level.at}.${relation.name}`, rows: level.rows * perParent(spec) };
    const copies = budget && !budget.settled ? await measureLevel(db, models, spec, rows, budget, below) : undefined;

    const query = levelRows(db, spec, rows, (q) =>
      q.select(columns.map((c) => `t.${c}`)).select(shownFlags(view.scope.rowFields, output, "t")),
    );
    const related: Row[] = query ? await (relation.path.kind === "local" ? query : query.orderBy(RANK)).execute() : [];
    for (const r of related) {
      model.codec.decode(hideUnshown(r, view.scope.rowFields));
      if (copies) budget!.setCopies(r, copies.get(r[PARENT]) ?? 1);
    }
    await expand(db, models, related, spec.with, budget, below);

    const byParent = new Map<unknown, Row[]>();
    for (const r of related) {
      const key = r[PARENT];
      const shaped = pick(r, [...output, ...spec.with.map((w) => w.relation.name)]);
      const list = byParent.get(key);
      if (list) list.push(shaped);
      else byParent.set(key, [shaped]);
    }
    for (const row of rows) {
      const key = keyOf(relation, row);
      const found = byParent.get(key) ?? [];
      row[relation.name] = relation.cardinality === "one" ? (found[0] ?? null) : found;
    }
  }
}
