/**
 * Writes under the WriteScopes the scoped accessor asked the guard for (scoped.ts), each in one transaction:
 * validate, write, check the written rows (§4.6) and their links (§4.10), answer what the caller may read.
 */
import { sql } from "kysely";
import type { Db } from "../db/connection.js";
import { BadRequestError, CitadelError, ValidationError } from "../errors.js";
import type { Filter } from "../query/ast.js";
import type { Row } from "./codec.js";
import { translateDbError, uniqueConflict } from "./db-errors.js";
import type { EntityModel } from "./models.js";
import {
  checkCollided,
  checkReferences,
  checkWritableFields,
  checkWritten,
  locate,
  readableFields,
  readBack,
  targets,
  type Unwritten,
  type WriteScopes,
  withOwner,
} from "./write-checks.js";

const now = () => new Date().toISOString();
const isObject = (v: unknown): v is Row => typeof v === "object" && v !== null && !Array.isArray(v);

/** Run `work` in a transaction; database errors become typed ones (409, 400) or stay unknown (500). */
export async function inTransaction<T>(db: Db, work: (trx: Db) => Promise<T>): Promise<T> {
  try {
    return await db.transaction().execute(work);
  } catch (error) {
    if (error instanceof CitadelError) throw error;
    throw translateDbError(error) ?? error;
  }
}

/**
 * §4.17, what a write answers when it meets a row the caller cannot read, case by case:
 * - a reference to a hidden row of an entity the caller partly reads: the reference check's 409, the body a
 *   missing row gets (the foreign key's), and only after the write check;
 * - a reference into an entity the caller cannot read at all: the write check first, so an owner key the
 *   filter binds is 403 whether that user exists or not; where no filter binds it, linking is what the
 *   permission grants, and a missing row keeps the foreign key's 409;
 * - a unique value held by a hidden row: every check that does not depend on hidden rows answers first
 *   (`write` below); a write that passes them all gets the collision's 409, the same body as for a readable
 *   row. That a taken value is refused cannot be hidden: the value is unique across all rows;
 * - a one-to-one is both: the reference check runs before the collision is reported, so a hidden user with a
 *   profile, one without and a missing user all get the reference's 409.
 * For the first two, foreign keys are checked at commit, after the write check and the reference check.
 */
const deferForeignKeys = (trx: Db) => sql`pragma defer_foreign_keys = on`.execute(trx);

/**
 * Run a statement that may meet a unique value held by another row. SQLite reports it at once, before the
 * checks could run; then the checks run on the rows as they would have been (§4.17), and the collision is
 * the answer only when they all pass, naming the fields the caller reads or sent.
 */
async function write(
  statement: () => Promise<unknown>,
  collided: () => Promise<void>,
  nameable: (field: string) => boolean,
): Promise<void> {
  try {
    await statement();
  } catch (error) {
    const conflict = uniqueConflict(error, nameable);
    if (!conflict) throw error;
    await collided();
    throw conflict;
  }
}

/** Fields a collision may name: those the caller reads, and those it sent. */
function nameable(model: EntityModel, scopes: WriteScopes, sent: Iterable<string>): (field: string) => boolean {
  const names = new Set([...(scopes.read ? readableFields(model, scopes.read) : []), ...sent]);
  return (field) => names.has(field);
}

