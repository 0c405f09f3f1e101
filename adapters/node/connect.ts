/**
 * Node's connections: SQLite files and `:memory:` through better-sqlite3 (the default) or libsql, libSQL
 * servers through libsql. Each driver is imported when the first connection of its kind opens, so an app that
 * never uses one never loads its native module.
 */
import { statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Client } from "@libsql/client";
import { CompiledQuery, type Dialect as KyselyDialect, SqliteDialect } from "kysely";
import { BoundedDriver } from "../../src/db/bounded-driver.js";
import type { ConnectionTarget, Connector } from "../../src/db/connection.js";
import { ConfigError } from "../../src/errors.js";

/** How long a connection waits for another one's write lock before SQLITE_BUSY; shared with Bun's connector. */
export const BUSY_TIMEOUT_MS = 5000;

/** Drivers answer a missing directory in their own words ("Cannot open database because the directory does not exist"). */
export function checkDirectory({ url, path }: ConnectionTarget): void {
  const directory = dirname(resolve(path));
  const stat = statSync(directory, { throwIfNoEntry: false });
  if (!stat) throw new ConfigError("connection.url", `the directory ${directory} of "${url}" does not exist`);
  if (!stat.isDirectory()) throw new ConfigError("connection.url", `${directory} in "${url}" is not a directory`);
}

async function betterSqlite({ kind, path }: ConnectionTarget): Promise<KyselyDialect> {
  const { default: Database } = await import("better-sqlite3");
  const database = new Database(path, { timeout: BUSY_TIMEOUT_MS });
  if (kind === "file") database.pragma("journal_mode = WAL");
  database.pragma("foreign_keys = ON");
  database.pragma("synchronous = NORMAL");
  return immediate(new SqliteDialect({ database: withStatementCache(database) }));
}

/**
 * Kysely's SQLite drivers (better-sqlite3, bun:sqlite) begin a transaction DEFERRED: it takes the write lock at
 * its first write, and when another process (a second server, the CLI beside a server) wrote since the
 * transaction's first read, SQLite refuses at once ("database is locked": the busy timeout cannot help a
 * transaction whose snapshot is stale). Every Citadel transaction writes, so each begins IMMEDIATE, waiting up
 * to the busy timeout for the lock instead. (libsql's own driver begins its write transactions so already.)
 */
export function immediate<T extends KyselyDialect>(dialect: T): T {
  const createDriver = dialect.createDriver.bind(dialect);
  dialect.createDriver = () => {
    const driver = createDriver();
    driver.beginTransaction = async (connection) => {
      await connection.executeQuery(CompiledQuery.raw("begin immediate"));
    };
    return driver;
  };
  return dialect;
}

const STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely prepares every query anew; preparing costs as much as running a small query. The SQL text of a
 * compiled query depends only on its shape (values are parameters), so prepared statements are reused. Any driver
 * whose database has `prepare` and `close` (better-sqlite3, bun:sqlite) gets the same bounded cache.
 */
export function withStatementCache<Statement>(database: { prepare(sql: string): Statement; close(): void }) {
  const cache = new Map<string, Statement>();
  return {
    close: () => database.close(),
    prepare(sql: string) {
      let statement = cache.get(sql);
      if (statement) {
        cache.delete(sql); // re-insert: the Map's order is the LRU order
      } else {
        statement = database.prepare(sql);
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
      }
      cache.set(sql, statement);
      return statement;
    },
  };
}

/**
 * A libSQL server through its HTTP protocol, at most `poolMax` requests at once (sqld refuses what exceeds its
 * own limit with 429); a local libsql client keeps one connection so per-connection pragmas hold, lent to one
 * caller at a time as Kysely's own SQLite driver does, so a transaction never meets a concurrent statement.
 */
async function libsql(target: ConnectionTarget): Promise<KyselyDialect> {
  const { kind, path, url, authToken } = target;
  const { LibsqlDialect } = await import("@libsql/kysely-libsql");
  if (kind === "remote") return bounded(new LibsqlDialect({ url, authToken }), target.poolMax, target.poolTimeoutMs);
  const { createClient } = await import("@libsql/client");
  const client = createClient({ url: kind === "memory" ? ":memory:" : `file:${path}`, concurrency: 1 });
  await localSettings(client, kind === "file");
  // kysely-libsql types a client from its own older @libsql/client; the runtime interface is the same.
  return bounded(new LibsqlDialect({ client: client as never }), 1, target.poolTimeoutMs);
}

function bounded<T extends KyselyDialect>(dialect: T, max: number, waitMs: number): T {
  const createDriver = dialect.createDriver.bind(dialect);
  dialect.createDriver = () => new BoundedDriver(createDriver(), max, waitMs);
  return dialect;
}

/** The settings better-sqlite3 gets through its constructor and `pragma()`, on the client's one connection. */
async function localSettings(client: Client, file: boolean): Promise<void> {
  await client.execute("pragma foreign_keys = on");
  await client.execute(`pragma busy_timeout = ${BUSY_TIMEOUT_MS}`);
  if (file) await client.execute("pragma journal_mode = wal");
  await client.execute("pragma synchronous = normal");
}

/**
 * A pool of at most `poolMax` connections through `pg`. Values come back as JavaScript numbers where Citadel
 * stores numbers: `count(*)` is a bigint (int8) and `pg` would return it as a string.
 */
export async function postgres({ url, poolMax, poolTimeoutMs }: ConnectionTarget): Promise<KyselyDialect> {
  const { default: pg } = await import("pg");
  const { PostgresDialect } = await import("kysely");
  const int8 = pg.types.builtins.INT8;
  const types = {
    // this pool's parsers only: the app's own pg clients keep theirs
    getTypeParser: ((oid: number, format?: "text" | "binary") =>
      oid === int8 ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
  };
  const pool = new pg.Pool({ connectionString: url, max: poolMax, types, connectionTimeoutMillis: poolTimeoutMs });
  // An idle connection the server ends (a restart, an administrator, a failover) is an 'error' event on the
  // pool, which would crash the process unheard. pg has already dropped that connection; the next query opens
  // a new one, or fails and is answered like any unreachable database.
  pool.on("error", () => {});
  return new PostgresDialect({ pool });
}

/** Open `target` with the driver it names. */
export const connect: Connector = async (target) => {
  if (target.kind === "postgres") return postgres(target);
  if (target.kind === "file") checkDirectory(target);
  return target.driver === "libsql" || target.kind === "remote" ? libsql(target) : betterSqlite(target);
};
