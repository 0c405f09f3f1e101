/** PostgreSQL, through `pg` and Kysely's PostgresDialect. */
import {
  type BinaryOperationNode,
  type CompiledQuery,
  OperatorNode,
  PostgresQueryCompiler,
  sql,
  ValueNode,
} from "kysely";
import type { Db } from "../db/connection.js";
import {
  type ColumnKind,
  type CurrentColumn,
  DatabaseError,
  type DatabaseErrorKind,
  type Dialect,
  describeNetworkError,
  type TableChange,
} from "./index.js";

/** The protocol counts bind values in 16 bits. */
const MAX_BIND_VALUES = 65_535;

const COLUMN_TYPES = {
  integer: "bigint", // SQLite's integers are 64-bit: ids and integer fields hold the same values on both
  real: "double precision",
  text: "text",
  boolean: "boolean",
  json: "text", // JSON as its text, as on SQLite (data/codec.ts): the same values and comparisons everywhere
} as const satisfies Record<ColumnKind, string>;

/** information_schema's `data_type` is already the SQL name; the catalog's short names map to it. */
const ALIASES: Record<string, string> = {
  int4: "integer",
  int: "integer",
  float8: "double precision",
  bool: "boolean",
  int8: "bigint",
  float4: "real",
  varchar: "character varying",
};

const NUMERIC = new Set(["integer", "bigint", "smallint", "double precision", "real", "numeric"]);

/** SQLSTATE classes Citadel translates (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
const CODES: Record<string, DatabaseErrorKind> = {
  "23505": "unique",
  "23503": "foreign-key",
  "23001": "foreign-key", // restrict_violation: `on delete restrict` refused a delete
  "54000": "too-large", // program_limit_exceeded: an index entry over 2,704 bytes
  "40001": "busy", // serialization_failure
  "40P01": "busy", // deadlock_detected
  "53300": "busy", // too_many_connections
  "57P03": "busy", // cannot_connect_now
};

/**
 * pg's pool gives up (`connectionTimeoutMillis`) with one of these messages and no code: waiting for a free
 * connection, or for a new one to be set up (a server too loaded to answer in time).
 */
const POOL_TIMEOUTS = new Set([
  "timeout exceeded when trying to connect",
  "Connection terminated due to connection timeout",
]);

/** PostgreSQL names a violated key's columns in the error's detail: `Key (a, b)=(1, 2) already exists.` */
const KEY_COLUMNS = /^Key \(([^)]*)\)=/;

function classifyError(error: unknown): DatabaseError | undefined {
  if (!(error instanceof Error)) return undefined;
  const { code, detail } = error as { code?: unknown; detail?: unknown };
  const kind = typeof code === "string" ? CODES[code] : POOL_TIMEOUTS.has(error.message) ? "busy" : undefined;
  if (kind === undefined) return undefined;
  if (kind !== "unique") return new DatabaseError(kind, error);
  const columns = typeof detail === "string" ? (KEY_COLUMNS.exec(detail)?.[1] ?? "") : "";
  return new DatabaseError(
    kind,
    error,
    columns
      .split(",")
      .map((c) => c.trim().replace(/^"|"$/g, ""))
      .filter(Boolean),
  );
}

/**
 * A default as PostgreSQL reports it, reduced to the literal: `'draft'::text` → `'draft'`, `'-1'::integer` → `-1`,
 * `false` and `0` as they are. `defaultText` writes the same form, so equal means unchanged.
 */
function literalOf(text: string | null, type: string): string | null {
  if (text === null) return null;
  const cast = /^'((?:[^']|'')*)'::[a-z ]+$/.exec(text);
  if (!cast) return text;
  return NUMERIC.has(type) ? (cast[1] as string) : `'${cast[1]}'`;
}

async function columns(db: Db, table: string): Promise<Map<string, CurrentColumn>> {
  const { rows } = await sql<{ name: string; type: string; default: string | null }>`
    select column_name as name, data_type as type, column_default as default
    from information_schema.columns
    where table_schema = current_schema() and table_name = ${table}`.execute(db);
  return new Map(
    rows.map((r) => {
      const type = normalizeType(r.type);
      return [r.name, { type, default: literalOf(r.default, type) }];
    }),
  );
}

