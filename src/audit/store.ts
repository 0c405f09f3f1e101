/**
 * The audit trail's tables (§7.3): `citadel_audit` (append-only: triggers refuse UPDATE and DELETE on every
 * engine), its chain head `citadel_audit_head` (one row: the last id and hash), and the pruning marker whose
 * row, present only inside `prune`'s transaction, lets DELETE through. Appending updates the head first, so
 * the head row's lock orders concurrent writers from several servers into one chain.
 */
import { sql } from "kysely";
import { chunkSizes } from "../data/writes.js";
import { type Db, dialectOf } from "../db/connection.js";
import { retryBusy } from "../db/dialect-driver.js";
import {
  type AuditActor,
  type AuditEntry,
  type AuditInput,
  type Changes,
  canonical,
  entryHash,
  GENESIS,
  hashedText,
  sha256Hex,
} from "./entry.js";
import { Prepared } from "./prepared.js";

export const AUDIT_TABLE = "citadel_audit";
const HEAD_TABLE = "citadel_audit_head";
const PRUNING_TABLE = "citadel_audit_pruning";
/** Rows per INSERT at most: 13 values each, 6,656 in all, well inside every engine's bind limit. */
const CHUNK = 512;

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
    account_id: nullableNumber(row.account_id),
    actor: json<AuditActor>(row.actor)!,
    request_id: row.request_id ?? null,
    changes: json<Changes>(row.changes),
    reason: row.reason ?? null,
    policy_hash: String(row.policy_hash),
    prev_hash: String(row.prev_hash),
    hash: String(row.hash),
  };
}

/** The columns of `citadel_audit`, in the order an INSERT lists them. */
export const COLUMNS = [
  "id",
  "at",
  "action",
  "entity",
  "row_id",
  "account_id",
  "actor",
  "request_id",
  "changes",
  "reason",
  "policy_hash",
  "prev_hash",
  "hash",
] as const;

/**
 * Take the head row (its lock orders writers) and reserve ids; return the head's seq after and its hash. When
 * the head is still `(seq, hash)` as this database's last append left it, the entries chained after that are
 * right, and the same statement leaves their last hash on the head; otherwise the hash stays (the head's before).
 */
const reserve = new Prepared((db, value) =>
  db
    .updateTable(HEAD_TABLE)
    .set({
      seq: sql`seq + ${value(0)}`,
      hash: sql`case when seq = ${value(1)} and hash = ${value(2)} then ${value(3)} else hash end`,
    })
    .where("id", "=", 1)
    .returning(["seq", "hash"]),
);

/** Leave the chain's last hash on the head. */
const advance = new Prepared((db, value) =>
  db
    .updateTable(HEAD_TABLE)
    .set({ hash: value(0) })
    .where("id", "=", 1),
);

