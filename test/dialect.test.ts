/** §11.2: engine differences live in one dialect module; §1.7, §11.3: importing Citadel loads no database driver. */

import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  sql,
} from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "../adapters/node/connect.js";
import { type Db, dialectOf, openDatabase } from "../src/db/connection.js";
import { DatabaseError, likePattern } from "../src/dialect/index.js";
import { globPattern, sqlite } from "../src/dialect/sqlite.js";
import type { Filter } from "../src/query/ast.js";
import { compileFilter, withFilter } from "../src/query/compile.js";
import { DRIVERS } from "./helpers/server.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

describe("importing citadel (1.7, 11.3)", () => {
  /**
   * One fresh Node process: every native addon goes through `process.dlopen` and every CommonJS module (the
   * drivers are CommonJS) through `Module._cache`, so both are recorded after importing the entry, and
   * again after opening a database, which shows the probe sees a driver when one loads.
   */
  it("loads no database driver until a connection of its kind opens", { timeout: 60_000 }, () => {
    const script = `
      import { createRequire } from "node:module";
      const cache = createRequire(import.meta.url).cache;
      const addons = [];
      const dlopen = process.dlopen;
      process.dlopen = (module, file, ...rest) => { addons.push(file); return dlopen(module, file, ...rest); };
      const drivers = /better[-_]sqlite3|libsql/;
      const loaded = () => ({
        addons: addons.filter((f) => drivers.test(f)),
        modules: Object.keys(cache).filter((f) => drivers.test(f)).length,
      });
      const citadel = await import(${JSON.stringify(`${ROOT}src/index.ts`)});
      const imported = loaded();
      const app = await citadel.createApp({ connection: { url: ":memory:" }, config: { data: { entities: {} } } });
      await app.close();
      console.log(JSON.stringify({ imported, opened: loaded() }));`;
    const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: ROOT,
      encoding: "utf8",
    });
    const { imported, opened } = JSON.parse(out);
    expect(imported).toEqual({ addons: [], modules: 0 });
    expect(opened.addons).toEqual([expect.stringMatching(/better_sqlite3\.node$/)]);
    expect(opened.modules).toBeGreaterThan(0);
  });
});

/** A Kysely that compiles for an engine but runs nothing: what the filter compiler writes, as each engine reads it. */
function compilerOnly(engine: "sqlite" | "postgres"): Db {
  const [Adapter, Introspector, Compiler] =
    engine === "sqlite"
      ? [SqliteAdapter, SqliteIntrospector, () => sqlite.createQueryCompiler()]
      : [PostgresAdapter, PostgresIntrospector, () => new PostgresQueryCompiler()];
  return new Kysely({
    dialect: {
      createAdapter: () => new Adapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new Introspector(db),
      createQueryCompiler: Compiler,
    },
  });
}

const whereOf = (db: Db, filter: Filter) => {
  const { sql: text, parameters } = withFilter(db.selectFrom("t").select("id"), filter, "t").compile();
  return { where: text.replace(/^select "id" from "t" where /, ""), parameters };
};

describe("the filter compiler writes portable SQL; the dialect spells it (11.2)", () => {
  const cases: [string, Filter, { sqlite: string; postgres: string; parameters: [unknown[], unknown[]] }][] = [
    [
      "a case-sensitive match",
      { kind: "like", field: "a", caseSensitive: true, pattern: "A_b*" },
      { sqlite: '"t"."a" glob ?', postgres: '"t"."a" like $1', parameters: [["A_b*"], ["A\\_b%"]] },
    ],
    [
      "a case-insensitive match",
      { kind: "like", field: "a", caseSensitive: false, pattern: "A_b*" },
      { sqlite: '"t"."a" like ? escape \'\\\'', postgres: '"t"."a" ilike $1', parameters: [["A\\_b%"], ["A\\_b%"]] },
    ],
    [
      "a boolean value",
      { kind: "compare", field: "b", op: "$eq", value: true },
      { sqlite: '"t"."b" = ?', postgres: '"t"."b" = $1', parameters: [[1], [true]] },
    ],
    [
      "constants",
      {
        kind: "or",
        items: [
          { kind: "const", value: false },
          { kind: "in", field: "b", negated: true, values: [] },
        ],
      },
      { sqlite: "(0 or 1)", postgres: "(false or true)", parameters: [[], []] },
    ],
  ];

  it.each(cases)("%s", (_, filter, expected) => {
    const [sqliteParameters, postgresParameters] = expected.parameters;
    expect(whereOf(compilerOnly("sqlite"), filter)).toEqual({ where: expected.sqlite, parameters: sqliteParameters });
    expect(whereOf(compilerOnly("postgres"), filter)).toEqual({
      where: expected.postgres,
      parameters: postgresParameters,
    });
  });

  it("SQLite's spelling is what the generic compiler would not write", () => {
    const plain = new Kysely({
      dialect: {
        createAdapter: () => new SqliteAdapter(),
        createDriver: () => new DummyDriver(),
        createIntrospector: (db) => new SqliteIntrospector(db),
        createQueryCompiler: () => new SqliteQueryCompiler(),
      },
    });
    const like: Filter = { kind: "like", field: "a", caseSensitive: true, pattern: "x*" };
    expect(whereOf(plain, like).where).toBe('"t"."a" like ?');
    expect(whereOf(compilerOnly("sqlite"), like).where).toBe('"t"."a" glob ?');
  });

  it("a GLOB pattern made from a LIKE pattern matches what the Citadel pattern means", () => {
    // `*` is the only wildcard; `?`, `[`, `%`, `_` and `\` are themselves
    expect(globPattern(likePattern("a*b?c[d]%e_f\\g"))).toBe("a*b[?]c[[]d]%e_f\\g");
    expect(globPattern("50\\%_%")).toBe("50%?*");
  });

  it("compileFilter is the same function inside a subquery", () => {
    const db = compilerOnly("sqlite");
    const query = db
      .selectFrom("t")
      .select("id")
      .where((eb) => compileFilter(eb, { kind: "compare", field: "b", op: "$ne", value: false }, "t"))
      .compile();
    expect(query.parameters).toEqual([0]);
  });
});