function normalizeType(introspected: string): string {
  const type = introspected.toLowerCase();
  return ALIASES[type] ?? type;
}

function defaultText(value: string | number | boolean | undefined): string | null {
  if (value === undefined) return null;
  if (typeof value === "string") return `'${value.replace(/'/g, "''")}'`;
  return String(value);
}

/** PostgreSQL alters a table in place: drop, retype (casting the values) and redefault columns. */
function alter(db: Db, change: TableChange): CompiledQuery[] {
  const table = db.schema.alterTable(change.table);
  return [
    ...change.dropped.map((name) => table.dropColumn(name).compile()),
    ...change.retyped.map(({ name, type }) =>
      sql`alter table ${sql.table(change.table)} alter column ${sql.ref(name)} type ${sql.raw(type)}${sql.raw(type === "text" ? ' collate "C"' : "")} using ${sql.ref(name)}::${sql.raw(type)}`.compile(
        db,
      ),
    ),
    ...change.redefaulted.map(({ name, default: value }) =>
      value === null
        ? table.alterColumn(name, (c) => c.dropDefault()).compile()
        : sql`alter table ${sql.table(change.table)} alter column ${sql.ref(name)} set default ${sql.raw(value)}`.compile(
            db,
          ),
    ),
  ];
}

const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const foldAscii = (text: string) => text.replace(/[A-Z]/g, (c) => c.toLowerCase());

/**
 * Kysely's PostgreSQL compiler already speaks booleans and LIKE with `\` escapes (the default). ILIKE would
 * fold every letter's case by the collation, and SQLite folds ASCII letters only, so `ilike` folds ASCII on
 * both sides instead: `$ilike` matches the same rows on every engine, and as the in-memory evaluator does.
 */
class PostgresCompiler extends PostgresQueryCompiler {
  /**
   * A parameter takes its type from the column it meets, so `views > 1.5` on a bigint column would fail to
   * parse 1.5. A number that is not a safe integer is bound as a double, as SQLite compares it.
   */
  protected override appendValue(value: unknown): void {
    super.appendValue(value);
    if (typeof value === "number" && !Number.isSafeInteger(value)) this.append("::double precision");
  }

  protected override visitBinaryOperation(node: BinaryOperationNode): void {
    const operator = OperatorNode.is(node.operator) ? node.operator.operator : undefined;
    if (operator !== "ilike" && operator !== "not ilike") {
      super.visitBinaryOperation(node);
      return;
    }
    const pattern = node.rightOperand;
    if (!ValueNode.is(pattern) || typeof pattern.value !== "string")
      throw new Error("PostgreSQL matches a case-insensitive LIKE only against a bound pattern");
    this.append("translate(");
    this.visitNode(node.leftOperand);
    this.append(`, '${UPPER}', '${UPPER.toLowerCase()}')`);
    this.append(operator === "ilike" ? " like " : " not like ");
    this.appendValue(foldAscii(pattern.value));
  }
}

