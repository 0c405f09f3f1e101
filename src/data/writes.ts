/**
 * Writes under the WriteScopes the scoped accessor asked the guard for (scoped.ts), each in one transaction:
 * validate, write, check the written rows (§4.6) and their links (§4.10), answer what the caller may read.
 */
import { type Db, dialectOf } from "../db/connection.js";
import { retryBusy } from "../db/dialect-driver.js";
import { BadRequestError, CitadelError, ValidationError } from "../errors.js";
import type { Filter } from "../query/ast.js";
import type { Scope } from "../query/options.js";
import { checkWriteBytes, type ReadView } from "./byte-budget.js";
import { type Reached, reach, reachedEvents } from "./cascade.js";
import type { Row } from "./codec.js";
import { translateDbError, uniqueConflict } from "./db-errors.js";
import type { MutationEvent } from "./events.js";
import type { EntityModel } from "./models.js";
import {
  checkCollided,
  checkFieldRules,
  checkReferences,
  checkTenantLinks,
  checkWritableFields,
  checkWritten,
  locate,
  MAX_ROWS_PER_WRITE,
  readableFields,
  readBack,
  targets,
  type Unwritten,
  type WriteScopes,
  withOwner,
  withTenant,
} from "./write-checks.js";

const now = () => new Date().toISOString();
const isObject = (v: unknown): v is Row => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Run `work` in a transaction, the whole transaction again while the engine is too busy to take it (it
 * applied nothing); database errors become typed ones (409, 400, 503) or stay unknown (500).
 */
export async function inTransaction<T>(db: Db, work: (trx: Db) => Promise<T>): Promise<T> {
  try {
    return await retryBusy(() => db.transaction().execute(work));
  } catch (error) {
    if (error instanceof CitadelError) throw error;
    throw translateDbError(error) ?? error;
  }
}

/**
 * §4.17, what a write answers when it meets a row the caller cannot read, case by case:
 * - a reference to a hidden row: the reference check's 409, the body a missing row gets (the foreign key's),
 *   and only after the write check, so a key the filter binds is 403 whether that row exists or not. Of an
 *   entity the caller cannot read at all every row is hidden, but for the caller's own user (the owner key
 *   the server sets, §4.14, or the caller's own id): any other key is the 409 of a missing row;
 * - a unique value held by a hidden row: every check that does not depend on hidden rows answers first
 *   (`write` below); a write that passes them all gets the collision's 409, the same body as for a readable
 *   row. That a taken value is refused cannot be hidden: the value is unique across all rows;
 * - a one-to-one is both: the reference check runs before the collision is reported, so a hidden user with a
 *   profile, one without and a missing user all get the reference's 409.
 * For references, foreign keys are checked at commit, after the write check and the reference check.
 */
const deferForeignKeys = (trx: Db) => dialectOf(trx).deferForeignKeys(trx);

/** Runs a statement that may fail on a unique value, such that the transaction can go on after the failure. */
type Attempt = <T>(statement: () => Promise<T>) => Promise<T>;

/** A statement met a unique value in a transaction the engine then gave up on (PostgreSQL): run it again, carefully. */
class RunCarefully extends Error {}

/**
 * Run a write transaction whose statements may meet unique values (`attempt` runs those). SQLite undoes the
 * failed statement and goes on, so one run serves. PostgreSQL aborts the whole transaction, and a savepoint
 * around every statement would cost two more round trips each: the first run has none, and only when a
 * statement meets a unique value is the transaction run again with savepoints, to find and answer it (§4.17).
 */
async function writeTransaction<T>(db: Db, work: (trx: Db, attempt: Attempt) => Promise<T>): Promise<T> {
  const dialect = dialectOf(db);
  if (!dialect.abortsOnError) return inTransaction(db, (trx) => work(trx, (statement) => statement()));
  try {
    return await inTransaction(db, (trx) =>
      work(trx, async (statement) => {
        try {
          return await statement();
        } catch (error) {
          throw uniqueConflict(error, () => true) ? new RunCarefully() : error;
        }
      }),
    );
  } catch (error) {
    if (!(error instanceof RunCarefully)) throw error;
    return inTransaction(db, (trx) => work(trx, (statement) => dialect.recoverable(trx, statement)));
  }
}

