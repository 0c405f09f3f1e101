/**
 * Additive schema sync (§1.4): creates missing tables, columns and indexes through Kysely's schema builder,
 * each column with its schema default as SQL default, and renames the columns a field declares as
 * `renamedFrom`. A destructive difference (a column to drop, a type to change) is never applied implicitly:
 * startup refuses with the SQL it would take, which `citadel sync --destructive` (or `destructive: true`) runs.
 */
import { type ColumnDefinitionBuilder, type CompiledQuery, type CreateTableBuilder, sql } from "kysely";
import type { Db } from "../db/connection.js";
import type { ColumnType, CompiledField, CompiledSchema } from "./compiled.js";

export const META_TABLE = "citadel_meta";

type SqlType = "integer" | "real" | "text";

interface DesiredColumn {
  name: string;
  sqlType: SqlType;
  primary?: boolean;
  references?: { table: string; onDelete: "set null" | "cascade" | "restrict" };
  /** the schema default as a write stores it */
  default?: string | number;
  /** the column's previous name, renamed in place when only that one exists */
  renamedFrom?: string;
}

interface DesiredTable {
  name: string;
  columns: DesiredColumn[];
  /** junction tables: (left, right) pairs are unique */
  uniquePair?: [string, string];
}

const SQL_TYPES: Record<Exclude<ColumnType, "number">, SqlType> = {
  primary: "integer",
  reference: "integer",
  timestamp: "text",
  text: "text",
  enum: "text",
  date: "text",
  boolean: "integer",
  json: "text",
};

const sqlTypeOf = (f: CompiledField): SqlType =>
  f.type === "number" ? (f.config.integer ? "integer" : "real") : SQL_TYPES[f.type];

/**
 * The default as a write stores it (booleans 0/1, json as its text, the rest as given: see data/codec.ts),
 * so a row that got the column default reads exactly like one created through the API.
 */
function storedDefault(f: CompiledField): string | number | undefined {
  const value = f.config.default_value;
  if (value === undefined || value === null) return undefined;
  if (f.type === "boolean") return value ? 1 : 0;
  if (f.type === "json") return JSON.stringify(value);
  return value as string | number;
}

function desiredTables(schema: CompiledSchema): DesiredTable[] {
  const fks = new Map(schema.foreignKeys.map((fk) => [`${fk.entity}.${fk.column}`, fk]));
  const tables: DesiredTable[] = [];
  for (const e of schema.entities.values()) {
    const columns = [...e.fields.values()].map((f): DesiredColumn => {
      const fk = fks.get(`${e.name}.${f.name}`);
      return {
        name: f.name,
        sqlType: sqlTypeOf(f),
        primary: f.type === "primary",
        references: fk ? { table: fk.target, onDelete: fk.onDelete } : undefined,
        default: storedDefault(f),
        renamedFrom: f.config.renamedFrom,
      };
    });
    tables.push({ name: e.name, columns });
  }
  for (const j of schema.junctions) {
    tables.push({
      name: j.table,
      columns: [
        { name: "id", sqlType: "integer", primary: true },
        { name: j.left.column, sqlType: "integer", references: { table: j.left.entity, onDelete: "cascade" } },
        { name: j.right.column, sqlType: "integer", references: { table: j.right.entity, onDelete: "cascade" } },
      ],
      uniquePair: [j.left.column, j.right.column],
    });
  }
  return tables;
}

// biome-ignore lint/suspicious/noExplicitAny: tables are only known at runtime
type AnyCreateTable = CreateTableBuilder<any, any>;

/** The same column definition in CREATE TABLE and ALTER TABLE ADD COLUMN. */
const defineColumn =
  (c: DesiredColumn) =>
  (col: ColumnDefinitionBuilder): ColumnDefinitionBuilder => {
    if (c.primary) return col.primaryKey().autoIncrement();
    if (c.references) return col.references(`${c.references.table}.id`).onDelete(c.references.onDelete);
    // Kysely writes the value as a quoted literal: DDL takes no parameters.
    return c.default === undefined ? col : col.defaultTo(c.default);
  };

function createTable(db: Db, table: DesiredTable, name = table.name): CompiledQuery {
  let builder: AnyCreateTable = db.schema.createTable(name);
  for (const c of table.columns) builder = builder.addColumn(c.name, c.sqlType, defineColumn(c));
  if (table.uniquePair) builder = builder.addUniqueConstraint(`${name}_pair`, table.uniquePair);
  return builder.compile();
}

