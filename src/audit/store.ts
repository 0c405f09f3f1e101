/**
 * The audit trail's tables (§7.3): `citadel_audit` (append-only: triggers refuse UPDATE and DELETE on every
 * engine), its chain head `citadel_audit_head` (one row: the last id and hash), and the pruning marker whose
 * row, present only inside `prune`'s transaction, lets DELETE through. Appending updates the head first, so
 * the head row's lock orders concurrent writers from several servers into one chain.
 */
import { sql } from "kysely";
import { type Db, dialectOf } from "../db/connection.js";
import {
  type AuditActor,
  type AuditEntry,
  type AuditInput,
  type Changes,
  canonical,
  entryHash,
  GENESIS,
} from "./entry.js";

export const AUDIT_TABLE = "citadel_audit";
const HEAD_TABLE = "citadel_audit_head";
const PRUNING_TABLE = "citadel_audit_pruning";
/** Rows per INSERT: 11 values each, well inside every engine's bind limit. */
const CHUNK = 500;

// biome-ignore lint/suspicious/noExplicitAny: rows as the driver returns them
type RawRow = Record<string, any>;

const json = <T>(text: unknown): T | null => (typeof text === "string" ? (JSON.parse(text) as T) : null);
const nullableNumber = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/** An entry as stored → as shown. */
export function decodeEntry(row: RawRow): AuditEntry {
  return {
    id: Number(row.id),
    at: String(row.at),
    action: row.action,
    entity: row.entity ?? null,
    row_id: nullableNumber(row.row_id),
    actor: json<AuditActor>(row.actor)!,
    request_id: row.request_id ?? null,
    changes: json<Changes>(row.changes),
    reason: row.reason ?? null,
    policy_hash: String(row.policy_hash),
    prev_hash: String(row.prev_hash),
    hash: String(row.hash),
  };
}

function encodeEntry(entry: AuditEntry): RawRow {
  return {
    ...entry,
    account_id: entry.actor.account_id,
    actor: canonical(entry.actor),
    changes: entry.changes === null ? null : canonical(entry.changes),
  };
}

/** Create the tables and triggers unless they exist, under the schema lock (servers may start together). */
export async function installAudit(db: Db): Promise<void> {
  const dialect = dialectOf(db);
  await db.transaction().execute(async (trx) => {
    await dialect.lockSchema(trx);
    // text compares by code point on every engine, as the data tables' (sorting entries by action, reason)
    const text = (c: Parameters<typeof dialect.column>[1]) => dialect.column("text", c);
    await trx.schema
      .createTable(AUDIT_TABLE)
      .ifNotExists()
      .addColumn("id", "bigint", (c) => c.primaryKey())
      .addColumn("at", "text", (c) => text(c).notNull())
      .addColumn("action", "text", (c) => text(c).notNull())
      .addColumn("entity", "text", text)
      .addColumn("row_id", "bigint")
      .addColumn("account_id", "bigint")
      .addColumn("actor", "text", (c) => c.notNull())
      .addColumn("request_id", "text", text)
      .addColumn("changes", "text")
      .addColumn("reason", "text", text)
      .addColumn("policy_hash", "text", (c) => c.notNull())
      .addColumn("prev_hash", "text", (c) => c.notNull())
      .addColumn("hash", "text", (c) => c.notNull())
      .execute();
    await trx.schema
      .createIndex("idx_citadel_audit_account_id")
      .ifNotExists()
      .on(AUDIT_TABLE)
      .column("account_id")
      .execute();
    await trx.schema
      .createTable(HEAD_TABLE)
      .ifNotExists()
      .addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("seq", "bigint", (c) => c.notNull())
      .addColumn("hash", "text", (c) => c.notNull())
      .execute();
    await trx.schema.createTable(PRUNING_TABLE).ifNotExists().addColumn("id", "integer").execute();
    await trx
      .insertInto(HEAD_TABLE)
      .values({ id: 1, seq: 0, hash: GENESIS })
      .onConflict((oc) => oc.column("id").doNothing())
      .execute();
    const trigger = {
      name: "citadel_audit_append_only",
      table: AUDIT_TABLE,
      unless: PRUNING_TABLE,
      message: "the audit trail is append-only (citadel audit prune removes old entries)",
    };
    for (const statement of dialect.appendOnlyTrigger(trigger)) await statement.execute(trx);
  });
}

/**
 * Append entries to the chain inside `trx` (a mutation's own transaction, or one of their own). Taking the
 * head row first serializes every writer: the next one reads the head this one leaves.
 */
