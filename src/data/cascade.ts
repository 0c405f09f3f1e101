/**
 * What a delete does to other rows through foreign keys (`on_delete`, §1.3), so that those rows are mutation
 * events like the deleted ones (§7, §8): the database deletes the rows of a "cascade" key (and theirs in turn)
 * and sets a "set null" key to NULL without a word; a "restrict" key refuses the delete, which then emits
 * nothing. Which keys point at an entity is known at startup (`linkDependents`); the rows are read in the
 * delete's transaction, before its DELETE, only when someone listens (writes.ts), and a request's delete reaches
 * at most so many of them (`ReachBound`).
 */
import { expressionBuilder, sql } from "kysely";
import { type Db, dialectOf } from "../db/connection.js";
import { BadRequestError, grouped as n } from "../errors.js";
import { compileFilter } from "../query/compile.js";
import type { CompiledSchema } from "../schema/compiled.js";
import {
  HIDDEN_GRAIN,
  hiddenGrainsOfIds,
  levelWorst,
  overBudget,
  type ReadView,
  readableBytesOfIds,
  wholeRowCost,
} from "./byte-budget.js";
import type { Row } from "./codec.js";
import { tooDeep } from "./db-errors.js";
import type { MutationEvent } from "./events.js";
import type { EntityModel, Models } from "./models.js";

/** A foreign key of an entity (`model`, `column`) pointing at another one, and what a delete there does to it. */
export interface Dependent {
  model: EntityModel;
  column: string;
  onDelete: "set null" | "cascade";
}

/**
 * Give each model the keys that point at it and change its rows on a delete (at startup). "restrict" keys are
 * left out: they change nothing, the delete fails. Junction tables cascade too, but their rows are no entity's.
 */
export function linkDependents(schema: CompiledSchema, models: Models): void {
  for (const fk of schema.foreignKeys) {
    const target = models.get(fk.target);
    const model = models.get(fk.entity);
    if (!target || !model || fk.onDelete === "restrict") continue;
    target.dependents.push({ model, column: fk.column, onDelete: fk.onDelete });
  }
}

/** Rows of one entity, whole as stored and decoded, by id ascending. */
interface Rows {
  model: EntityModel;
  rows: Map<number, Row>;
}

/** The rows a delete reaches besides its own, as they are before its DELETE. */
export interface Reached {
  /** deleted with them: breadth-first from the deleted rows, per key in schema order */
  deleted: Rows[];
  /** whose keys become NULL, per entity in the order first met */
  nulled: Rows[];
}

/**
 * What a request's delete may reach besides its own rows (§2.3), for their images are read, kept until the
 * commit and written to the audit trail and the outbox: at most `rows` rows and `bytes` bytes as stored of what
 * the caller may read (`read`), and apart `rows` rows and `bytes` in whole grains of the rest (byte-budget.ts),
 * so that what the caller may read moves no refusal about what it may not. `path` names the request's part a
 * refusal points at (`id` or `where`).
 */
export interface ReachBound {
  rows: number;
  bytes: number;
  path: string;
  read(model: EntityModel): ReadView | undefined;
}

/** The ids of one entity's rows, in the order a walk met them. */
interface Ids {
  model: EntityModel;
  ids: number[];
}

/** `values` in slices that one statement can bind (with `spare` binds left for the rest of it). */
function* chunks<T>(trx: Db, values: T[], spare = 0): Generator<T[]> {
  const size = Math.max(1, dialectOf(trx).maxBindValues - spare);
  for (let i = 0; i < values.length; i += size) yield values.slice(i, i + size);
}

/** Why a delete past its bound is refused, and what to do: the refusal says which bound, not how far past it. */
const RECORDED = "and the audit trail or the change feed record each one's image";
const REMEDY = "delete or detach those rows in parts first, or from trusted code";

/** How many levels of cascades a request's delete may walk: SQLite's own cascades stop there (db-errors.ts). */
const MAX_CASCADE_LEVELS = 1000;

/**
 * Refuse a walk down a self-referencing cascade key (a thread of replies) that would reach `levels` levels below
 * `ids` (where the walk itself would refuse), in one recursive query before the walk's query per level: a deep
 * chain costs no more round trips than a shallow one to refuse. Breadth-first, it stops after `most` rows, past
 * which the tally refuses anyway.
 */
