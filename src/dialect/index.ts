/**
 * Where database engines differ (§11.2), and nowhere else. Schema sync, the filter compiler, error translation
 * and auth's trigger write portable SQL through Kysely and ask the dialect of the opened database for the rest:
 * column types, introspection, how a table is reshaped, how filters are spelled, what an error code means,
 * trigger DDL, bind limits and NULL order. An engine is one file implementing `Dialect` (see sqlite.ts).
 */
import {
  type AliasedRawBuilder,
  type ColumnDataType,
  type ColumnDefinitionBuilder,
  type CompiledQuery,
  type QueryCompiler,
  type RawBuilder,
  sql,
} from "kysely";
import type { Db } from "../db/connection.js";

/** What a column holds, as schema sync declares it; the dialect names the engine's type for it. */
export type ColumnKind = "integer" | "real" | "text" | "boolean" | "json";

/** A column as the database has it now. */
export interface CurrentColumn {
  /** the type as the dialect spells it (`columnType`), so that equal means unchanged */
  type: string;
  /** the default's SQL text as the engine reports it (see `defaultText`), or null */
  default: string | null;
}

/** What schema sync found different in an existing table, and how to create the table afresh. */
export interface TableChange {
  table: string;
  /** desired columns the table has now: their values must survive */
  kept: string[];
  /** columns the schema no longer has */
  dropped: string[];
  /** kept columns whose type changes, with the new type */
  retyped: { name: string; type: string }[];
  /** kept columns whose default changes, with the new default's SQL text (null: none) */
  redefaulted: { name: string; default: string | null }[];
  /** CREATE TABLE of the whole desired table (columns, keys, defaults) under the given name */
  createAs(name: string): CompiledQuery;
}

/** A trigger that adds 1 to `counter` on each row of `table` whose `column` an UPDATE changes. */
export interface CounterTrigger {
  name: string;
  table: string;
  column: string;
  counter: string;
}

/**
 * Triggers that refuse every UPDATE and DELETE of `table` (an append-only log), except DELETEs while
 * `unless` (a table) holds a row: the one way to prune, inside the pruning transaction.
 */
export interface AppendOnlyTrigger {
  name: string;
  table: string;
  unless: string;
  message: string;
}

/**
 * What Citadel needs to know about a failed statement; everything else stays the engine's own error.
 * `too-large`: a value exceeds what the engine can index (PostgreSQL: 2,704 bytes per index entry).
 * `busy`: the engine did not take the statement now (locked, saturated, a serialization conflict); it did
 * not apply, and the same work may succeed when tried again.
 */
export type DatabaseErrorKind = "unique" | "foreign-key" | "too-many-values" | "too-large" | "too-deep" | "busy";

/**
 * A driver's error, classified by the dialect from the engine's code (the connection does this for every
 * statement, so callers see the same kinds on every engine). The message stays the engine's.
 */
export class DatabaseError extends Error {
  constructor(
    readonly kind: DatabaseErrorKind,
    cause: unknown,
    /** for "unique": the columns of the violated key, when the engine names them */
    readonly columns: string[] = [],
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = "DatabaseError";
  }
}

export interface Dialect {
  readonly name: string;

  // ── schema sync ──
  /** The engine's type for a column kind, spelled as `columns` reports it. */
  columnType(kind: ColumnKind): ColumnDataType;
  /** The `id` column (of type `columnType("integer")`): the primary key, assigned by the engine on insert. */
  idColumn(column: ColumnDefinitionBuilder): ColumnDefinitionBuilder;
  /**
   * What a column of this kind declares beyond its type, so that it compares and sorts as on SQLite (text by
   * code point); foreign keys and ids have their own hooks.
   */
  column(kind: ColumnKind, column: ColumnDefinitionBuilder): ColumnDefinitionBuilder;
  /** A bound value standing in for a column of this kind (a row built by hand), comparing as the column does. */
  typedValue(kind: ColumnKind, value: unknown): RawBuilder<unknown>;
  /** A column's foreign key (after `references` and `onDelete`), declared so that `deferForeignKeys` can defer it. */
  foreignKey(column: ColumnDefinitionBuilder): ColumnDefinitionBuilder;
  /** An introspected type in the spelling `columnType` uses (`INTEGER` → `integer`; `int4` → `integer`). */
  normalizeType(introspected: string): string;
  /** The columns of an existing table, by name. */
  columns(db: Db, table: string): Promise<Map<string, CurrentColumn>>;
  /** How the engine reports a default that Kysely wrote as a literal (`defaultTo(value)`), for comparison. */
  defaultText(db: Db, value: string | number | boolean | undefined): string | null;
  /**
   * Statements that leave an existing table exactly as desired: kept values intact, dropped columns gone,
   * types and defaults as declared. SQLite cannot alter a column in place and rebuilds the table; an engine
   * with a complete ALTER TABLE alters it.
   */
  reshapeTable(db: Db, change: TableChange): CompiledQuery[];
  /** True when `reshapeTable` creates the table afresh, new columns included; false when it alters the columns it names. */
  readonly reshapeCreatesColumns: boolean;
  /** Take a lock that concurrent schema syncs on the same database wait for, until the transaction ends. */
  lockSchema(trx: Db): Promise<void>;
  /** Run the statements of a reshape with foreign keys unenforced when the reshape needs it (a rebuild drops tables). */
  withoutForeignKeys<T>(db: Db, work: () => Promise<T>): Promise<T>;

