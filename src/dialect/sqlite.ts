/** SQLite, through better-sqlite3, libsql (a file or a libSQL server) or any driver Kysely's SQLite compiler serves. */
import {
  type BinaryOperationNode,
  type CompiledQuery,
  type OperationNode,
  OperatorNode,
  SqliteQueryCompiler,
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
} from "./index.js";

/** SQLite's default SQLITE_MAX_VARIABLE_NUMBER (3.32+), which better-sqlite3 and libsql keep. */
const MAX_BIND_VALUES = 32_766;

const COLUMN_TYPES = {
  integer: "integer",
  real: "real",
  text: "text",
  boolean: "integer", // 0/1, as data/codec.ts writes them
  json: "text",
} as const satisfies Record<ColumnKind, string>;

/** A character GLOB would read as a wildcard, as a one-character class that matches it literally. */
const globLiteral = (c: string) => (c === "*" || c === "?" || c === "[" ? `[${c}]` : c);

/** A LIKE pattern (`\` escapes) as the GLOB pattern that matches the same strings, with case. */
export function globPattern(like: string): string {
  let glob = "";
  for (let i = 0; i < like.length; i++) {
    const c = like[i] as string;
    if (c === "\\" && i + 1 < like.length) glob += globLiteral(like[++i] as string);
    else glob += c === "%" ? "*" : c === "_" ? "?" : globLiteral(c);
  }
  return glob;
}

const operatorOf = (node: OperationNode) => (OperatorNode.is(node) ? node.operator : undefined);

/**
 * SQLite spells two things the filter compiler writes portably: its LIKE ignores (ASCII) case and has no
 * default escape, so `ilike` becomes `like … escape '\'` and the case-sensitive `like` becomes GLOB; and it
 * has no boolean type, so booleans are bound and written as 1 and 0.
 */
class SqliteCompiler extends SqliteQueryCompiler {
  protected override addParameter(value: unknown): void {
    super.addParameter(typeof value === "boolean" ? Number(value) : value);
  }

  protected override appendImmediateValue(value: unknown): void {
    super.appendImmediateValue(typeof value === "boolean" ? Number(value) : value);
  }

  protected override visitBinaryOperation(node: BinaryOperationNode): void {
    const operator = operatorOf(node.operator);
    if (operator === "ilike" || operator === "not ilike") {
      this.visitNode(node.leftOperand);
      this.append(operator === "ilike" ? " like " : " not like ");
      this.visitNode(node.rightOperand);
      this.append(" escape '\\'");
    } else if (operator === "like" || operator === "not like") {
      const pattern = node.rightOperand;
      if (!ValueNode.is(pattern) || typeof pattern.value !== "string")
        throw new Error("SQLite matches a case-sensitive LIKE only against a bound pattern");
      this.visitNode(node.leftOperand);
      this.append(operator === "like" ? " glob " : " not glob ");
      this.appendValue(globPattern(pattern.value));
    } else {
      super.visitBinaryOperation(node);
    }
  }
}

/** Extended result codes (better-sqlite3's `code`, libsql's `extendedCode`) Citadel translates. */
const CODES: Record<string, DatabaseErrorKind> = {
  SQLITE_CONSTRAINT_UNIQUE: "unique",
  SQLITE_CONSTRAINT_PRIMARYKEY: "unique",
  SQLITE_CONSTRAINT_FOREIGNKEY: "foreign-key",
};

/** SQLite names the columns of a violated key only in its message: `UNIQUE constraint failed: t.a, t.b`. */
const UNIQUE_COLUMNS = /UNIQUE constraint failed: ([\w.]+(?:, [\w.]+)*)/;

/** SQLite's words for nested triggers past their depth (better-sqlite3 and libSQL; Bun's bundled SQLite). */
const TOO_DEEP = /too many levels of trigger recursion|triggers nested too deep/;

/** A libSQL server answering 429 (over its concurrent-request limit) or 503: the request did not run. */
const refusedByServer = (error: Error) => {
  const status = (error.cause as { status?: unknown } | undefined)?.status;
  return status === 429 || status === 503;
};

function kindOf(error: Error, code: string | undefined): DatabaseErrorKind | undefined {
  if (code !== undefined && code in CODES) return CODES[code];
  if (code?.startsWith("SQLITE_BUSY") || code?.startsWith("SQLITE_LOCKED")) return "busy";
  if (code === "SERVER_ERROR" && refusedByServer(error)) return "busy";
  // libSQL over HTTP carries only the primary code; SQLite's wording of the two constraints is fixed. An
  // `on delete restrict` refusal comes as SQLITE_CONSTRAINT_TRIGGER with the foreign key's wording.
  if (code === "SQLITE_CONSTRAINT" || code === "SQLITE_CONSTRAINT_TRIGGER") {
    if (code === "SQLITE_CONSTRAINT" && UNIQUE_COLUMNS.test(error.message)) return "unique";
    if (error.message.includes("FOREIGN KEY constraint failed")) return "foreign-key";
  }
  // SQLite has no code of its own for this limit: SQLITE_ERROR, told apart by its message
  if (code === "SQLITE_ERROR" && error.message.includes("too many SQL variables")) return "too-many-values";
  // a cascade of a self-referencing key runs as nested triggers, at most 1,000 deep (SQLITE_MAX_TRIGGER_DEPTH);
  // a libSQL server reports it as SQLITE_UNKNOWN, and Bun's SQLite in other words
  if ((code === "SQLITE_ERROR" || code === "SQLITE_UNKNOWN") && TOO_DEEP.test(error.message)) return "too-deep";
  return undefined;
}

