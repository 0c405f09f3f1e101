/**
 * Key rotation (§10.2): every encrypted value not under the current key (and every blind index entry not made
 * with it) is sealed again under the current key, in batches of rows, each batch in a transaction of its own.
 * Resumable by construction: a rerun selects only what is still under another key. Nothing is lost when it is
 * interrupted: a batch commits whole or not at all, and each value is replaced by a ciphertext of the same
 * plaintext only if it still holds what was read (a write of a server running beside it wins, and is already
 * under the current key). Rotation changes no data: no updated_at, audit entry or change-feed event.
 */
import { type Expression, type SqlBool, sql } from "kysely";
import type { Db } from "../db/connection.js";
import type { CompiledEntity, CompiledField } from "../schema/compiled.js";
import { type Keyring, keyIdOf, PREFIX } from "./keyring.js";
import type { Models } from "./models.js";
import { inTransaction } from "./writes.js";

export interface RotateProgress {
  entity: string;
  /** rows of this entity examined so far, of `total` found under another key when it began */
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
  /** values left as they were: they could not be decrypted (tampered, or under a key no longer held) */
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
  const names = columns.flatMap((c) => (c.index ? [c.field.name, c.index] : [c.field.name]));
  return inTransaction(db, async (trx) => {
    const rows: Record<string, unknown>[] = await (trx as AnyDb)
      .selectFrom(entity.name)
      .select(["id", ...names])
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
        if (typeof stored !== "string") continue;
        const current = keyIdOf(stored) === keyring.current;
        const indexCurrent =
          !index || (typeof row[index] === "string" && (row[index] as string).startsWith(`${keyring.current}:`));
        if (current && indexCurrent) continue;
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
      .where(stale(columns))
      .executeTakeFirst();
    const total = Number(counted?.n ?? 0);
    let done = 0;
    let after = 0;
    options.onProgress?.({ entity: entity.name, done, total });
    for (;;) {
      // ids past the last batch: a value that cannot be decrypted stays under its key without being met again
      const batch: { id: unknown }[] = await (db as AnyDb)
        .selectFrom(entity.name)
        .select("id")
        .where("id", ">", after)
        .where(stale(columns))
        .orderBy("id")
        .limit(batchSize)
        .execute();
      if (batch.length === 0) break;
      const ids = batch.map((r) => Number(r.id));
      rotated += await rotateBatch(db, entity, columns, ids, options, failed);
      after = ids.at(-1)!;
      done = Math.min(total, done + ids.length);
      options.onProgress?.({ entity: entity.name, done, total: Math.max(total, done) });
      if (options.pauseMs) await pause(options.pauseMs);
    }
  }
  return { key, rotated, failed };
}
