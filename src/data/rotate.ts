/**
 * Key rotation (§10.2): every encrypted value not under the current key (and every blind index entry not made
 * with it) is sealed again under the current key, in batches of rows, each batch in a transaction of its own.
 * Values already under the current key are decrypted to check them and never written: a run lists every value
 * that cannot be decrypted, whatever its key. Resumable by construction: a rerun rewrites only what is still
 * under another key. Nothing is lost when it is interrupted: a batch commits whole or not at all, and each value
 * is replaced by a ciphertext of the same plaintext only if it still holds what was read (a write of a server
 * running beside it wins, and is already under the current key). Rotation changes no data: no updated_at, audit
 * entry or change-feed event.
 */
import { type Expression, type SqlBool, sql } from "kysely";
import type { Db } from "../db/connection.js";
import type { CompiledEntity, CompiledField } from "../schema/compiled.js";
import { type Keyring, keyIdOf, PREFIX } from "./keyring.js";
import type { Models } from "./models.js";
import { inTransaction } from "./writes.js";

export interface RotateProgress {
  entity: string;
  /** rows of this entity examined so far, of `total` holding an encrypted value when it began */
  done: number;
  total: number;
}

export interface RotateFailure {
  entity: string;
  field: string;
  id: number;
  reason: string;
}

export interface RotateOptions {
  /** rows per transaction (default 500) */
  batchSize?: number;
  /** a pause between batches (ms), to spare a busy database */
  pauseMs?: number;
  /** values stored as plaintext (the field was encrypted after they were written) are encrypted too */
  encryptPlaintext?: boolean;
  onProgress?: (progress: RotateProgress) => void;
}

export interface RotateResult {
  /** the key everything is now under */
  key: string | undefined;
  /** values sealed again (a blind index entry rewritten alone counts as its value) */
  rotated: number;
  /** values left as they were, under any key: they could not be decrypted (tampered, or under a key no longer held) */
  failed: RotateFailure[];
}

interface Column {
  field: CompiledField;
  keyring: Keyring;
  index?: string;
}

function encryptedColumns(entity: CompiledEntity): Column[] {
  const columns: Column[] = [];
  for (const field of entity.fields.values())
    if (field.encrypted?.keyring)
      columns.push({ field, keyring: field.encrypted.keyring, index: field.encrypted.index });
  return columns;
}

/** The columns a batch reads: each encrypted field's, and its blind index's. */
const storedColumns = (columns: Column[]) =>
  columns.flatMap((c) => (c.index ? [c.field.name, c.index] : [c.field.name]));

// biome-ignore lint/suspicious/noExplicitAny: tables are only known at runtime
type AnyDb = Db & { selectFrom(table: string): any };

/** Rows whose value or blind index entry is not under the current key (`substr`: a key id may hold `_`, a LIKE wildcard). */
function stale(columns: Column[]): Expression<SqlBool> {
  const parts = columns.map(({ field, keyring, index }) => {
    const current = `${PREFIX}${keyring.current}:`;
    const value = sql`(${sql.ref(field.name)} is not null and substr(${sql.ref(field.name)}, 1, ${current.length}) <> ${current})`;
    if (!index) return value;
    const digest = `${keyring.current}:`;
    return sql`(${value} or (${sql.ref(field.name)} is not null and (${sql.ref(index)} is null or substr(${sql.ref(index)}, 1, ${digest.length}) <> ${digest})))`;
  });
  return sql<SqlBool>`(${sql.join(parts, sql` or `)})`;
}

/** Rows holding a value of any encrypted field: every one is met, to check the values under the current key too. */
function holding(columns: Column[]): Expression<SqlBool> {
  return sql<SqlBool>`(${sql.join(
    columns.map(({ field }) => sql`${sql.ref(field.name)} is not null`),
    sql` or `,
  )})`;
}