/**
 * Run a statement that may meet a unique value held by another row. The engine reports it at once, before
 * the checks could run; then the checks run on the rows as they would have been (§4.17), and the collision
 * is the answer only when they all pass, naming the fields the caller reads or sent.
 */
async function write(
  attempt: Attempt,
  statement: () => Promise<unknown>,
  collided: () => Promise<void>,
  nameable: (field: string) => boolean,
): Promise<void> {
  try {
    await attempt(statement);
  } catch (error) {
    const conflict = uniqueConflict(error, nameable);
    if (!conflict) throw error;
    await collided();
    throw conflict;
  }
}

/** What the caller may read of `model`'s rows (undefined: none): the byte budget counts it apart (§2.3). */
function readOf(model: EntityModel, read: Scope | undefined): ReadView | undefined {
  return read && { filter: read.filter, fields: readableFields(model, read), rowFields: read.rowFields };
}

/** Hold a write of `values` to the rows `ids` to the request's byte budget, `maxBytes` (byte-budget.ts). */
function checkBudget(
  trx: Db,
  model: EntityModel,
  scopes: WriteScopes,
  ids: number[],
  values: Row,
  maxBytes: number | undefined,
  path: "id" | "where",
): Promise<void> {
  const read = readOf(model, scopes.read);
  return checkWriteBytes(trx, model.entity, ids, values, maxBytes, read, path, scopes.events.active);
}

/** Fields a collision may name: those the caller reads, and those it sent. */
function nameable(model: EntityModel, scopes: WriteScopes, sent: Iterable<string>): (field: string) => boolean {
  const names = new Set([...(scopes.read ? readableFields(model, scopes.read) : []), ...sent]);
  return (field) => names.has(field);
}

/**
 * Row counts of the INSERTs of a create (§11.5): the binary digits of `n`, largest first, none above `max`.
 * A 1,000-row create is six statements, and an entity has at most ~log2(max) INSERT shapes, so the
 * connection's prepared-statement cache cannot fill with a large statement per batch size (about 0.8 MB each
 * for 1,000 rows of a few columns).
 */
export function chunkSizes(n: number, max: number): number[] {
  let top = 1;
  while (top * 2 <= max) top *= 2;
  const sizes: number[] = [];
  let left = n;
  for (; left >= top; left -= top) sizes.push(top);
  for (let size = top / 2; size >= 1; size /= 2)
    if (left >= size) {
      sizes.push(size);
      left -= size;
    }
  return sizes;
}

/**
 * A create's rows with the same columns: every field a create may write, and the timestamps. A column a row
 * leaves out is a field without a default (the validator fills the others), so it is NULL as it would be by
 * omission (sync.ts declares no column default then). Hidden fields keep their column defaults: not listed.
 */
function insertable(model: EntityModel, stored: Row[]): Row[] {
  const columns = [...model.visibleFields.filter((f) => f !== "id"), ...model.indexColumns];
  const known = new Set(columns);
  return stored.map((row) => {
    for (const key in row) if (!known.has(key)) throw new Error(`a create may not store column "${key}"`);
    return Object.fromEntries(columns.map((c) => [c, row[c] ?? null]));
  });
}

/** Run a multi-row INSERT: false when it met a unique value, and so wrote none of its rows. */
async function inserted(attempt: Attempt, statement: () => Promise<void>): Promise<boolean> {
  try {
    await attempt(statement);
    return true;
  } catch (error) {
    if (uniqueConflict(error, () => true)) return false;
    throw error;
  }
}

/**
 * Insert the stored rows in multi-row statements within the bind limit; their ids, in input order. A statement
 * that meets a unique value wrote nothing: its rows go again in halves, the half that meets it halved again,
 * so the collision is met at the row that makes it (a few statements, not one per row), with the rows before
 * it written, and answered as a one-row INSERT always was (§4.17, `write`).
 */