export async function appendEntries(
  trx: Db,
  inputs: AuditInput[],
  policyHash: string,
  at: string,
): Promise<AuditEntry[]> {
  if (inputs.length === 0) return [];
  const head = await trx
    .updateTable(HEAD_TABLE)
    .set({ seq: sql`seq + ${inputs.length}` })
    .where("id", "=", 1)
    .returning(["seq", "hash"])
    .executeTakeFirstOrThrow();
  let id = Number(head.seq) - inputs.length;
  let prev = String(head.hash);
  const entries: AuditEntry[] = [];
  for (const input of inputs) {
    id += 1;
    const unhashed = {
      id,
      at,
      action: input.action,
      entity: input.entity ?? null,
      row_id: input.row_id ?? null,
      actor: input.actor,
      request_id: input.request_id ?? null,
      changes: input.changes ?? null,
      reason: input.reason ?? null,
      policy_hash: policyHash,
      prev_hash: prev,
    };
    const entry = { ...unhashed, hash: await entryHash(unhashed) };
    entries.push(entry);
    prev = entry.hash;
  }
  for (let i = 0; i < entries.length; i += CHUNK)
    await trx
      .insertInto(AUDIT_TABLE)
      .values(entries.slice(i, i + CHUNK).map(encodeEntry))
      .execute();
  await trx.updateTable(HEAD_TABLE).set({ hash: prev }).where("id", "=", 1).execute();
  return entries;
}

export interface Verification {
  ok: boolean;
  /** entries checked */
  entries: number;
  /** the first entry that breaks the chain, and how */
  broken?: { id: number; problem: string };
  /** the chain starts after pruned entries at this id */
  prunedBefore?: number;
}

/** Check the whole chain, in id order, a page at a time; name the first entry that breaks it. */
export async function verifyChain(db: Db, pageSize = 1000): Promise<Verification> {
  let expectedId: number | undefined;
  let prev: string | undefined;
  let count = 0;
  let prunedBefore: number | undefined;
  for (;;) {
    let query = db.selectFrom(AUDIT_TABLE).selectAll().orderBy("id").limit(pageSize);
    if (expectedId !== undefined) query = query.where("id", ">=", expectedId);
    const rows = await query.execute();
    for (const row of rows) {
      const entry = decodeEntry(row);
      if (expectedId === undefined) {
        // a chain whose start was pruned begins at its first remaining entry's own prev_hash
        if (entry.id !== 1) prunedBefore = entry.id;
        prev = entry.id === 1 ? GENESIS : entry.prev_hash;
      } else if (entry.id !== expectedId)
        return { ok: false, entries: count, broken: { id: expectedId, problem: "is missing" }, prunedBefore };
      if (entry.prev_hash !== prev)
        return {
          ok: false,
          entries: count,
          broken: { id: entry.id, problem: "does not follow the entry before it" },
          prunedBefore,
        };
      const { hash, ...unhashed } = entry;
      if ((await entryHash(unhashed)) !== hash)
        return { ok: false, entries: count, broken: { id: entry.id, problem: "was altered" }, prunedBefore };
      prev = hash;
      expectedId = entry.id + 1;
      count += 1;
    }
    if (rows.length < pageSize) break;
  }
  const head = await db.selectFrom(HEAD_TABLE).select(["seq", "hash"]).where("id", "=", 1).executeTakeFirst();
  const last = (expectedId ?? 1) - 1;
  if (head && count > 0 && (Number(head.seq) !== last || head.hash !== prev))
    return {
      ok: false,
      entries: count,
      broken: { id: last + 1, problem: "is missing (entries after it were removed)" },
      prunedBefore,
    };
  if (head && count === 0 && Number(head.seq) > 0)
    return { ok: false, entries: 0, broken: { id: Number(head.seq), problem: "is missing (the trail is empty)" } };
  return { ok: true, entries: count, prunedBefore };
}

/**
 * Remove the entries older than `before` (a prefix of the chain, so what remains is still one chain), inside
 * one transaction that lets DELETE through only while it runs; returns how many went.
 */
export async function pruneBefore(
  db: Db,
  before: string,
  record: (trx: Db, removed: number, lastId: number | null) => Promise<void>,
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const last = await trx
      .selectFrom(AUDIT_TABLE)
      .select((eb) => eb.fn.max("id").as("id"))
      .where("at", "<", before)
      .executeTakeFirst();
    const lastId = nullableNumber(last?.id);
    let removed = 0;
    if (lastId !== null) {
      await trx.insertInto(PRUNING_TABLE).values({ id: 1 }).execute();
      const result = await trx.deleteFrom(AUDIT_TABLE).where("id", "<=", lastId).executeTakeFirst();
      removed = Number(result.numDeletedRows);
      await trx.deleteFrom(PRUNING_TABLE).execute();
    }
    await record(trx, removed, lastId);
    return removed;
  });
}