/** `stale` for one value of a row read: it, or its blind index entry, is under another key. */
function needsRotation({ field, keyring, index }: Column, row: Record<string, unknown>): boolean {
  const stored = row[field.name];
  if (typeof stored !== "string") return false;
  if (keyIdOf(stored) !== keyring.current) return true;
  if (index === undefined) return false;
  const entry = row[index];
  return !(typeof entry === "string" && entry.startsWith(`${keyring.current}:`));
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Decrypt a stored value of `column` (under its context or its earlier name's), or say why not. */
function plaintextOf(
  column: Column,
  stored: string,
  encryptPlaintext: boolean,
): { plain: string } | { reason: string } {
  const { keyring, field } = column;
  if (keyIdOf(stored) === undefined)
    return encryptPlaintext ? { plain: stored } : { reason: "not an encrypted value (see --encrypt-plaintext)" };
  const { context, previous } = field.encrypted!;
  let reason = "";
  for (const at of previous ? [context, previous] : [context])
    try {
      return { plain: keyring.open(stored, at) };
    } catch (error) {
      reason ||= error instanceof Error ? error.message : String(error);
    }
  return { reason };
}

/** Rotate one batch of rows (by id) in one transaction; returns the values sealed again. */
async function rotateBatch(
  db: Db,
  entity: CompiledEntity,
  columns: Column[],
  ids: number[],
  options: RotateOptions,
  failed: RotateFailure[],
): Promise<number> {
  return inTransaction(db, async (trx) => {
    const rows: Record<string, unknown>[] = await (trx as AnyDb)
      .selectFrom(entity.name)
      .select(["id", ...storedColumns(columns)])
      .where("id", "in", ids)
      .where(stale(columns))
      .execute();
    let rotated = 0;
    for (const row of rows) {
      const set: Record<string, unknown> = {};
      const unchanged: [string, unknown][] = [];
      for (const column of columns) {
        const { field, keyring, index } = column;
        const stored = row[field.name];
        if (typeof stored !== "string" || !needsRotation(column, row)) continue;
        const opened = plaintextOf(column, stored, options.encryptPlaintext === true);
        if ("reason" in opened) {
          failed.push({ entity: entity.name, field: field.name, id: Number(row.id), reason: opened.reason });
          continue;
        }
        const context = field.encrypted!.context;
        set[field.name] = keyring.seal(opened.plain, context);
        if (index) set[index] = keyring.digest(opened.plain, context);
        unchanged.push([field.name, stored]);
        rotated++;
      }
      if (unchanged.length === 0) continue;
      let update = trx.updateTable(entity.name).set(set).where("id", "=", Number(row.id));
      // only over what was read: a value a running server wrote meanwhile is already under the current key
      for (const [name, value] of unchanged) update = update.where(name, "=", value);
      await update.execute();
    }
    return rotated;
  });
}

/** Decrypt the values of a row already under the current key, writing nothing: one that fails is listed. */
function checkCurrent(
  entity: CompiledEntity,
  columns: Column[],
  row: Record<string, unknown>,
  failed: RotateFailure[],
) {
  for (const column of columns) {
    const stored = row[column.field.name];
    if (typeof stored !== "string" || needsRotation(column, row)) continue;
    const opened = plaintextOf(column, stored, false);
    if ("reason" in opened)
      failed.push({ entity: entity.name, field: column.field.name, id: Number(row.id), reason: opened.reason });
  }
}

/** Re-encrypt every value of every encrypted field under the current key (§10.2). */
export async function rotateKeys(db: Db, models: Models, options: RotateOptions = {}): Promise<RotateResult> {
  const batchSize = options.batchSize ?? 500;
  const failed: RotateFailure[] = [];
  let rotated = 0;
  let key: string | undefined;
  for (const model of models.values()) {
    const entity = model.entity;
    const columns = encryptedColumns(entity);
    if (columns.length === 0) continue;
    key = columns[0]!.keyring.current;
    const counted = await (db as AnyDb)
      .selectFrom(entity.name)
      .select(sql<number>`count(*)`.as("n"))
      .where(holding(columns))
      .executeTakeFirst();
    const total = Number(counted?.n ?? 0);
    let done = 0;
    let after = 0;
    options.onProgress?.({ entity: entity.name, done, total });
    for (;;) {
      // ids past the last batch: each row is met once (a value that cannot be decrypted is listed once, left as it is)
      const batch: Record<string, unknown>[] = await (db as AnyDb)
        .selectFrom(entity.name)
        .select(["id", ...storedColumns(columns)])
        .where("id", ">", after)
        .where(holding(columns))
        .orderBy("id")
        .limit(batchSize)
        .execute();
      if (batch.length === 0) break;
      // read outside a transaction: only the rows that need sealing again take one (and are read again in it)
      const toSeal: number[] = [];
      const listed = failed.length;
      for (const row of batch) {
        checkCurrent(entity, columns, row, failed);
        if (columns.some((column) => needsRotation(column, row))) toSeal.push(Number(row.id));
      }
      if (toSeal.length > 0) rotated += await rotateBatch(db, entity, columns, toSeal, options, failed);
      // in row order: the failures checked above came before those the transaction met
      failed.push(...failed.splice(listed).sort((a, b) => a.id - b.id));
      after = Number(batch.at(-1)!.id);
      done = Math.min(total, done + batch.length);
      options.onProgress?.({ entity: entity.name, done, total: Math.max(total, done) });
      if (options.pauseMs) await pause(options.pauseMs);
    }
  }
  return { key, rotated, failed };
}
