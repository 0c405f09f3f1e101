/**
 * The outbox (§8.1): every committed mutation, appended in its own transaction with a sequence number.
 * Appending reserves the numbers by updating the one head row first: on PostgreSQL its row lock is held to
 * the commit, so numbers are handed out in commit order and without gaps (a rolled-back transaction gives its
 * numbers back). A reader that has seen sequence n has seen every event up to n, whichever server wrote it.
 */
import { sql } from "kysely";
import type { Row } from "../data/codec.js";
import type { MutationEvent } from "../data/events.js";
import { type Db, dialectOf } from "../db/connection.js";

export const OUTBOX_TABLE = "citadel_outbox";
const HEAD_TABLE = "citadel_outbox_head";
/** Rows per INSERT: 8 values each, well inside every engine's bind limit. */
const CHUNK = 500;
/** Never copied into the outbox: credentials are no event's business (a filter on them sees NULL). */
const CREDENTIALS: Record<string, readonly string[]> = { users: ["password_hash"] };

export interface OutboxEvent {
  seq: number;
  at: string;
  action: MutationEvent["action"];
  entity: string;
  id: number;
  /** the stored row before and after, decoded, credentials left out */
  before: Row | null;
  after: Row | null;
}

// biome-ignore lint/suspicious/noExplicitAny: rows as the driver returns them
type RawRow = Record<string, any>;

const image = (entity: string, row: Row | null): string | null => {
  if (!row) return null;
  const left = CREDENTIALS[entity];
  if (!left) return JSON.stringify(row);
  const copy = { ...row };
  for (const field of left) delete copy[field];
  return JSON.stringify(copy);
};

const parsed = (text: unknown): Row | null => (typeof text === "string" ? (JSON.parse(text) as Row) : null);

function decode(row: RawRow): OutboxEvent {
  return {
    seq: Number(row.seq),
    at: String(row.at),
    action: row.action,
    entity: String(row.entity),
    id: Number(row.row_id),
    before: parsed(row.before),
    after: parsed(row.after),
  };
}

export async function installOutbox(db: Db): Promise<void> {
  const dialect = dialectOf(db);
  await db.transaction().execute(async (trx) => {
    await dialect.lockSchema(trx);
    await trx.schema
      .createTable(OUTBOX_TABLE)
      .ifNotExists()
      .addColumn("seq", "bigint", (c) => c.primaryKey())
      .addColumn("at", "text", (c) => dialect.column("text", c).notNull())
      .addColumn("action", "text", (c) => dialect.column("text", c).notNull())
      .addColumn("entity", "text", (c) => dialect.column("text", c).notNull())
      .addColumn("row_id", "bigint", (c) => c.notNull())
      .addColumn("before", "text")
      .addColumn("after", "text")
      .execute();
    // a stream catching up reads its entity's events in order
    await trx.schema
      .createIndex("idx_citadel_outbox_entity_seq")
      .ifNotExists()
      .on(OUTBOX_TABLE)
      .columns(["entity", "seq"])
      .execute();
    await trx.schema
      .createTable(HEAD_TABLE)
      .ifNotExists()
      .addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("seq", "bigint", (c) => c.notNull())
      .execute();
    await trx
      .insertInto(HEAD_TABLE)
      .values({ id: 1, seq: 0 })
      .onConflict((oc) => oc.column("id").doNothing())
      .execute();
  });
}

/** Append a mutation's events inside its transaction. */
export async function appendEvents(trx: Db, events: MutationEvent[]): Promise<void> {
  const head = await trx
    .updateTable(HEAD_TABLE)
    .set({ seq: sql`seq + ${events.length}` })
    .where("id", "=", 1)
    .returning("seq")
    .executeTakeFirstOrThrow();
  const first = Number(head.seq) - events.length + 1;
  const at = new Date().toISOString();
  const rows = events.map((event, i) => ({
    seq: first + i,
    at,
    action: event.action,
    entity: event.entity,
    row_id: event.id,
    before: image(event.entity, event.before),
    after: image(event.entity, event.after),
  }));
  for (let start = 0; start < rows.length; start += CHUNK)
    await trx
      .insertInto(OUTBOX_TABLE)
      .values(rows.slice(start, start + CHUNK))
      .execute();
}

/** The last sequence number handed out (0 before the first event). */
export async function outboxHead(db: Db): Promise<number> {
  const row = await db.selectFrom(HEAD_TABLE).select("seq").where("id", "=", 1).executeTakeFirst();
  return Number(row?.seq ?? 0);
}

/** The oldest event still kept; undefined when none is. */
export async function oldestKept(db: Db): Promise<number | undefined> {
  const row = await db
    .selectFrom(OUTBOX_TABLE)
    .select((eb) => eb.fn.min("seq").as("seq"))
    .executeTakeFirst();
  return row?.seq === null || row?.seq === undefined ? undefined : Number(row.seq);
}

export interface EventsQuery {
  /** events after this sequence number */
  after: number;
  /** and up to this one, when given */
  upTo?: number;
  /** of this entity only, when given */
  entity?: string;
  limit: number;
}

/** Events in sequence order. */
export async function eventsAfter(db: Db, query: EventsQuery): Promise<OutboxEvent[]> {
  let select = db.selectFrom(OUTBOX_TABLE).selectAll().where("seq", ">", query.after);
  if (query.upTo !== undefined) select = select.where("seq", "<=", query.upTo);
  if (query.entity !== undefined) select = select.where("entity", "=", query.entity);
  const rows = await select.orderBy("seq").limit(query.limit).execute();
  return rows.map(decode);
}

/**
 * Remove the events written before `cutoff`, and every event before them: what is kept always starts at one
 * sequence number, so a resume finds every event after its id or is told it cannot (servers' clocks differ,
 * and `at` is each writer's). How many went.
 */
export async function pruneOutbox(db: Db, cutoff: Date): Promise<number> {
  const last = await db
    .selectFrom(OUTBOX_TABLE)
    .select((eb) => eb.fn.max("seq").as("seq"))
    .where("at", "<", cutoff.toISOString())
    .executeTakeFirst();
  if (last?.seq === null || last?.seq === undefined) return 0;
  const result = await db.deleteFrom(OUTBOX_TABLE).where("seq", "<=", Number(last.seq)).executeTakeFirst();
  return Number(result.numDeletedRows);
}