export interface SyncPlan {
  /** declared renames (`renamedFrom`): applied at every startup, before anything else */
  renames: CompiledQuery[];
  /** statements that only add: applied at every startup */
  additive: CompiledQuery[];
  /** statements that would drop or rewrite data: applied only when asked */
  destructive: CompiledQuery[];
  /** what the destructive statements do, for people */
  changes: string[];
  /** rebuilds that only bring column defaults in line with the schema: never block startup, run when asked */
  deferred: CompiledQuery[];
  /** what the deferred statements do, for people */
  deferredChanges: string[];
  /** true when the database had no Citadel tables before */
  fresh: boolean;
}

/** Compare the database with the schema and list what it would take to match. */
export async function planSync(db: Db, schema: CompiledSchema): Promise<SyncPlan> {
  const existing = new Map((await db.introspection.getTables()).map((t) => [t.name, t]));
  const plan: SyncPlan = {
    renames: [],
    additive: [],
    destructive: [],
    changes: [],
    deferred: [],
    deferredChanges: [],
    fresh: !existing.has(META_TABLE),
  };
  if (plan.fresh)
    plan.additive.push(
      db.schema
        .createTable(META_TABLE)
        .ifNotExists()
        .addColumn("key", "text", (c) => c.primaryKey())
        .addColumn("value", "text")
        .compile(),
    );

  for (const table of desiredTables(schema)) {
    const current = existing.get(table.name);
    if (current) await planTable(db, plan, table, await currentColumns(db, table.name));
    else plan.additive.push(createTable(db, table));
  }

  for (const i of schema.indices) {
    let builder = db.schema.createIndex(i.name).ifNotExists().on(i.entity).columns(i.columns);
    if (i.unique) builder = builder.unique();
    plan.additive.push(builder.compile());
  }
  return plan;
}

interface CurrentColumn {
  type: string;
  /** the default's SQL text as written when the column was created (`0`, `'draft'`), or null */
  default: string | null;
}

async function currentColumns(db: Db, table: string): Promise<Map<string, CurrentColumn>> {
  const { rows } = await sql<{ name: string; type: string; dflt_value: string | null }>`
    select name, type, dflt_value from pragma_table_info(${table})`.execute(db);
  return new Map(rows.map((r) => [r.name, { type: r.type.toLowerCase(), default: r.dflt_value }]));
}

/** The SQL text SQLite keeps for a default written by Kysely, to compare with `dflt_value`. */
const defaultText = (db: Db, value: string | number | undefined) =>
  value === undefined ? null : sql.lit(value).compile(db).sql;

async function planTable(db: Db, plan: SyncPlan, table: DesiredTable, columns: Map<string, CurrentColumn>) {
  // A declared rename applies when the old column is there and the new one is not; from then on the
  // table is compared under the new name, so a second start finds nothing to do.
  for (const c of table.columns) {
    const old = c.renamedFrom === undefined ? undefined : columns.get(c.renamedFrom);
    if (!old || columns.has(c.name)) continue;
    plan.renames.push(db.schema.alterTable(table.name).renameColumn(c.renamedFrom!, c.name).compile());
    columns.delete(c.renamedFrom!);
    columns.set(c.name, old);
  }
  const desired = new Set(table.columns.map((c) => c.name));
  const changed = table.columns.filter((c) => columns.has(c.name) && columns.get(c.name)!.type !== c.sqlType);
  const dropped = [...columns.keys()].filter((name) => !desired.has(name));
  // A changed default is not destructive: it rewrites no row (old rows keep their values) and Citadel's
  // writes fill the schema's default themselves, so only inserts made outside Citadel still see the old
  // one. SQLite can change a column default only by rebuilding the table, a copy of every row that
  // nothing needs in order to start, so that rebuild waits for `citadel sync --destructive`. Databases made
  // before column defaults existed have columns without one; they keep starting as before.
  const redefaulted = table.columns.filter(
    (c) => columns.has(c.name) && columns.get(c.name)!.default !== defaultText(db, c.default),
  );
  if (changed.length > 0 || dropped.length > 0) {
    // The rebuild creates every desired column (with its default), so no additive statement is needed.
    plan.changes.push(
      ...dropped.map((name) => `${table.name}: drop column "${name}"${renamedNote(table, name)}`),
      ...changed.map((c) => `${table.name}: change the type of "${c.name}" to ${c.sqlType}`),
    );
    plan.destructive.push(...rebuildTable(db, table, [...columns.keys()]));
    return;
  }
  if (redefaulted.length > 0) {
    plan.deferredChanges.push(
      ...redefaulted.map(
        (c) => `${table.name}: set the default of "${c.name}" to ${defaultText(db, c.default) ?? "null"}`,
      ),
    );
    plan.deferred.push(...rebuildTable(db, table, [...columns.keys()]));
  }
  for (const c of table.columns.filter((c) => !columns.has(c.name)))
    plan.additive.push(db.schema.alterTable(table.name).addColumn(c.name, c.sqlType, defineColumn(c)).compile());
}

