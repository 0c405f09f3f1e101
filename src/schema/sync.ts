/**
 * Additive schema sync (§1.4): creates missing tables, columns and indexes through Kysely's schema builder,
 * each column with its schema default as SQL default, and renames the columns a field declares as
 * `renamedFrom`. A destructive difference (a column to drop, a type to change) is never applied implicitly:
 * startup refuses with the SQL it would take, which `citadel sync --destructive` (or `destructive: true`) runs.
 * What differs between engines (types, introspection, how a table is reshaped) is the dialect's.
 */
import { type ColumnDefinitionBuilder, type CompiledQuery, type CreateTableBuilder, sql } from "kysely";
import type { Db } from "../db/connection.js";
import type { ColumnKind, CurrentColumn, Dialect, TableChange } from "../dialect/index.js";
import { derivedName } from "./compile.js";
import type { ColumnType, CompiledField, CompiledSchema } from "./compiled.js";

export const META_TABLE = "citadel_meta";

interface DesiredColumn {
  name: string;
  kind: ColumnKind;
  primary?: boolean;
  references?: { table: string; onDelete: "set null" | "cascade" | "restrict" };
  /** the schema default as a write stores it */
  default?: string | number | boolean;
  /** the column's previous name, renamed in place when only that one exists */
  renamedFrom?: string;
}

interface DesiredTable {
  name: string;
  columns: DesiredColumn[];
  /** junction tables: (left, right) pairs are unique */
  uniquePair?: [string, string];
}

const KINDS: Record<Exclude<ColumnType, "number">, ColumnKind> = {
  primary: "integer",
  reference: "integer",
  timestamp: "text",
  text: "text",
  enum: "text",
  date: "text",
  boolean: "boolean",
  json: "json",
};

/** What a field's column holds, for the dialect to name its type. */
export const kindOf = (f: CompiledField): ColumnKind =>
  f.type === "number" ? (f.config.integer ? "integer" : "real") : KINDS[f.type];

/**
 * The default as a write stores it (json as its text, the rest as given, booleans as the dialect spells
 * them: see data/codec.ts), so a row that got the column default reads exactly like one created through the API.
 */
function storedDefault(f: CompiledField): string | number | boolean | undefined {
  const value = f.config.default_value;
  // an encrypted field's default is encrypted by each write; as a column default it would be plaintext (§10)
  if (value === undefined || value === null || f.encrypted) return undefined;
  if (f.type === "boolean") return Boolean(value);
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
        kind: kindOf(f),
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
        { name: "id", kind: "integer", primary: true },
        { name: j.left.column, kind: "integer", references: { table: j.left.entity, onDelete: "cascade" } },
        { name: j.right.column, kind: "integer", references: { table: j.right.entity, onDelete: "cascade" } },
      ],
      uniquePair: [j.left.column, j.right.column],
    });
  }
  return tables;
}

/**
 * The tables in an order that creates every referenced table before the tables referencing it (PostgreSQL
 * checks a foreign key's table when the key is created). Tables in a cycle keep their declared order.
 */
function referencedFirst(tables: DesiredTable[]): DesiredTable[] {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const ordered: DesiredTable[] = [];
  const visiting = new Set<string>();
  const done = new Set<string>();
  const visit = (table: DesiredTable) => {
    if (done.has(table.name) || visiting.has(table.name)) return;
    visiting.add(table.name);
    for (const c of table.columns) {
      const target = c.references && byName.get(c.references.table);
      if (target) visit(target);
    }
    done.add(table.name);
    ordered.push(table);
  };
  for (const table of tables) visit(table);
  return ordered;
}

// biome-ignore lint/suspicious/noExplicitAny: tables are only known at runtime
type AnyCreateTable = CreateTableBuilder<any, any>;

/** The same column definition in CREATE TABLE and ALTER TABLE ADD COLUMN. */
const defineColumn =
  (dialect: Dialect, c: DesiredColumn) =>
  (col: ColumnDefinitionBuilder): ColumnDefinitionBuilder => {
    if (c.primary) return dialect.idColumn(col);
    if (c.references)
      return dialect.foreignKey(col.references(`${c.references.table}.id`).onDelete(c.references.onDelete));
    // Kysely writes the value as a quoted literal: DDL takes no parameters.
    const typed = dialect.column(c.kind, col);
    return c.default === undefined ? typed : typed.defaultTo(c.default);
  };

function createTable(db: Db, dialect: Dialect, table: DesiredTable, name = table.name): CompiledQuery {
  let builder: AnyCreateTable = db.schema.createTable(name);
  for (const c of table.columns)
    builder = builder.addColumn(c.name, dialect.columnType(c.kind), defineColumn(dialect, c));
  if (table.uniquePair) builder = builder.addUniqueConstraint(derivedName(`${name}_pair`), table.uniquePair);
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
  /** columns added to a table whose deferred rebuild creates them too: applied only when it does not run */
  addedUnlessRebuilt: CompiledQuery[];
}

/** Compare the database with the schema and list what it would take to match. */
export async function planSync(db: Db, dialect: Dialect, schema: CompiledSchema): Promise<SyncPlan> {
  const existing = new Map((await db.introspection.getTables()).map((t) => [t.name, t]));
  const plan: SyncPlan = {
    renames: [],
    additive: [],
    destructive: [],
    changes: [],
    deferred: [],
    deferredChanges: [],
    addedUnlessRebuilt: [],
  };
  for (const table of referencedFirst(desiredTables(schema))) {
    const current = existing.get(table.name);
    if (current) planTable(db, dialect, plan, table, await dialect.columns(db, table.name));
    else plan.additive.push(createTable(db, dialect, table));
  }

  // a unique index made per tenant goes before its replacement comes: a global one would still refuse (§6.3)
  for (const name of schema.retiredIndices) plan.additive.push(db.schema.dropIndex(name).ifExists().compile());
  for (const i of schema.indices) {
    let builder = db.schema.createIndex(i.name).ifNotExists().on(i.entity).columns(i.columns);
    if (i.unique) builder = builder.unique();
    if (i.whereNull) builder = builder.where(sql.ref(i.whereNull), "is", null);
    plan.additive.push(builder.compile());
  }
  return plan;
}