async function insertRows(
  trx: Db,
  attempt: Attempt,
  model: EntityModel,
  stored: Row[],
  collided: (unwritten: Unwritten) => Promise<void>,
  names: (field: string) => boolean,
): Promise<number[]> {
  const rows = insertable(model, stored);
  const ids: number[] = [];
  const insert = async (chunk: Row[]) => {
    const returned = await trx.insertInto(model.entity.name).values(chunk).returning("id").execute();
    // New ids ascend in the order of the VALUES rows (AUTOINCREMENT); the order RETURNING emits them in is
    // not something the engines promise (SQLite emits processing order today: test/data/bulk-create.test.ts).
    ids.push(...returned.map((r) => Number(r.id)).sort((a, b) => a - b));
  };
  // chunk sizes are powers of two, and so are their halves: each size is one statement shape
  const insertChunk = async (chunk: Row[]): Promise<void> => {
    if (chunk.length === 1) {
      await write(
        attempt,
        () => insert(chunk),
        () => collided({ ids, created: stored.slice(ids.length) }),
        names,
      );
      return;
    }
    if (await inserted(attempt, () => insert(chunk))) return;
    const half = chunk.length / 2;
    await insertChunk(chunk.slice(0, half));
    await insertChunk(chunk.slice(half));
  };
  let start = 0;
  const maxRows = Math.floor(dialectOf(trx).maxBindValues / Object.keys(rows[0]!).length);
  for (const size of chunkSizes(rows.length, maxRows)) {
    await insertChunk(rows.slice(start, start + size));
    start += size;
  }
  return ids;
}

/** Create one or many rows, all or nothing (§2.4, §4.6), in a few multi-row INSERTs (§11.5). */
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
      return model.validator.create(withTenant(model, withOwner(model, item, scopes, true), scopes, true));
    } catch (error) {
      if (!(error instanceof ValidationError) || !many) throw error;
      throw new ValidationError(Object.fromEntries(Object.entries(error.fields).map(([k, v]) => [`[${i}].${k}`, v])));
    }
  });
  const rows = await committing(scopes, (emitted) =>
    writeTransaction(db, async (trx, attempt) => {
      await deferForeignKeys(trx);
      const at = now();
      const stored = values.map((v) => ({ ...model.codec.encode(v), created_at: at, updated_at: at }));
      const sent = new Set(items.flatMap((item) => Object.keys(item as Row)));
      const names = nameable(model, scopes, sent);
      const collided = (unwritten: Unwritten) => checkCollided(trx, model, unwritten, values, scopes, sent);
      const ids = await insertRows(trx, attempt, model, stored, collided, names);
      await checkWritten(trx, entity, ids, scopes);
      await checkFieldRules(trx, entity, ids, sent, scopes);
      await checkReferences(trx, model, values, scopes);
      await checkTenantLinks(trx, model, ids, "all", scopes);
      emitted(await emit(trx, model, scopes, "create", ids));
      return readBack(trx, model, ids, scopes.read);
    }),
  );
  return many ? rows : rows[0]!;
}

/** Apply validated `values` to the rows `ids` and check them as written. */
async function apply(
  trx: Db,
  attempt: Attempt,
  model: EntityModel,
  ids: number[],
  values: Row,
  scopes: WriteScopes,
  emitted: (events: MutationEvent[]) => void,
): Promise<Row[]> {
  const entity = model.entity.name;
  await deferForeignKeys(trx);
  // a write rule holds on the rows as they are and as written (§9.4)
  await checkFieldRules(trx, entity, ids, Object.keys(values), scopes);
  const before = scopes.events.active ? await storedRows(trx, model, ids) : undefined;
  const set = { ...model.codec.encode(values), updated_at: now() };
  await write(
    attempt,
    () => trx.updateTable(entity).set(set).where("id", "in", ids).execute(),
    () => checkCollided(trx, model, { ids, set }, [values], scopes, Object.keys(values)),
    nameable(model, scopes, Object.keys(values)),
  );
  // §10.1: every stored value has an IV of its own, so the other rows' encrypted values are sealed again, one
  // statement per row (encrypted fields are never unique: nothing here can collide)
  if (ids.length > 1 && model.codec.resealed(values))
    for (const id of ids.slice(1))
      await trx.updateTable(entity).set(model.codec.resealed(values)!).where("id", "=", id).execute();
  await checkWritten(trx, entity, ids, scopes);
  await checkFieldRules(trx, entity, ids, Object.keys(values), scopes);
  await checkReferences(trx, model, [values], scopes);
  await checkTenantLinks(trx, model, ids, new Set(Object.keys(values)), scopes);
  emitted(await emit(trx, model, scopes, "update", ids, before));
  return readBack(trx, model, ids, scopes.read);
}