/** `posts: drop column "title"` could be a rename that did not apply because both columns exist. */
function renamedNote(table: DesiredTable, name: string): string {
  const to = table.columns.find((c) => c.renamedFrom === name);
  return to ? ` (declared renamed to "${to.name}", which exists already)` : "";
}

/**
 * SQLite cannot retype a column, and cannot drop one that an index or a foreign key uses:
 * copy the kept columns into a new table and swap (indexes are recreated by the additive step).
 */
function rebuildTable(db: Db, table: DesiredTable, currentColumns: string[]): CompiledQuery[] {
  const temp = `${table.name}__rebuild`;
  const kept = table.columns.map((c) => c.name).filter((name) => currentColumns.includes(name));
  const list = sql.join(kept.map((name) => sql.ref(name)));
  return [
    createTable(db, table, temp),
    sql`insert into ${sql.table(temp)} (${list}) select ${list} from ${sql.table(table.name)}`.compile(db),
    db.schema.dropTable(table.name).compile(),
    db.schema.alterTable(temp).renameTo(table.name).compile(),
  ];
}

export class DestructiveSyncError extends Error {
  constructor(
    readonly changes: string[],
    readonly statements: string[],
  ) {
    super(
      `schema sync refused: the database differs from the schema in a destructive way:\n${changes.map((c) => `  - ${c}`).join("\n")}\n` +
        `It would take:\n${statements.map((s) => `  ${s};`).join("\n")}\n` +
        "Nothing was changed. Back up the database, then run `npx citadel sync --config <your config> --destructive`.",
    );
    this.name = "DestructiveSyncError";
  }
}

/**
 * Apply the plan in one transaction: renames and additive statements always; destructive and deferred
 * rebuilds only when `destructive` is set, after the renames and before the additive step (which
 * recreates the indexes a rebuild dropped).
 */
export async function syncSchema(db: Db, schema: CompiledSchema, options: { destructive?: boolean } = {}) {
  const plan = await planSync(db, schema);
  const rebuilds = [...plan.destructive, ...plan.deferred];
  if (plan.destructive.length > 0 && !options.destructive)
    throw new DestructiveSyncError(
      [...plan.changes, ...plan.deferredChanges],
      [...plan.renames, ...rebuilds].map((q) => q.sql),
    );
  const rebuilding = options.destructive === true && rebuilds.length > 0;
  const statements = [...plan.renames, ...(rebuilding ? rebuilds : []), ...plan.additive];
  if (statements.length === 0) return plan;
  // Dropping a table during a rebuild would fire ON DELETE actions in other tables; keys stay off meanwhile.
  if (rebuilding) await sql`pragma foreign_keys = off`.execute(db);
  try {
    await db.transaction().execute(async (trx) => {
      for (const q of statements) await trx.executeQuery(q);
    });
  } finally {
    if (rebuilding) await sql`pragma foreign_keys = on`.execute(db);
  }
  return plan;
}

const SEEDED = "seeded";

/** Whether this database was set up completely (its seed, if any, ran to the end). */
export async function isSeeded(db: Db): Promise<boolean> {
  const row = await db.selectFrom(META_TABLE).select("value").where("key", "=", SEEDED).executeTakeFirst();
  return row !== undefined;
}

/** Record that the new database's setup finished; a seed that throws leaves it unmarked and runs again. */
export async function markSeeded(db: Db): Promise<void> {
  await db
    .insertInto(META_TABLE)
    .values({ key: SEEDED, value: new Date().toISOString() })
    .onConflict((oc) => oc.column("key").doNothing())
    .execute();
}