export const postgres: Dialect = {
  name: "postgres",
  columnType: (kind) => COLUMN_TYPES[kind],
  idColumn: (column) => column.primaryKey().generatedByDefaultAsIdentity(),
  foreignKey: (column) => column.modifyEnd(sql`deferrable initially immediate`),
  // the database's default collation (often en_US) would sort "a" beside "A": text is by code point, as on SQLite
  column: (kind, column) => (COLUMN_TYPES[kind] === "text" ? column.modifyFront(sql`collate "C"`) : column),
  // PostgreSQL takes an untyped parameter for text, and the column's collation is not the database's default
  typedValue: (kind, value) =>
    COLUMN_TYPES[kind] === "text"
      ? sql`cast(${value} as text) collate "C"`
      : sql`cast(${value} as ${sql.raw(String(COLUMN_TYPES[kind]))})`,
  normalizeType,
  columns,
  defaultText: (_db, value) => defaultText(value),
  reshapeTable: alter,
  reshapeCreatesColumns: false,
  async lockSchema(trx) {
    // concurrent CREATE TABLE IF NOT EXISTS can fail on PostgreSQL: an advisory lock orders them first
    await sql`select pg_advisory_xact_lock(${SCHEMA_LOCK_KEY})`.execute(trx);
  },
  // ALTER TABLE drops no table, so no foreign key action can fire
  withoutForeignKeys: (_db, work) => work(),
  createQueryCompiler: () => new PostgresCompiler(),
  deferForeignKeys: async (trx) => {
    await sql`set constraints all deferred`.execute(trx);
  },
  checkForeignKeysNow: async (trx) => {
    await sql`set constraints all immediate`.execute(trx);
  },
  abortsOnError: true,
  async recoverable(trx, statement) {
    const name = sql.id(`citadel_${++savepoints}`);
    await sql`savepoint ${name}`.execute(trx);
    try {
      const result = await statement();
      await sql`release savepoint ${name}`.execute(trx);
      return result;
    } catch (error) {
      await sql`rollback to savepoint ${name}`.execute(trx);
      throw error;
    }
  },
  locksRows: true,
  maxBindValues: MAX_BIND_VALUES,
  // the size of a TOASTed value comes from its pointer, without detoasting it (text and json are text columns)
  byteLength: (column) => sql<number>`octet_length(${sql.ref(column)})`,
  // a CASE answers one type: the size of a value left unread comes in a column of its own
  cappedText: (table, column, share, { value, size }) => {
    const ref = sql.id(table, column);
    const length = sql`octet_length(${ref})`;
    return [
      sql`case when ${length} <= ${share} then ${ref} end`.as(value),
      sql`case when ${length} > ${share} then ${length} end`.as(size),
    ];
  },
  nullsAscending: "last",
  classifyError,
  describeStartupError(error) {
    const code = (error as { code?: unknown } | undefined)?.code;
    if (code === "28P01" || code === "28000") return "the server refused the user name or password in the URL";
    if (code === "3D000") return "the database named in the URL does not exist: create it first";
    if (code === "42501")
      return "the user may not create tables there: grant it CREATE on the schema, or connect as the owner";
    if (error instanceof Error && POOL_TIMEOUTS.has(error.message))
      return "no connection within pool.timeoutMs: check the host, the port and any firewall (or raise pool.timeoutMs)";
    return describeNetworkError(error);
  },
  counterTrigger: ({ name, table, column, counter }) => {
    const fn = sql.id(`${name}_fn`);
    return [
      sql`create or replace function ${fn}() returns trigger language plpgsql as ${sql.lit(
        `begin new.${quoteId(counter)} := coalesce(old.${quoteId(counter)}, 0) + 1; return new; end`,
      )}`,
      sql`create or replace trigger ${sql.id(name)}
        before update of ${sql.id(column)} on ${sql.table(table)} for each row
        when (old.${sql.id(column)} is distinct from new.${sql.id(column)})
        execute function ${fn}()`,
    ];
  },
  appendOnlyTrigger: ({ name, table, unless, message }) => {
    const fn = sql.id(`${name}_fn`);
    const body = `begin
      if tg_op = 'DELETE' and exists (select 1 from ${quoteId(unless)}) then return old; end if;
      raise exception '%', ${quoteLiteral(message)};
    end`;
    return [
      sql`create or replace function ${fn}() returns trigger language plpgsql as ${sql.lit(body)}`,
      sql`create or replace trigger ${sql.id(name)} before update or delete on ${sql.table(table)}
        for each row execute function ${fn}()`,
    ];
  },
};

let savepoints = 0;

/** The advisory lock key of schema sync: any fixed 64-bit number other apps are unlikely to use. */
const SCHEMA_LOCK_KEY = 0x43697461; // "Cita"

const quoteId = (name: string) => `"${name.replace(/"/g, '""')}"`;
const quoteLiteral = (text: string) => `'${text.replace(/'/g, "''")}'`;