/** Create one or many rows, all or nothing (§2.4, §4.6). */
export async function create(db: Db, model: EntityModel, input: unknown, scopes: WriteScopes): Promise<Row | Row[]> {
  const entity = model.entity.name;
  const many = Array.isArray(input);
  const items = many ? input : [input];
  if (items.length === 0) throw new BadRequestError("expected at least one row");
  if (items.length > 1000) throw new BadRequestError("at most 1000 rows per create");
  const values = items.map((item, i) => {
    if (!isObject(item)) throw new BadRequestError(many ? `[${i}]: expected an object` : "expected a JSON object");
    checkWritableFields(item, scopes, entity);
    try {
      return model.validator.create(withOwner(model, item, scopes, true));
    } catch (error) {
      if (!(error instanceof ValidationError) || !many) throw error;
      throw new ValidationError(Object.fromEntries(Object.entries(error.fields).map(([k, v]) => [`[${i}].${k}`, v])));
    }
  });
  const rows = await inTransaction(db, async (trx) => {
    await deferForeignKeys(trx);
    const at = now();
    const stored = values.map((v) => ({ ...model.codec.encode(v), created_at: at, updated_at: at }));
    const ids: number[] = [];
    const names = nameable(model, scopes, new Set(items.flatMap((item) => Object.keys(item as Row))));
    for (const row of stored) {
      const unwritten = (): Unwritten => ({ ids, created: stored.slice(ids.length) });
      await write(
        async () => {
          const inserted = await trx.insertInto(entity).values(row).returning("id").executeTakeFirstOrThrow();
          ids.push(Number(inserted.id));
        },
        () => checkCollided(trx, model, unwritten(), values, scopes),
        names,
      );
    }
    await checkWritten(trx, entity, ids, scopes);
    await checkReferences(trx, model, values, scopes);
    return readBack(trx, model, ids, scopes.read);
  });
  return many ? rows : rows[0]!;
}

/** Apply validated `values` to the rows `ids` and check them as written. */
async function apply(trx: Db, model: EntityModel, ids: number[], values: Row, scopes: WriteScopes): Promise<Row[]> {
  const entity = model.entity.name;
  await deferForeignKeys(trx);
  const set = { ...model.codec.encode(values), updated_at: now() };
  await write(
    () => trx.updateTable(entity).set(set).where("id", "in", ids).execute(),
    () => checkCollided(trx, model, { ids, set }, [values], scopes),
    nameable(model, scopes, Object.keys(values)),
  );
  await checkWritten(trx, entity, ids, scopes);
  await checkReferences(trx, model, [values], scopes);
  return readBack(trx, model, ids, scopes.read);
}

/** Validate an update body: an object naming only fields the caller may write. */
function updateValues(model: EntityModel, input: unknown, scopes: WriteScopes, what: string): Row {
  if (!isObject(input)) throw new BadRequestError(`${what}expected a JSON object`);
  checkWritableFields(input, scopes, model.entity.name);
  return model.validator.update(withOwner(model, input, scopes, false));
}

export async function updateOne(
  db: Db,
  model: EntityModel,
  id: number,
  input: unknown,
  scopes: WriteScopes,
): Promise<Row> {
  const values = updateValues(model, input, scopes, "");
  return inTransaction(db, async (trx) => {
    await locate(trx, model.entity.name, id, scopes);
    return (await apply(trx, model, [id], values, scopes))[0]!;
  });
}

export async function updateMany(
  db: Db,
  model: EntityModel,
  where: Filter,
  input: unknown,
  scopes: WriteScopes,
): Promise<Row[]> {
  const values = updateValues(model, input, scopes, "update: ");
  return inTransaction(db, async (trx) => {
    const ids = await targets(trx, model.entity.name, where, scopes);
    return ids.length === 0 ? [] : apply(trx, model, ids, values, scopes);
  });
}

export async function deleteOne(db: Db, model: EntityModel, id: number, scopes: WriteScopes): Promise<Row> {
  const entity = model.entity.name;
  return inTransaction(db, async (trx) => {
    await locate(trx, entity, id, scopes);
    const [row] = await readBack(trx, model, [id], scopes.read);
    await trx.deleteFrom(entity).where("id", "=", id).execute();
    return row!;
  });
}

export async function deleteMany(db: Db, model: EntityModel, where: Filter, scopes: WriteScopes): Promise<Row[]> {
  const entity = model.entity.name;
  return inTransaction(db, async (trx) => {
    const ids = await targets(trx, entity, where, scopes);
    if (ids.length === 0) return [];
    const rows = await readBack(trx, model, ids, scopes.read);
    await trx.deleteFrom(entity).where("id", "in", ids).execute();
    return rows;
  });
}
