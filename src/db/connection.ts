/** Opens the database named by `connection.url` and returns a Kysely instance over it. */
import { statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { createClient } from "@libsql/client";
import { LibsqlDialect } from "@libsql/kysely-libsql";
import Database from "better-sqlite3";
import {
  type DatabaseConnection,
  type Driver,
  Kysely,
  type Dialect as KyselyDialect,
  SqliteDialect,
  sql,
  type TransactionSettings,
} from "kysely";
import type { Dialect } from "../dialect/index.js";
import { sqlite } from "../dialect/sqlite.js";
import { ConfigError } from "../errors.js";
import { withDialect } from "./dialect-driver.js";

export interface ConnectionConfig {
  /** `file:data.db` (default), `:memory:`, `libsql://…`, `http(s)://…` */
  url?: string;
  authToken?: string;
  /** Force a driver for `file:` URLs; remote URLs always use libsql. */
  driver?: "better-sqlite3" | "libsql";
}

// biome-ignore lint/suspicious/noExplicitAny: tables are only known at runtime
export type Db = Kysely<any>;

export interface OpenDatabase {
  db: Db;
  dialect: Dialect;
  driver: "better-sqlite3" | "libsql";
  url: string;
}

const BUSY_TIMEOUT_MS = 5000;
const isRemote = (url: string) => /^(libsql|https?|wss?):/.test(url);
const filePath = (url: string) => (url === ":memory:" ? ":memory:" : url.replace(/^file:(\/\/)?/, ""));
const DRIVERS = ["better-sqlite3", "libsql"];
const SUPPORTED = '"file:<path>", ":memory:", "libsql://…", "http(s)://…" or "ws(s)://…"';

/** A password in a URL stays out of error messages (they end up in logs). */
const redact = (url: string) => url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*:)[^/@]*@/i, "$1***@");

/**
 * Refuse what no driver here can open, naming the problem and the URL, before a driver answers with
 * its own words (better-sqlite3: "Cannot open database because the directory does not exist").
 */
function checkConnection(url: string, driver: string | undefined): void {
  if (driver !== undefined && !DRIVERS.includes(driver))
    throw new ConfigError("connection.driver", `must be "better-sqlite3" or "libsql", not "${driver}"`);
  if (url === ":memory:" || isRemote(url)) return;
  if (!url.startsWith("file:")) {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
    throw new ConfigError(
      "connection.url",
      scheme
        ? `the scheme "${scheme}:" of "${redact(url)}" is not supported; use ${SUPPORTED}`
        : `"${url}" names no scheme; use "file:${url}" for a SQLite file, or ${SUPPORTED}`,
    );
  }
  const path = filePath(url);
  if (path === "") throw new ConfigError("connection.url", `"${url}" names no file`);
  if (path === ":memory:") return;
  const directory = dirname(resolve(path));
  const stat = statSync(directory, { throwIfNoEntry: false });
  if (!stat) throw new ConfigError("connection.url", `the directory ${directory} of "${url}" does not exist`);
  if (!stat.isDirectory()) throw new ConfigError("connection.url", `${directory} in "${url}" is not a directory`);
}

function betterSqlite(url: string): KyselyDialect {
  const database = new Database(filePath(url), { timeout: BUSY_TIMEOUT_MS });
  if (url !== ":memory:") database.pragma("journal_mode = WAL");
  database.pragma("foreign_keys = ON");
  database.pragma("synchronous = NORMAL");
  return new SqliteDialect({ database: withStatementCache(database) });
}

const STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely prepares every query anew; preparing costs as much as running a small query. The SQL text of a
 * compiled query depends only on its shape (values are parameters), so prepared statements are reused.
 */
function withStatementCache(database: Database.Database) {
  const cache = new Map<string, Database.Statement>();
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
 * A local libsql client keeps one connection so per-connection pragmas hold; Kysely's own SQLite driver
 * serializes access with a mutex and we do the same, so a transaction never meets a concurrent statement.
 */
class SerializedDriver implements Driver {
  private queue: Promise<void> = Promise.resolve();
  private release: (() => void) | undefined;
  constructor(private readonly inner: Driver) {}
  init() {
    return this.inner.init();
  }
  async acquireConnection(): Promise<DatabaseConnection> {
    const previous = this.queue;
    let release!: () => void;
    this.queue = new Promise((resolve) => {
      release = resolve;
    });
    await previous;
    this.release = release;
    return this.inner.acquireConnection();
  }
  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings) {
    return this.inner.beginTransaction(connection, settings);
  }
  commitTransaction(connection: DatabaseConnection) {
    return this.inner.commitTransaction(connection);
  }
  rollbackTransaction(connection: DatabaseConnection) {
    return this.inner.rollbackTransaction(connection);
  }
  async releaseConnection(connection: DatabaseConnection) {
    await this.inner.releaseConnection(connection);
    this.release?.();
  }
  destroy() {
    return this.inner.destroy();
  }
}

function libsql(url: string, authToken?: string): KyselyDialect {
  if (isRemote(url)) return new LibsqlDialect({ url, authToken });
  const path = filePath(url);
  const client = createClient({ url: path === ":memory:" ? ":memory:" : `file:${path}`, concurrency: 1 });
  // kysely-libsql types a client from its own older @libsql/client; the runtime interface is the same.
  const dialect = new LibsqlDialect({ client: client as never });
  const createDriver = dialect.createDriver.bind(dialect);
  dialect.createDriver = () => new SerializedDriver(createDriver());
  return dialect;
}

const dialects = new WeakMap<Db, Dialect>();

/** The dialect `db` was opened with (by `openDatabase`), for code that holds the database and nothing else. */
export function dialectOf(db: Db): Dialect {
  const dialect = dialects.get(db);
  if (!dialect) throw new Error("this database was not opened by openDatabase, so its dialect is unknown");
  return dialect;
}

/** Open the connection and apply SQLite's settings (WAL, foreign keys, busy timeout). */
export async function openDatabase(config: ConnectionConfig = {}): Promise<OpenDatabase> {
  const url = config.url ?? "file:data.db";
  checkConnection(url, config.driver);
  const driver = isRemote(url) ? "libsql" : (config.driver ?? "better-sqlite3");
  // every URL scheme accepted today is SQLite (a file, memory or a libSQL server)
  const dialect = sqlite;
  const kysely = driver === "libsql" ? libsql(url, config.authToken) : betterSqlite(url);
  const db: Db = new Kysely({ dialect: withDialect(kysely, dialect) });
  dialects.set(db, dialect);
  if (driver === "libsql" && !isRemote(url)) {
    await sql`pragma foreign_keys = on`.execute(db);
    await sql`pragma busy_timeout = ${sql.lit(BUSY_TIMEOUT_MS)}`.execute(db);
    if (url !== ":memory:") await sql`pragma journal_mode = wal`.execute(db);
    await sql`pragma synchronous = normal`.execute(db);
  }
  return { db, dialect, driver, url };
}
