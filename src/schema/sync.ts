/**
 * Additive schema sync (§1.4): creates missing tables, columns and indexes through Kysely's schema builder.
 * A destructive difference (a column to drop, a type to change) is never applied implicitly: startup
 * refuses with the SQL it would take, which `citadel sync --destructive` (or `destructive: true`) runs.
 */
import { type CompiledQuery, type CreateTableBuilder, sql } from "kysely";
import type { Db } from "../db/connection.js";
import type { ColumnType, CompiledField, CompiledSchema } from "./compiled.js";

export const META_TABLE = "citadel_meta";

type SqlType = "integer" | "real" | "text";

interface DesiredColumn {
  name: string;
  sqlType: SqlType;
  primary?: boolean;
  references?: { table: string; onDelete: "set null" | "cascade" | "restrict" };
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

function createTable(db: Db, table: DesiredTable, name = table.name): CompiledQuery {
  let builder: AnyCreateTable = db.schema.createTable(name);
  for (const c of table.columns) {
    builder = builder.addColumn(c.name, c.sqlType, (col) => {
      if (c.primary) return col.primaryKey().autoIncrement();
      if (c.references) return col.references(`${c.references.table}.id`).onDelete(c.references.onDelete);
      return col;
    });
  }
  if (table.uniquePair) builder = builder.addUniqueConstraint(`${name}_pair`, table.uniquePair);
  return builder.compile();
}

export interface SyncPlan {
  /** statements that only add: applied at every startup */
  additive: CompiledQuery[];
  /** statements that would drop or rewrite data: applied only when asked */
  destructive: CompiledQuery[];
  /** what the destructive statements do, for people */
  changes: string[];
  /** true when the database had no Citadel tables before */
  fresh: boolean;
}

/** Compare the database with the schema and list what it would take to match. */
export async function planSync(db: Db, schema: CompiledSchema): Promise<SyncPlan> {
  const existing = new Map((await db.introspection.getTables()).map((t) => [t.name, t]));
  const plan: SyncPlan = { additive: [], destructive: [], changes: [], fresh: !existing.has(META_TABLE) };
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
    if (!current) {
      plan.additive.push(createTable(db, table));
      continue;
    }
    const currentColumns = new Map(current.columns.map((c) => [c.name, c.dataType.toLowerCase()]));
    const changed = table.columns.filter((c) => currentColumns.has(c.name) && currentColumns.get(c.name) !== c.sqlType);
    const dropped = [...currentColumns.keys()].filter((name) => !table.columns.some((c) => c.name === name));
    if (changed.length > 0 || dropped.length > 0) {
      // The rebuild creates every desired column, so no additive statement is needed for this table.
      plan.changes.push(
        ...dropped.map((name) => `${table.name}: drop column "${name}"`),
        ...changed.map((c) => `${table.name}: change the type of "${c.name}" to ${c.sqlType}`),
      );
      plan.destructive.push(...rebuildTable(db, table, [...currentColumns.keys()]));
      continue;
    }
    for (const c of table.columns.filter((c) => !currentColumns.has(c.name)))
      plan.additive.push(
        db.schema
          .alterTable(table.name)
          .addColumn(c.name, c.sqlType, (col) =>
            c.references ? col.references(`${c.references.table}.id`).onDelete(c.references.onDelete) : col,
          )
          .compile(),
      );
  }

  for (const i of schema.indices) {
    let builder = db.schema.createIndex(i.name).ifNotExists().on(i.entity).columns(i.columns);
    if (i.unique) builder = builder.unique();
    plan.additive.push(builder.compile());
  }
  return plan;
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

/** Apply the plan: additive always, destructive only when `destructive` is set, all in one transaction. */
export async function syncSchema(db: Db, schema: CompiledSchema, options: { destructive?: boolean } = {}) {
  const plan = await planSync(db, schema);
  if (plan.destructive.length > 0 && !options.destructive)
    throw new DestructiveSyncError(
      plan.changes,
      plan.destructive.map((q) => q.sql),
    );
  const statements = options.destructive ? [...plan.destructive, ...plan.additive] : plan.additive;
  if (statements.length === 0) return plan;
  // Dropping a table during a rebuild would fire ON DELETE actions in other tables; keys stay off meanwhile.
  const rebuilding = options.destructive && plan.destructive.length > 0;
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