/** The whole stored rows (hidden fields too) as event images (encrypted fields stay ciphertext), by id: what mutation events carry. */
async function storedRows(trx: Db, model: EntityModel, ids: number[]): Promise<Map<number, Row>> {
  const rows = await trx.selectFrom(model.entity.name).selectAll().where("id", "in", ids).execute();
  return new Map(rows.map((r) => [Number(r.id), model.codec.image(r)]));
}

/**
 * Give a create's or update's events to the in-transaction listeners (audit, outbox), when there are any:
 * `before` was read ahead of the statement, the rows after it are read now. Returns them for the after-commit
 * ones. Deletes have their own (`emitDelete`).
 */
async function emit(
  trx: Db,
  model: EntityModel,
  scopes: WriteScopes,
  action: "create" | "update",
  ids: number[],
  before?: Map<number, Row>,
): Promise<MutationEvent[]> {
  if (!scopes.events.active || ids.length === 0) return [];
  const after = await storedRows(trx, model, ids);
  const entity = model.entity.name;
  const events = ids.map((id) => ({
    action,
    entity,
    id,
    before: before?.get(id) ?? null,
    after: after.get(id) ?? null,
  }));
  await scopes.events.inTransaction(trx, events, scopes.actor);
  return events;
}

/** What a delete will remove and change, read before its DELETE: its rows, and those its foreign keys reach. */
interface Fallout {
  before: Map<number, Row>;
  reached: Reached;
}

/**
 * `maxBytes` and `path`: a request's byte budget and the part of it naming the rows (undefined for trusted code);
 * what the caller may read of each entity its keys reach is counted apart from the rest (cascade.ts).
 */
async function foreseen(
  trx: Db,
  model: EntityModel,
  ids: number[],
  scopes: WriteScopes,
  maxBytes: number | undefined,
  path: string,
): Promise<Fallout> {
  const read = (m: EntityModel) => readOf(m, scopes.readOf(m.entity.name));
  const bound = maxBytes === undefined ? undefined : { rows: MAX_ROWS_PER_WRITE, bytes: maxBytes, path, read };
  return { before: await storedRows(trx, model, ids), reached: await reach(trx, model, ids, bound) };
}

/**
 * Emit a delete's events: the deleted rows `ids`, then the rows their foreign keys deleted (cascade, level by
 * level) or changed (set null), so a listener hears of every row the statement touched (cascade.ts). The
 * caller's rows come first, in the order they always had; what followed from them after.
 */
async function emitDelete(
  trx: Db,
  model: EntityModel,
  scopes: WriteScopes,
  ids: number[],
  fallout: Fallout | undefined,
): Promise<MutationEvent[]> {
  if (!fallout) return [];
  const events: MutationEvent[] = ids.map((id) => ({
    action: "delete",
    entity: model.entity.name,
    id,
    before: fallout.before.get(id) ?? null,
    after: null,
  }));
  events.push(...(await reachedEvents(trx, fallout.reached)));
  await scopes.events.inTransaction(trx, events, scopes.actor);
  return events;
}

/** Run a write whose transaction emits mutation events; the after-commit listeners hear of them once it commits. */
async function committing<T>(
  scopes: WriteScopes,
  run: (emitted: (events: MutationEvent[]) => void) => Promise<T>,
): Promise<T> {
  let events: MutationEvent[] = [];
  const result = await run((e) => {
    events = e;
  });
  scopes.events.committed(events, scopes.actor);
  return result;
}