async function checkDepth(trx: Db, { model, column }: Dependent, ids: number[], levels: number, most: number) {
  const table = sql.table(model.entity.name);
  const key = sql.ref(column);
  for (const chunk of chunks(trx, ids, 2)) {
    const { rows } = await sql<{ deepest: unknown }>`
      with recursive d(id, depth) as (
        select id, 1 from ${table} where ${key} in (${sql.join(chunk)})
        union all
        select t.id, d.depth + 1 from ${table} t join d on t.${key} = d.id where d.depth < ${levels}
      )
      select max(depth) as deepest from (select depth from d limit ${most}) s`.execute(trx);
    if (Number(rows[0]?.deepest ?? 0) >= levels) throw tooDeep();
  }
}

/** The rows reached so far: those the caller may read, and the others, counted apart against one bound. */
class Tally {
  readable = 0;
  hidden = 0;
  constructor(private readonly bound: ReachBound | undefined) {}

  /** How many more rows a query may bring back for this tally to tell the bound is passed. */
  room(): number | undefined {
    return this.bound && this.bound.rows - this.readable + (this.bound.rows - this.hidden) + 2;
  }

  add(readable: boolean): void {
    if (readable) this.readable++;
    else this.hidden++;
  }

  get passed(): boolean {
    return this.bound !== undefined && Math.max(this.readable, this.hidden) > this.bound.rows;
  }

  check(): void {
    if (!this.passed) return;
    const { path, rows } = this.bound!;
    const which = this.readable > rows ? "rows the caller may read" : "rows the caller may not read";
    throw new BadRequestError(
      `${path}: this delete's on_delete keys (cascade, set null) reach more than ${n(rows)} ${which}, ${RECORDED}; at most ${n(rows)} of each per request: ${REMEDY}`,
      { path, max: rows },
    );
  }
}

/**
 * The ids of `model`'s rows whose `column` holds one of `keys`, without those in `skip`, ascending, each counted
 * in `tally` as one the caller may read or not: with a bound, at most the `room` that tells it is passed (the
 * rest is never loaded). Locked where writes lock rows: a row changed by another transaction before the DELETE
 * would change its fallout.
 */
async function idsPointingAt(
  trx: Db,
  model: EntityModel,
  column: string,
  keys: number[],
  skip: ReadonlySet<number>,
  tally: Tally,
  read: ReadView | undefined,
): Promise<number[]> {
  const found = new Set<number>();
  const entity = model.entity.name;
  const eb = expressionBuilder<never, never>();
  for (const chunk of chunks(trx, keys)) {
    let query = trx
      .selectFrom(entity)
      .select(`${entity}.id`)
      .select(
        read
          ? sql<boolean>`case when ${compileFilter(eb, read.filter, entity)} then 1 else 0 end`.as("r")
          : sql`0`.as("r"),
      )
      .where(`${entity}.${column}`, "in", chunk);
    const room = tally.room();
    // skipped rows come back too: room for all of them
    if (room !== undefined) query = query.orderBy(`${entity}.id`).limit(room + skip.size);
    if (dialectOf(trx).locksRows) query = query.forUpdate();
    for (const row of await query.execute()) {
      const id = Number(row.id);
      if (skip.has(id) || found.has(id)) continue;
      found.add(id);
      tally.add(Number(row.r) === 1);
    }
    tally.check();
  }
  return [...found].sort((a, b) => a - b);
}

/** The whole stored rows of `ids`, decoded, in the order of `ids`. */
async function rowsOf(trx: Db, { model, ids }: Ids): Promise<Rows> {
  const read = new Map<number, Row>();
  for (const chunk of chunks(trx, ids))
    for (const row of await trx.selectFrom(model.entity.name).selectAll().where("id", "in", chunk).execute())
      read.set(Number(row.id), model.codec.image(row));
  const rows = new Map<number, Row>();
  for (const id of ids) {
    const row = read.get(id);
    if (row) rows.set(id, row);
  }
  return { model, rows };
}

/**
 * Refuse rows whose images would pass `bound.bytes` as stored, summed in SQL before any is read (a text without
 * `maxLength` has no worst case: the rows of one delete could otherwise fill the memory): what the caller may read
 * of them, and apart the values it may not, in whole grains (byte-budget.ts `hiddenGrainsOfIds`).
 */
async function checkReachedBytes(trx: Db, reached: Ids[], bound: ReachBound): Promise<void> {
  const worst = reached.reduce((sum, { model, ids }) => sum + levelWorst(ids.length, wholeRowCost(model.entity)), 0);
  if (worst <= bound.bytes) return;
  let readable = 0;
  let grains = 0;
  for (const { model, ids } of reached) readable += await readableBytesOfIds(trx, model.entity, ids, bound.read(model));
  if (readable > bound.bytes) {
    const what = `the rows its on_delete keys (cascade, set null) reach hold ${n(readable)} bytes you may read, ${RECORDED}`;
    throw overBudget(bound.path, what, bound.bytes, { bytes: readable }, REMEDY);
  }
  for (const { model, ids } of reached) grains += await hiddenGrainsOfIds(trx, model.entity, ids, bound.read(model));
  if (grains * HIDDEN_GRAIN > bound.bytes) {
    const what = `the rows its on_delete keys (cascade, set null) reach hold more in values the caller cannot read, ${RECORDED}`;
    throw overBudget(bound.path, what, bound.bytes, {}, REMEDY);
  }
}

