/**
 * Opens the database named by `connection.url`: the URL is checked here, the connection is opened by the
 * runtime's connector (adapters/node/connect.ts on Node), and the result speaks the engine's dialect. Nothing
 * here imports a driver, so loading Citadel loads no native module.
 */
import { Kysely, type Dialect as KyselyDialect } from "kysely";
import type { Dialect } from "../dialect/index.js";
import { postgres } from "../dialect/postgres.js";
import { sqlite } from "../dialect/sqlite.js";
import { ConfigError } from "../errors.js";
import { dialectOfAdapter, withDialect } from "./dialect-driver.js";

export interface ConnectionConfig {
  /** `file:data.db` (default), `:memory:`, `libsql://…`, `http(s)://…`, `postgres://…`, `postgresql://…` */
  url?: string;
  /** a libSQL server's token (Turso) */
  authToken?: string;
  /** Force a driver for `file:` URLs on Node; remote URLs always use libsql, PostgreSQL uses pg. */
  driver?: "better-sqlite3" | "libsql";
  /**
   * `max`: the most connections (PostgreSQL) or concurrent requests (libSQL server) one Citadel server opens
   * (default 10); `timeoutMs`: how long a request waits for one before it is answered 503 (default 10,000).
   */
  pool?: { max?: number; timeoutMs?: number };
}

// biome-ignore lint/suspicious/noExplicitAny: tables are only known at runtime
export type Db = Kysely<any>;

export type DriverName = "better-sqlite3" | "libsql";

/** A connection URL, checked and classified, for a runtime's connector to open. */
export interface ConnectionTarget {
  /** as configured */
  url: string;
  /**
   * `file`: a SQLite file at `path`; `memory`: a private in-memory SQLite database; `remote`: a libSQL server
   * at `url`; `postgres`: a PostgreSQL server at `url`
   */
  kind: "file" | "memory" | "remote" | "postgres";
  /** the file's path (`file`), `:memory:` (`memory`) or the URL (`remote`, `postgres`) */
  path: string;
  /** the driver the config asked for (`file`/`memory` only); the runtime's default otherwise */
  driver?: DriverName;
  authToken?: string;
  /** the most connections or concurrent requests to open */
  poolMax: number;
  /** how long to wait for a free connection, in ms */
  poolTimeoutMs: number;
}

/** How a runtime opens a connection: the Kysely dialect over its driver. Each adapter brings its own. */
export type Connector = (target: ConnectionTarget) => Promise<KyselyDialect>;

export interface OpenDatabase {
  db: Db;
  dialect: Dialect;
  url: string;
}

const isRemote = (url: string) => /^(libsql|https?|wss?):/.test(url);
const isPostgres = (url: string) => /^postgres(ql)?:\/\//.test(url);
/** Enough for a busy server, well under a PostgreSQL's default 100 connections with a few servers beside it. */
const DEFAULT_POOL_MAX = 10;
const DEFAULT_POOL_TIMEOUT_MS = 10_000;
const filePath = (url: string) => (url === ":memory:" ? ":memory:" : url.replace(/^file:(\/\/)?/, ""));
const DRIVERS = ["better-sqlite3", "libsql"];
const SUPPORTED =
  '"file:<path>", ":memory:", "libsql://…", "http(s)://…", "ws(s)://…", "postgres://…" or "postgresql://…"';

/** A password in a URL stays out of error messages (they end up in logs). */
export const redact = (url: string) => url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*:)[^/@]*@/i, "$1***@");

/** Refuse what no connector can open, naming the problem and the URL, before a driver answers in its own words. */
function targetOf(config: ConnectionConfig): ConnectionTarget {
  const url = config.url ?? "file:data.db";
  const driver = config.driver;
  if (driver !== undefined && !DRIVERS.includes(driver))
    throw new ConfigError("connection.driver", `must be "better-sqlite3" or "libsql", not "${driver}"`);
  const poolMax = config.pool?.max ?? DEFAULT_POOL_MAX;
  if (!Number.isInteger(poolMax) || poolMax < 1)
    throw new ConfigError("connection.pool.max", `must be a whole number of at least 1, not ${String(poolMax)}`);
  const poolTimeoutMs = config.pool?.timeoutMs ?? DEFAULT_POOL_TIMEOUT_MS;
  if (!Number.isInteger(poolTimeoutMs) || poolTimeoutMs < 1)
    throw new ConfigError(
      "connection.pool.timeoutMs",
      `must be a whole number of at least 1, not ${String(poolTimeoutMs)}`,
    );
  const base = { url, authToken: config.authToken, poolMax, poolTimeoutMs };
  if (isRemote(url)) return { ...base, kind: "remote", path: url };
  if (isPostgres(url)) return { ...base, kind: "postgres", path: url };
  if (url !== ":memory:" && !url.startsWith("file:")) {
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
  return { ...base, kind: path === ":memory:" ? "memory" : "file", path, driver };
}

/** The dialect `db` (or a transaction on it) was opened with by `openDatabase`. */
export function dialectOf(db: Db): Dialect {
  const dialect = dialectOfAdapter(db.getExecutor().adapter);
  if (!dialect) throw new Error("this database was not opened by openDatabase, so its dialect is unknown");
  return dialect;
}

/**
 * The one-line startup error for a failure of the first statements on `open` (unreachable server, wrong
 * credentials, no permission to create tables), naming the URL (password hidden) and what to check; undefined
 * for anything else.
 */
export function connectionProblem(open: OpenDatabase, error: unknown): ConfigError | undefined {
  const problem = open.dialect.describeStartupError(error);
  return problem === undefined
    ? undefined
    : new ConfigError("connection.url", `cannot use "${redact(open.url)}": ${problem}`);
}

/** Open the database named by the config, in the dialect of its engine. */
export async function openDatabase(config: ConnectionConfig = {}, connector: Connector): Promise<OpenDatabase> {
  const target = targetOf(config);
  const dialect = target.kind === "postgres" ? postgres : sqlite;
  const db: Db = new Kysely({ dialect: withDialect(await connector(target), dialect) });
  return { db, dialect, url: target.url };
}
