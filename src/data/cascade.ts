/**
 * What a delete does to other rows through foreign keys (`on_delete`, §1.3), so that those rows are mutation
 * events like the deleted ones (§7, §8): the database deletes the rows of a "cascade" key (and theirs in turn)
 * and sets a "set null" key to NULL without a word; a "restrict" key refuses the delete, which then emits
 * nothing. Which keys point at an entity is known at startup (`linkDependents`); the rows are read in the
 * delete's transaction, before its DELETE, only when someone listens (writes.ts).
 */
import { type Db, dialectOf } from "../db/connection.js";
import type { CompiledSchema } from "../schema/compiled.js";
import type { Row } from "./codec.js";
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

/** `values` in slices that one statement can bind (with `spare` binds left for the rest of it). */
function* chunks<T>(trx: Db, values: T[], spare = 0): Generator<T[]> {
  const size = Math.max(1, dialectOf(trx).maxBindValues - spare);
  for (let i = 0; i < values.length; i += size) yield values.slice(i, i + size);
}

/**
 * The whole stored rows of `model` whose `column` holds one of `keys`, without those in `skip`. Locked where
 * writes lock rows: a row changed by another transaction before the DELETE would change its fallout.
 */
async function rowsPointingAt(
  trx: Db,
  model: EntityModel,
  column: string,
  keys: number[],
  skip: ReadonlySet<number> | undefined,
): Promise<Map<number, Row>> {
  const found = new Map<number, Row>();
  for (const chunk of chunks(trx, keys)) {
    let query = trx.selectFrom(model.entity.name).selectAll().where(column, "in", chunk);
    if (dialectOf(trx).locksRows) query = query.forUpdate();
    for (const row of await query.execute()) {
      const id = Number(row.id);
      if (!skip?.has(id)) found.set(id, model.codec.image(row));
    }
  }
  return new Map([...found].sort(([a], [b]) => a - b));
}

/**
 * The rows deleting `ids` of `model` will delete or change through foreign keys, read in the delete's
 * transaction before its DELETE. Each row is reached once: one a cascade deletes is not also one set to NULL,
 * and a row set to NULL through two keys is one row.
 */
export async function reach(trx: Db, model: EntityModel, ids: number[]): Promise<Reached> {
  const deletedIds = new Map<EntityModel, Set<number>>([[model, new Set(ids)]]);
  const deleted: Rows[] = [];
  let frontier: { model: EntityModel; ids: number[] }[] = [{ model, ids }];
  while (frontier.length > 0) {
    const next: typeof frontier = [];
    for (const parent of frontier)
      for (const dependent of parent.model.dependents) {
        if (dependent.onDelete !== "cascade") continue;
        const seen = deletedIds.get(dependent.model) ?? new Set<number>();
        deletedIds.set(dependent.model, seen);
        const rows = await rowsPointingAt(trx, dependent.model, dependent.column, parent.ids, seen);
        if (rows.size === 0) continue;
        for (const id of rows.keys()) seen.add(id);
        deleted.push({ model: dependent.model, rows });
        next.push({ model: dependent.model, ids: [...rows.keys()] });
      }
    frontier = next;
  }
  const nulled = new Map<EntityModel, Map<number, Row>>();
  for (const [parent, parentIds] of deletedIds)
    for (const dependent of parent.dependents) {
      if (dependent.onDelete !== "set null") continue;
      const skip = deletedIds.get(dependent.model);
      const rows = await rowsPointingAt(trx, dependent.model, dependent.column, [...parentIds], skip);
      if (rows.size === 0) continue;
      const into = nulled.get(dependent.model) ?? new Map<number, Row>();
      nulled.set(dependent.model, into);
      for (const [id, row] of rows) into.set(id, row);
    }
  return {
    deleted,
    nulled: [...nulled].map(([model, rows]) => ({ model, rows: new Map([...rows].sort(([a], [b]) => a - b)) })),
  };
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