/** Validate an update body: an object naming only fields the caller may write. */
function updateValues(model: EntityModel, input: unknown, scopes: WriteScopes, what: string): Row {
  if (!isObject(input)) throw new BadRequestError(`${what}expected a JSON object`);
  checkWritableFields(input, scopes, model.entity.name);
  return model.validator.update(withTenant(model, withOwner(model, input, scopes, false), scopes, false));
}

/** `maxBytes`: the request's byte budget (§2.3), over the row it answers; undefined for a trusted write. */
export async function updateOne(
  db: Db,
  model: EntityModel,
  id: number,
  input: unknown,
  scopes: WriteScopes,
  maxBytes?: number,
): Promise<Row> {
  const values = updateValues(model, input, scopes, "");
  return committing(scopes, (emitted) =>
    writeTransaction(db, async (trx, attempt) => {
      await locate(trx, model.entity.name, id, scopes);
      await checkBudget(trx, model, scopes, [id], values, maxBytes, "id");
      return (await apply(trx, attempt, model, [id], values, scopes, emitted))[0]!;
    }),
  );
}

/** `maxBytes`: the request's byte budget (§2.3), over the rows the write reaches; undefined for a trusted write. */
export async function updateMany(
  db: Db,
  model: EntityModel,
  where: Filter,
  input: unknown,
  scopes: WriteScopes,
  maxBytes?: number,
): Promise<Row[]> {
  const values = updateValues(model, input, scopes, "update: ");
  return committing(scopes, (emitted) =>
    writeTransaction(db, async (trx, attempt) => {
      const ids = await targets(trx, model.entity.name, where, scopes);
      await checkBudget(trx, model, scopes, ids, values, maxBytes, "where");
      return ids.length === 0 ? [] : apply(trx, attempt, model, ids, values, scopes, emitted);
    }),
  );
}

/** `maxBytes`: the request's byte budget (§2.3), over the row it answers; undefined for a trusted delete. */
export async function deleteOne(
  db: Db,
  model: EntityModel,
  id: number,
  scopes: WriteScopes,
  maxBytes?: number,
): Promise<Row> {
  const entity = model.entity.name;
  return committing(scopes, (emitted) =>
    inTransaction(db, async (trx) => {
      await locate(trx, entity, id, scopes);
      await checkBudget(trx, model, scopes, [id], {}, maxBytes, "id");
      const [row] = await readBack(trx, model, [id], scopes.read);
      const fallout = scopes.events.active ? await foreseen(trx, model, [id], scopes, maxBytes, "id") : undefined;
      await trx.deleteFrom(entity).where("id", "=", id).execute();
      emitted(await emitDelete(trx, model, scopes, [id], fallout));
      return row!;
    }),
  );
}

/** `maxBytes`: the request's byte budget (§2.3), over the rows the delete reaches; undefined for a trusted one. */
export async function deleteMany(
  db: Db,
  model: EntityModel,
  where: Filter,
  scopes: WriteScopes,
  maxBytes?: number,
): Promise<Row[]> {
  const entity = model.entity.name;
  return committing(scopes, (emitted) =>
    inTransaction(db, async (trx) => {
      const ids = await targets(trx, entity, where, scopes);
      if (ids.length === 0) return [];
      await checkBudget(trx, model, scopes, ids, {}, maxBytes, "where");
      const rows = await readBack(trx, model, ids, scopes.read);
      const fallout = scopes.events.active ? await foreseen(trx, model, ids, scopes, maxBytes, "where") : undefined;
      const deleted = await trx.deleteFrom(entity).where("id", "in", ids).returning("id").execute();
      // the rows the statement removed (on an engine without row locks a concurrent delete may have taken some)
      const removed = deleted.map((r) => Number(r.id));
      emitted(await emitDelete(trx, model, scopes, removed, fallout));
      return rows;
    }),
  );
}
