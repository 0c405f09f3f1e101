/**
 * Bun's connections: SQLite files and `:memory:` through bun:sqlite (the default) with the same per-connection
 * settings as Node's better-sqlite3; `driver: "libsql"`, libSQL servers and PostgreSQL through Node's connector,
 * whose drivers (libsql, pg) run on Bun too. better-sqlite3 does not load in Bun, so asking for it is a startup
 * error that says what to use instead.
 */
import type { Dialect as KyselyDialect } from "kysely";
import type { ConnectionTarget, Connector } from "../../src/db/connection.js";
import { ConfigError } from "../../src/errors.js";
import {
  BUSY_TIMEOUT_MS,
  checkDirectory,
  immediate,
  connect as nodeConnect,
  withStatementCache,
} from "../node/connect.js";

async function bunSqlite({ kind, path }: ConnectionTarget): Promise<KyselyDialect> {
  const { Database } = await import("bun:sqlite");
  const { BunSqliteDialect } = await import("kysely-bun-sqlite");
  const database = new Database(path, { create: true, readwrite: true });
  // better-sqlite3's `timeout` option is this pragma; the rest are the pragmas Node's connector runs
  database.exec(`pragma busy_timeout = ${BUSY_TIMEOUT_MS}`);
  if (kind === "file") database.exec("pragma journal_mode = WAL");
  database.exec("pragma foreign_keys = ON");
  database.exec("pragma synchronous = NORMAL");
  // kysely-bun-sqlite calls only `prepare` and `close`, which the cache keeps
  return immediate(new BunSqliteDialect({ database: withStatementCache(database) as never }));
}

/** Open `target`: bun:sqlite for SQLite files and memory unless libsql is asked; anything else as Node does. */
export const connect: Connector = async (target) => {
  if (target.kind === "remote" || target.kind === "postgres" || target.driver === "libsql") return nodeConnect(target);
  if (target.driver === "better-sqlite3")
    throw new ConfigError(
      "connection.driver",
      '"better-sqlite3" does not run on Bun; leave driver out to use bun:sqlite, or set it to "libsql"',
    );
  if (target.kind === "file") checkDirectory(target);
  return bunSqlite(target);
};