/**
 * The rows deleting `ids` of `model` will delete or change through foreign keys, read in the delete's
 * transaction before its DELETE: their ids first, walking the keys, then (within `bound`, when given) the rows.
 * Each row is reached once: one a cascade deletes is not also one set to NULL, and a row set to NULL through two
 * keys is one row.
 */
export async function reach(trx: Db, model: EntityModel, ids: number[], bound?: ReachBound): Promise<Reached> {
  const tally = new Tally(bound);
  const readOf = (m: EntityModel) => bound?.read(m);
  const deletedIds = new Map<EntityModel, Set<number>>([[model, new Set(ids)]]);
  const deleted: Ids[] = [];
  let frontier: Ids[] = [{ model, ids }];
  const deepChecked = new Set<Dependent>();
  for (let level = 1; frontier.length > 0; level++) {
    // one query per key and level: a request walks no deeper than SQLite's cascades may go
    if (bound && level > MAX_CASCADE_LEVELS) throw tooDeep();
    const next: Ids[] = [];
    for (const parent of frontier)
      for (const dependent of parent.model.dependents) {
        if (dependent.onDelete !== "cascade") continue;
        if (bound && dependent.model === parent.model && !deepChecked.has(dependent)) {
          deepChecked.add(dependent);
          await checkDepth(trx, dependent, parent.ids, MAX_CASCADE_LEVELS - level + 1, 2 * bound.rows + 2);
        }
        const seen = deletedIds.get(dependent.model) ?? new Set<number>();
        deletedIds.set(dependent.model, seen);
        const { model: child, column } = dependent;
        const found = await idsPointingAt(trx, child, column, parent.ids, seen, tally, readOf(child));
        if (found.length === 0) continue;
        for (const id of found) seen.add(id);
        deleted.push({ model: dependent.model, ids: found });
        next.push({ model: dependent.model, ids: found });
      }
    frontier = next;
  }
  const nulledIds = new Map<EntityModel, Set<number>>();
  for (const [parent, parentIds] of deletedIds)
    for (const dependent of parent.dependents) {
      if (dependent.onDelete !== "set null") continue;
      const into = nulledIds.get(dependent.model) ?? new Set<number>();
      nulledIds.set(dependent.model, into);
      // a row already set to NULL through another key is not counted twice
      const skip = new Set([...(deletedIds.get(dependent.model) ?? []), ...into]);
      const { model: child, column } = dependent;
      for (const id of await idsPointingAt(trx, child, column, [...parentIds], skip, tally, readOf(child)))
        into.add(id);
    }
  const nulled: Ids[] = [...nulledIds]
    .filter(([, found]) => found.size > 0)
    .map(([model, found]) => ({ model, ids: [...found].sort((a, b) => a - b) }));
  if (bound) await checkReachedBytes(trx, [...deleted, ...nulled], bound);
  const reached: Reached = { deleted: [], nulled: [] };
  for (const d of deleted) reached.deleted.push(await rowsOf(trx, d));
  for (const d of nulled) reached.nulled.push(await rowsOf(trx, d));
  return reached;
}

/**
 * The events of the rows `reached`, once the DELETE has run: the cascaded deletes in the order the walk met
 * them, then the updates, whose `after` is read back as the database left the row (only its keys changed).
 */
export async function reachedEvents(trx: Db, reached: Reached): Promise<MutationEvent[]> {
  const events: MutationEvent[] = [];
  for (const { model, rows } of reached.deleted)
    for (const [id, before] of rows)
      events.push({ action: "delete", entity: model.entity.name, id, before, after: null });
  for (const { model, rows } of reached.nulled) {
    const after = new Map<number, Row>();
    for (const chunk of chunks(trx, [...rows.keys()])) {
      const stored = await trx.selectFrom(model.entity.name).selectAll().where("id", "in", chunk).execute();
      for (const row of stored) after.set(Number(row.id), model.codec.image(row));
    }
    for (const [id, before] of rows) {
      const row = after.get(id);
      // every row read was locked or the transaction is the only writer: it is there, with its keys NULL
      if (row) events.push({ action: "update", entity: model.entity.name, id, before, after: row });
    }
  }
  return events;
}