function classifyError(error: unknown): DatabaseError | undefined {
  if (!(error instanceof Error)) return undefined;
  const { code, extendedCode } = error as { code?: unknown; extendedCode?: unknown };
  const extended = typeof extendedCode === "string" ? extendedCode : typeof code === "string" ? code : undefined;
  const kind = kindOf(error, extended);
  if (kind === undefined) return undefined;
  if (kind !== "unique") return new DatabaseError(kind, error);
  const columns = (UNIQUE_COLUMNS.exec(error.message)?.[1] ?? "").split(", ").map((c) => c.split(".").pop() ?? c);
  return new DatabaseError(kind, error, columns.filter(Boolean));
}

async function columns(db: Db, table: string): Promise<Map<string, CurrentColumn>> {
  const { rows } = await sql<{ name: string; type: string; dflt_value: string | null }>`
    select name, type, dflt_value from pragma_table_info(${table})`.execute(db);
  return new Map(rows.map((r) => [r.name, { type: r.type.toLowerCase(), default: r.dflt_value }]));
}

/**
 * SQLite cannot retype a column, and cannot drop one that an index or a foreign key uses: copy the kept
 * columns into a new table and swap (schema sync's additive step recreates the indexes).
 */
function rebuild(db: Db, change: { table: string; kept: string[]; createAs(name: string): CompiledQuery }) {
  const temp = `${change.table}__rebuild`;
  const list = sql.join(change.kept.map((name) => sql.ref(name)));
  return [
    change.createAs(temp),
    sql`insert into ${sql.table(temp)} (${list}) select ${list} from ${sql.table(change.table)}`.compile(db),
    db.schema.dropTable(change.table).compile(),
    db.schema.alterTable(temp).renameTo(change.table).compile(),
  ];
}

export const sqlite: Dialect = {
  name: "sqlite",
  columnType: (kind) => COLUMN_TYPES[kind],
  idColumn: (column) => column.primaryKey().autoIncrement(),
  foreignKey: (column) => column,
  // SQLite compares text with BINARY, by code point, unless told otherwise
  column: (_kind, column) => column,
  typedValue: (kind, value) => sql`cast(${value} as ${sql.raw(String(COLUMN_TYPES[kind]))})`,
  normalizeType: (introspected) => introspected.toLowerCase(),
  columns,
  // SQLite keeps a default's text as written, and Kysely writes a literal as `sql.lit` compiles it
  defaultText: (db, value) => (value === undefined ? null : sql.lit(value).compile(db).sql),
  reshapeTable: rebuild,
  reshapeCreatesColumns: true,
  // the first write of the transaction is the lock (schema/sync.ts): SQLite has one writer at a time
  lockSchema: async () => {},
  async withoutForeignKeys(db, work) {
    // Dropping a table during a rebuild would fire ON DELETE actions in other tables. The pragma is a no-op
    // inside a transaction, so it wraps the whole one.
    await sql`pragma foreign_keys = off`.execute(db);
    try {
      return await work();
    } finally {
      await sql`pragma foreign_keys = on`.execute(db);
    }
  },
  createQueryCompiler: () => new SqliteCompiler(),
  // every SQLite foreign key can be deferred in a transaction; the pragma resets at its end
  deferForeignKeys: async (trx) => {
    await sql`pragma defer_foreign_keys = on`.execute(trx);
  },
  // one writer at a time: a check at the commit waits for no lock
  checkForeignKeysNow: async () => {},
  abortsOnError: false,
  // a failed statement undoes itself and leaves the transaction open
  recoverable: (_trx, statement) => statement(),
  locksRows: false,
  maxBindValues: MAX_BIND_VALUES,
  // octet_length (SQLite 3.43+) of a column reads the size from the record header, not the overflow pages;
  // length(cast(x as blob)) reads every page (measured over 500 rows of 1 MB: 0.2 ms against 290 ms)
  byteLength: (column) => sql<number>`octet_length(${sql.ref(column)})`,
  // one column for both: a size column beside each value took the SQL of a list of 20 posts from 50 µs to 62
  // (46 without the cap)
  cappedText: (table, column, share, { value }) => {
    const ref = sql.id(table, column);
    const size = sql`octet_length(${ref})`;
    return [sql`case when ${size} <= ${share} then ${ref} else ${size} end`.as(value)];
  },
  nullsAscending: "first",
  classifyError,
  describeStartupError(error) {
    const network = describeNetworkError(error);
    if (network) return network;
    if (!(error instanceof Error) || (error as { code?: unknown }).code !== "SERVER_ERROR") return undefined;
    const status = (error.cause as { status?: unknown } | undefined)?.status;
    if (status === 401 || status === 403) return "the server refused the credentials: check connection.authToken";
    return undefined;
  },
  counterTrigger: ({ name, table, column, counter }) => [
    sql`create trigger if not exists ${sql.id(name)}
      after update of ${sql.id(column)} on ${sql.table(table)} for each row
      when old.${sql.id(column)} is not new.${sql.id(column)}
      begin update ${sql.table(table)} set ${sql.id(counter)} = coalesce(${sql.id(counter)}, 0) + 1 where id = new.id; end`,
  ],
  appendOnlyTrigger: ({ name, table, unless, message }) => [
    sql`create trigger if not exists ${sql.id(`${name}_update`)} before update on ${sql.table(table)}
      begin select raise(abort, ${sql.lit(message)}); end`,
    sql`create trigger if not exists ${sql.id(`${name}_delete`)} before delete on ${sql.table(table)}
      when not exists (select 1 from ${sql.table(unless)})
      begin select raise(abort, ${sql.lit(message)}); end`,
  ],
};