function planTable(
  db: Db,
  dialect: Dialect,
  plan: SyncPlan,
  table: DesiredTable,
  columns: Map<string, CurrentColumn>,
): void {
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
  const typeOf = (c: DesiredColumn) => dialect.columnType(c.kind);
  const defaultOf = (c: DesiredColumn) => dialect.defaultText(db, c.default);
  const changed = table.columns.filter((c) => columns.has(c.name) && columns.get(c.name)!.type !== typeOf(c));
  const dropped = [...columns.keys()].filter((name) => !desired.has(name));
  // A changed default is not destructive: it rewrites no row (old rows keep their values) and Citadel's
  // writes fill the schema's default themselves, so only inserts made outside Citadel still see the old
  // one. SQLite can change a column default only by rebuilding the table, a copy of every row that
  // nothing needs in order to start, so that rebuild waits for `citadel sync --destructive`. Databases made
  // before column defaults existed have columns without one; they keep starting as before.
  const redefaulted = table.columns.filter((c) => columns.has(c.name) && columns.get(c.name)!.default !== defaultOf(c));
  const change: TableChange = {
    table: table.name,
    kept: table.columns.map((c) => c.name).filter((name) => columns.has(name)),
    dropped,
    retyped: changed.map((c) => ({ name: c.name, type: typeOf(c) })),
    redefaulted: redefaulted.map((c) => ({ name: c.name, default: defaultOf(c) })),
    createAs: (name) => createTable(db, dialect, table, name),
  };
  if (changed.length > 0 || dropped.length > 0) {
    // The reshape leaves every desired column in place (with its default), so no additive statement is needed.
    plan.changes.push(
      ...dropped.map((name) => `${table.name}: drop column "${name}"${renamedNote(table, name)}`),
      ...changed.map((c) => `${table.name}: change the type of "${c.name}" to ${typeOf(c)}`),
    );
    plan.destructive.push(...dialect.reshapeTable(db, change));
    return;
  }
  if (redefaulted.length > 0) {
    plan.deferredChanges.push(
      ...redefaulted.map((c) => `${table.name}: set the default of "${c.name}" to ${defaultOf(c) ?? "null"}`),
    );
    plan.deferred.push(...dialect.reshapeTable(db, change));
  }
  // a deferred rebuild creates the new columns itself; without it (or where the reshape alters) they are added
  const adds = redefaulted.length > 0 && dialect.reshapeCreatesColumns ? plan.addedUnlessRebuilt : plan.additive;
  for (const c of table.columns.filter((c) => !columns.has(c.name)))
    adds.push(db.schema.alterTable(table.name).addColumn(c.name, typeOf(c), defineColumn(dialect, c)).compile());
}

/** `posts: drop column "title"` could be a rename that did not apply because both columns exist. */
function renamedNote(table: DesiredTable, name: string): string {
  const to = table.columns.find((c) => c.renamedFrom === name);
  return to ? ` (declared renamed to "${to.name}", which exists already)` : "";
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
 * Take the schema lock for the rest of the transaction: the dialect's lock where the engine has one, then a
 * write to the meta table, which on SQLite (one writer at a time) is the lock itself. Servers starting
 * together on one database so plan and apply one after another, each seeing what the one before created.
 */
async function lockSchema(trx: Db, dialect: Dialect): Promise<void> {
  await dialect.lockSchema(trx);
  await trx.schema
    .createTable(META_TABLE)
    .ifNotExists()
    .addColumn("key", "text", (c) => c.primaryKey())
    .addColumn("value", "text")
    .execute();
  await trx
    .insertInto(META_TABLE)
    .values({ key: SCHEMA_LOCK, value: new Date().toISOString() })
    .onConflict((oc) => oc.column("key").doUpdateSet((eb) => ({ value: eb.ref("excluded.value") })))
    .execute();
}

const SCHEMA_LOCK = "schema_lock";

/**
 * Plan and apply under the schema lock, in one transaction: renames and additive statements always;
 * destructive and deferred rebuilds only when `destructive` is set, after the renames and before the
 * additive step (which recreates the indexes a rebuild dropped). Running it again changes nothing.
 */
export async function syncSchema(
  db: Db,
  dialect: Dialect,
  schema: CompiledSchema,
  options: { destructive?: boolean } = {},
): Promise<SyncPlan> {
  const run = () =>
    db.transaction().execute(async (trx) => {
      await lockSchema(trx, dialect);
      const plan = await planSync(trx, dialect, schema);
      const rebuilds = [...plan.destructive, ...plan.deferred];
      if (plan.destructive.length > 0 && !options.destructive)
        throw new DestructiveSyncError(
          [...plan.changes, ...plan.deferredChanges],
          [...plan.renames, ...rebuilds].map((q) => q.sql),
        );
      const rebuilding = options.destructive === true && rebuilds.length > 0;
      const statements = [...plan.renames, ...(rebuilding ? rebuilds : plan.addedUnlessRebuilt), ...plan.additive];
      for (const q of statements) await trx.executeQuery(q);
      return plan;
    });
  return options.destructive ? dialect.withoutForeignKeys(db, run) : run();
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