describe.each(DRIVERS)("the SQLite dialect on %s (11.2)", (driver) => {
  let db: Db | undefined;
  afterEach(async () => {
    await db?.destroy();
    db = undefined;
  });

  async function open(): Promise<Db> {
    ({ db } = await openDatabase({ url: ":memory:", driver }, connect));
    await sql`create table a (id integer primary key, e text unique, x text, y text, unique (x, y))`.execute(db);
    await sql`create table b (id integer primary key, a_id integer references a (id))`.execute(db);
    await sql`insert into a (id, e, x, y) values (1, 'q', '1', '2')`.execute(db);
    return db;
  }

  const failure = (query: Promise<unknown>) =>
    query.then(
      () => undefined,
      (error: unknown) => error,
    );

  it("the opened database knows its dialect", async () => {
    expect(dialectOf(await open())).toBe(sqlite);
    expect(() => dialectOf(compilerOnly("sqlite"))).toThrow("not opened by openDatabase");
  });

  it("constraint errors arrive classified by their code, with the engine's message", async () => {
    const db = await open();
    const unique = await failure(sql`insert into a (x, y) values ('1', '2')`.execute(db));
    expect(unique).toBeInstanceOf(DatabaseError);
    expect(unique).toMatchObject({ kind: "unique", columns: ["x", "y"] });
    expect((unique as Error).message).toContain("UNIQUE constraint failed: a.x, a.y");
    expect(await failure(sql`insert into a (id) values (1)`.execute(db))).toMatchObject({
      kind: "unique",
      columns: ["id"],
    });
    expect(await failure(sql`insert into b (a_id) values (9)`.execute(db))).toMatchObject({ kind: "foreign-key" });
    expect(await failure(sql`select nope from a`.execute(db))).not.toBeInstanceOf(DatabaseError);
  });

  it("a transaction the engine already ended answers with the error that ended it, not the ROLLBACK's", async () => {
    const db = await open();
    // as a libSQL server under load does: it gives the transaction up, then the work fails
    const error = await failure(
      db.transaction().execute(async (trx) => {
        await sql`rollback`.execute(trx);
        throw new Error("the statement's own error");
      }),
    );
    expect((error as Error).message).toBe("the statement's own error");
  });

  it("a foreign key deferred to COMMIT fails there, classified all the same", async () => {
    const db = await open();
    const error = await failure(
      db.transaction().execute(async (trx) => {
        await sql`pragma defer_foreign_keys = on`.execute(trx);
        await sql`insert into b (a_id) values (9)`.execute(trx);
      }),
    );
    expect(error).toMatchObject({ kind: "foreign-key" });
  });

  it("binds exactly maxBindValues values in one statement", async () => {
    const db = await open();
    const select = (n: number) =>
      sql`select 1 where 0 in (${sql.join(Array.from({ length: n }, (_, i) => i))})`.execute(db);
    await select(sqlite.maxBindValues);
    expect(await failure(select(sqlite.maxBindValues + 1))).toMatchObject({ kind: "too-many-values" });
  });

  it("the counter trigger is idempotent and counts changes only", async () => {
    const db = await open();
    await sql`create table u (id integer primary key, role text, version integer)`.execute(db);
    await sql`insert into u (id, role, version) values (1, 'a', 0)`.execute(db);
    const trigger = { name: "u_role_counts", table: "u", column: "role", counter: "version" };
    for (let i = 0; i < 2; i++) for (const statement of sqlite.counterTrigger(trigger)) await statement.execute(db);
    const version = async () => (await sql<{ version: number }>`select version from u`.execute(db)).rows[0]?.version;
    await sql`update u set role = 'a'`.execute(db);
    expect(await version()).toBe(0);
    await sql`update u set role = 'b'`.execute(db);
    expect(await version()).toBe(1);
    await sql`update u set role = null`.execute(db);
    expect(await version()).toBe(2);
  });

  it("NULLs sort first ascending, as nullsAscending records", async () => {
    const db = await open();
    await sql`insert into a (id, e) values (2, null)`.execute(db);
    const rows = await db.selectFrom("a").select("e").orderBy("e", "asc").execute();
    expect(rows.map((r) => r.e)).toEqual([null, "q"]);
    expect(sqlite.nullsAscending).toBe("first");
  });

  it("introspected types are normalized to columnType's spelling", async () => {
    const db = await open();
    await sql`create table c (i INTEGER, r REAL, t Text, f integer default 0)`.execute(db);
    const columns = await sqlite.columns(db, "c");
    expect([...columns.values()].map((c) => c.type)).toEqual(
      (["integer", "real", "text", "boolean"] as const).map((k) => sqlite.columnType(k)),
    );
    expect(columns.get("f")?.default).toBe(sqlite.defaultText(db, 0));
  });
});