/** INSERTs of 1, 2, 4, … rows, made when first needed: a few statement shapes, not one per batch size. */
const inserts: Prepared[] = [];
function insertOf(rows: number): Prepared {
  const log = Math.log2(rows);
  inserts[log] ??= new Prepared((db, value) =>
    db
      .insertInto(AUDIT_TABLE)
      .values(
        Array.from({ length: rows }, (_, r) =>
          Object.fromEntries(COLUMNS.map((c, i) => [c, value(r * COLUMNS.length + i)])),
        ),
      ),
  );
  return inserts[log]!;
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
      // SQLite's `integer primary key` is the rowid, with no index of its own to write (PostgreSQL's is bigint)
      .addColumn("id", dialect.columnType("integer"), (c) => c.primaryKey())
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
    // only tenants' entries are looked up by account: an entry without one writes no index page
    await trx.schema
      .createIndex("idx_citadel_audit_account_id")
      .ifNotExists()
      .on(AUDIT_TABLE)
      .column("account_id")
      .where("account_id", "is not", null)
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

/** Entries chained after a head, their INSERT values (COLUMNS order) and the last one's hash. */
interface Chained {
  entries: AuditEntry[];
  values: unknown[];
  last: string;
}

/** The entries `inputs` make after the entry `seq` whose hash is `prev`. */
async function chain(
  inputs: AuditInput[],
  policyHash: string,
  seq: number,
  prev: string,
  at: string,
): Promise<Chained> {
  const entries: AuditEntry[] = [];
  const values: unknown[] = [];
  // the actor is usually the same for every entry of a call: made canonical once
  let actor: AuditActor | undefined;
  let actorText = "";
  let id = seq;
  for (const input of inputs) {
    id += 1;
    if (input.actor !== actor) {
      actor = input.actor;
      actorText = canonical(actor);
    }
    const unhashed = {
      id,
      at,
      action: input.action,
      entity: input.entity ?? null,
      row_id: input.row_id ?? null,
      account_id: input.account_id !== undefined ? input.account_id : (input.actor.account_id ?? null),
      actor: input.actor,
      request_id: input.request_id ?? null,
      changes: input.changes ?? null,
      reason: input.reason ?? null,
      policy_hash: policyHash,
      prev_hash: prev,
    };
    const changesText = canonical(unhashed.changes);
    const hash = await sha256Hex(hashedText(unhashed, actorText, changesText));
    entries.push({ ...unhashed, hash });
    values.push(
      id,
      at,
      unhashed.action,
      unhashed.entity,
      unhashed.row_id,
      unhashed.account_id,
      actorText,
      unhashed.request_id,
      unhashed.changes === null ? null : changesText,
      unhashed.reason,
      policyHash,
      prev,
      hash,
    );
    prev = hash;
  }
  return { entries, values, last: prev };
}

/** The head each database (its Kysely adapter, shared by its transactions) was left with by its last append here. */
const heads = new WeakMap<object, { seq: number; hash: string }>();

/**
 * Append entries to the chain inside `trx` (a mutation's own transaction, or one of their own). Updating the
 * head row first serializes every writer: the next one reads the head this one leaves.
 *
 * Two statements when no other writer appended since this database's last append here (one server, as a
 * rule): the entries are chained after the head as that append left it, and the head's UPDATE checks that
 * it still is and leaves their last hash; then the INSERT. Otherwise the UPDATE reserved ids after the head
 * as it is, the entries are chained after that, and a third statement leaves their last hash. Stamped after
 * the last append here, or once the head is held: times ascend with ids across writers either way.
 */
export async function appendEntries(
  trx: Db,
  inputs: AuditInput[],
  policyHash: string,
  time?: string,
): Promise<AuditEntry[]> {
  if (inputs.length === 0) return [];
  const n = inputs.length;
  const database = trx.getExecutor().adapter;
  const known = heads.get(database);
  const now = () => time ?? new Date().toISOString();
  const hoped = known && (await chain(inputs, policyHash, known.seq, known.hash, now()));
  const { rows } = await reserve.run<{ seq: number | string; hash: string }>(trx, [
    n,
    known?.seq ?? -1,
    known?.hash ?? "",
    hoped?.last ?? "",
  ]);
  const head = rows[0];
  if (!head) throw new Error(`${HEAD_TABLE} has no row: the audit trail was not installed`);
  const seq = Number(head.seq);
  const held = hoped !== undefined && seq === known!.seq + n && head.hash === hoped.last;
  const chained = held ? hoped : await chain(inputs, policyHash, seq - n, String(head.hash), now());
  let start = 0;
  // powers of two, largest first, none above CHUNK: the statement shapes insertOf compiles
  for (const size of chunkSizes(n, CHUNK)) {
    await insertOf(size).run(trx, chained.values.slice(start * COLUMNS.length, (start + size) * COLUMNS.length));
    start += size;
  }
  if (!held) await advance.run(trx, [chained.last]);
  heads.set(database, { seq, hash: chained.last });
  return chained.entries;
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

/**
 * The hash an `audit.prune` entry recorded for the last entry it removed, `id`; undefined if none did. Only a
 * receipt within the chain being checked counts, from the first remaining entry to the head: the walk checks
 * each of those, so a receipt planted beyond the head or altered fails the check with the rest.
 */
async function prunedThrough(db: Db, id: number, lastId: number): Promise<string | undefined> {
  const rows = await db
    .selectFrom(AUDIT_TABLE)
    .select("changes")
    .where("action", "=", "audit.prune")
    .where("row_id", "=", id)
    .where("id", ">", id)
    .where("id", "<=", lastId)
    .execute();
  return rows.map((r) => json<Changes>(r.changes)?.hash?.[0]).find((h): h is string => typeof h === "string");
}

/**
 * The first entry beyond the chain's head: one written by hand (appending moves the head in the entry's own
 * transaction). The head is read in the same statement, so an entry appended since the walk began is not taken
 * for one.
 */
async function beyondHead(db: Db): Promise<number | undefined> {
  const row = await db
    .selectFrom(AUDIT_TABLE)
    .select("id")
    .where("id", ">", db.selectFrom(HEAD_TABLE).select("seq").where("id", "=", 1))
    .orderBy("id")
    .limit(1)
    .executeTakeFirst();
  return row ? Number(row.id) : undefined;
}

/**
 * Check the chain up to its head, in id order, a page at a time; name the first entry that breaks it. The head
 * is read first: entries appended while the check runs lie beyond it and are left for the next check, but an
 * entry beyond the head as it is at the end was never chained (listed by the API all the same): a break. A
 * chain whose start is gone must start where an `audit.prune` entry within it says it removed entries up to.
 */
export async function verifyChain(db: Db, pageSize = 1000): Promise<Verification> {
  const head = await db.selectFrom(HEAD_TABLE).select(["seq", "hash"]).where("id", "=", 1).executeTakeFirst();
  const lastId = Number(head?.seq ?? 0);
  let expectedId: number | undefined;
  let prev = GENESIS;
  let count = 0;
  let prunedBefore: number | undefined;
  const broken = (id: number, problem: string): Verification => ({
    ok: false,
    entries: count,
    broken: { id, problem },
    prunedBefore,
  });
  for (;;) {
    let query = db.selectFrom(AUDIT_TABLE).selectAll().where("id", "<=", lastId).orderBy("id").limit(pageSize);
    if (expectedId !== undefined) query = query.where("id", ">=", expectedId);
    const rows = await query.execute();
    for (const row of rows) {
      const entry = decodeEntry(row);
      if (expectedId === undefined && entry.id !== 1) {
        prunedBefore = entry.id;
        if ((await prunedThrough(db, entry.id - 1, lastId)) !== entry.prev_hash)
          return broken(entry.id - 1, "is missing (removed without `citadel audit prune`)");
        prev = entry.prev_hash;
      } else if (expectedId !== undefined && entry.id !== expectedId) return broken(expectedId, "is missing");
      if (entry.prev_hash !== prev) return broken(entry.id, "does not follow the entry before it");
      const { hash, ...unhashed } = entry;
      if ((await entryHash(unhashed)) !== hash) return broken(entry.id, "was altered");
      prev = hash;
      expectedId = entry.id + 1;
      count += 1;
    }
    if (rows.length < pageSize) break;
  }
  const last = (expectedId ?? 1) - 1;
  if (count === 0 && lastId > 0) return broken(lastId, "is missing (the trail is empty)");
  if (last !== lastId) return broken(last + 1, "is missing (entries after it were removed)");
  if (count > 0 && head?.hash !== prev) return broken(lastId, "does not match the chain's head");
  const forged = await beyondHead(db);
  if (forged !== undefined) return broken(forged, "lies beyond the chain's head");
  return { ok: true, entries: count, prunedBefore };
}

/**
 * Remove the entries older than `before` (a prefix of the chain, so what remains is still one chain), inside
 * one transaction that lets DELETE through only while it runs; returns how many went.
 */
export async function pruneBefore(
  db: Db,
  before: string,
  record: (trx: Db, removed: number, last: { id: number; hash: string } | undefined) => Promise<void>,
): Promise<number> {
  // a server writing at the same moment makes SQLite answer busy: the whole prune runs again (it applied nothing)
  return retryBusy(() =>
    db.transaction().execute(async (trx) => {
      const newest = await trx
        .selectFrom(AUDIT_TABLE)
        .select((eb) => eb.fn.max("id").as("id"))
        .where("at", "<", before)
        .executeTakeFirst();
      const lastId = nullableNumber(newest?.id);
      let removed = 0;
      let last: { id: number; hash: string } | undefined;
      if (lastId !== null) {
        const row = await trx.selectFrom(AUDIT_TABLE).select("hash").where("id", "=", lastId).executeTakeFirstOrThrow();
        last = { id: lastId, hash: String(row.hash) };
        await trx.insertInto(PRUNING_TABLE).values({ id: 1 }).execute();
        const result = await trx.deleteFrom(AUDIT_TABLE).where("id", "<=", lastId).executeTakeFirst();
        removed = Number(result.numDeletedRows);
        await trx.deleteFrom(PRUNING_TABLE).execute();
      }
      await record(trx, removed, last);
      return removed;
    }),
  );
}