  // ── queries ──
  /**
   * Kysely's compiler for the engine, rendering what the filter compiler writes portably: booleans as bound
   * values and constants, `like` (case-sensitive, `\` escapes) and `ilike` (case-insensitive).
   */
  createQueryCompiler(): QueryCompiler;
  /** Check foreign keys at the commit of the current transaction, not at each statement (§4.17: writes.ts). */
  deferForeignKeys(trx: Db): Promise<void>;
  /**
   * Check the deferred foreign keys now rather than at the commit. Before a transaction takes a lock every
   * writer queues on (the audit chain's head, the outbox's), so that it takes no other lock after that one:
   * on PostgreSQL a deferred check at commit takes a key-share lock on the referenced row, and a writer of
   * that row holding it while waiting for the head made a deadlock.
   */
  checkForeignKeysNow(trx: Db): Promise<void>;
  /** True when a failed statement ends the transaction (PostgreSQL); false when only the statement is undone (SQLite). */
  readonly abortsOnError: boolean;
  /**
   * Run a statement inside a transaction such that, when it fails, the transaction goes on as if it had not
   * run (PostgreSQL aborts a transaction at its first error unless a savepoint brackets the statement).
   */
  recoverable<T>(trx: Db, statement: () => Promise<T>): Promise<T>;
  /**
   * True when a write must lock the rows it decides on (SELECT … FOR UPDATE) so that no concurrent
   * transaction changes them between the decision and the write (PostgreSQL's READ COMMITTED); false where
   * writers are serialized whole (SQLite: a transaction that read a row another writer then changed cannot
   * write, and is tried again).
   */
  readonly locksRows: boolean;
  /** The most values one statement may bind. */
  readonly maxBindValues: number;
  /**
   * The bytes a text column's value takes as stored (NULL for NULL), read without loading the value itself:
   * the byte budget of a read measures its rows with it before fetching them (data/byte-budget.ts).
   */
  byteLength(column: string): RawBuilder<number>;
  /**
   * A text column's value, selected as `names.value` only when it takes at most `share` bytes as stored; a larger
   * one is left unread and its size is selected instead, read without loading the value (the byte budget of a
   * page, data/byte-budget.ts). Where a CASE may answer values of either type (SQLite) the size takes the value's
   * place, a number where the column holds text or NULL; otherwise it comes as `names.size`, NULL where the value
   * was read.
   */
  cappedText(
    table: string,
    column: string,
    share: number,
    names: { value: string; size: string },
  ): AliasedRawBuilder<unknown, string>[];
  /**
   * Where the engine puts NULLs in an ascending sort when the SQL does not say. Citadel's order is `NULLS_ASCENDING`
   * (SQLite's); a dialect whose engine differs must make the sort say so (NULLS FIRST ascending, NULLS LAST descending).
   */
  readonly nullsAscending: "first" | "last";

  // ── errors ──
  /** The kind of a driver error, from the engine's code; undefined for anything Citadel does not translate. */
  classifyError(error: unknown): DatabaseError | undefined;

  /**
   * What to check when the first use of the database at startup fails (unreachable, credentials, permissions),
   * in a few words; undefined when the error is none of those.
   */
  describeStartupError(error: unknown): string | undefined;

  // ── triggers ──
  /** Idempotent DDL creating the trigger (every statement may run at every start). */
  counterTrigger(trigger: CounterTrigger): RawBuilder<unknown>[];
  /** DDL of the append-only triggers (idempotent). */
  appendOnlyTrigger(trigger: AppendOnlyTrigger): RawBuilder<unknown>[];
}

/** Network failures every engine's driver reports alike (Node's socket codes; fetch's TypeError). */
export function describeNetworkError(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  if (code === "ECONNREFUSED")
    return "nothing accepts connections there: is the server running, are host and port right?";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "the host name does not resolve: check the host in the URL";
  if (code === "ETIMEDOUT" || code === "ECONNRESET")
    return "the server does not answer: check the host, the port and any firewall";
  if (error instanceof TypeError && error.message === "fetch failed")
    return "the server cannot be reached: is it running, are host and port right?";
  return undefined;
}

/** Citadel sorts NULLs first ascending and last descending, on every engine (SQLite's native order). */
export const NULLS_ASCENDING = "first";

/** One ORDER BY term in Citadel's NULL order, which the SQL states only where the engine's default differs. */
export function orderTerm(
  dialect: Dialect,
  column: string | RawBuilder<unknown>,
  dir: "asc" | "desc",
): RawBuilder<unknown> {
  const term = typeof column === "string" ? sql.ref(column) : column;
  if (dialect.nullsAscending === NULLS_ASCENDING) return sql`${term} ${sql.raw(dir)}`;
  const nulls = (dir === "asc") === (NULLS_ASCENDING === "first") ? "first" : "last";
  return sql`${term} ${sql.raw(dir)} nulls ${sql.raw(nulls)}`;
}

/**
 * A Citadel pattern (`*` matches any run of characters; nothing else is special) as a standard LIKE pattern,
 * `\` escaping the characters LIKE would read as wildcards. Dialects take LIKE patterns from here.
 */
export const likePattern = (pattern: string) => pattern.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, "%");
