/**
 * Opens the database named by `connection.url`: the URL is checked here, the connection is opened by the
 * runtime's connector (adapters/node/connect.ts on Node), and the result speaks the engine's dialect. Nothing
 * here imports a driver, so loading Citadel loads no native module.
 */
import { Kysely, type Dialect as KyselyDialect } from "kysely";
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

export type DriverName = "better-sqlite3" | "libsql";

/** A connection URL, checked and classified, for a runtime's connector to open. */
export interface ConnectionTarget {
  /** as configured */
  url: string;
  /** `file`: a SQLite file at `path`; `memory`: a private in-memory SQLite database; `remote`: a libSQL server at `url` */
  kind: "file" | "memory" | "remote";
  /** the file's path (`file`), `:memory:` (`memory`) or the URL (`remote`) */
  path: string;
  driver: DriverName;
  authToken?: string;
}

/** How a runtime opens a connection: the Kysely dialect over its driver. Each adapter brings its own. */
export type Connector = (target: ConnectionTarget) => Promise<KyselyDialect>;

export interface OpenDatabase {
  db: Db;
  dialect: Dialect;
  driver: DriverName;
  url: string;
}

const isRemote = (url: string) => /^(libsql|https?|wss?):/.test(url);
const filePath = (url: string) => (url === ":memory:" ? ":memory:" : url.replace(/^file:(\/\/)?/, ""));
const DRIVERS = ["better-sqlite3", "libsql"];
const SUPPORTED = '"file:<path>", ":memory:", "libsql://…", "http(s)://…" or "ws(s)://…"';

/** A password in a URL stays out of error messages (they end up in logs). */
export const redact = (url: string) => url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*:)[^/@]*@/i, "$1***@");

/** Refuse what no connector can open, naming the problem and the URL, before a driver answers in its own words. */
function targetOf(config: ConnectionConfig): ConnectionTarget {
  const url = config.url ?? "file:data.db";
  const driver = config.driver;
  if (driver !== undefined && !DRIVERS.includes(driver))
    throw new ConfigError("connection.driver", `must be "better-sqlite3" or "libsql", not "${driver}"`);
  const base = { url, authToken: config.authToken };
  if (isRemote(url)) return { ...base, kind: "remote", path: url, driver: "libsql" };
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
  return { ...base, kind: path === ":memory:" ? "memory" : "file", path, driver: driver ?? "better-sqlite3" };
}

const dialects = new WeakMap<Db, Dialect>();

/** The dialect `db` was opened with (by `openDatabase`), for code that holds the database and nothing else. */
export function dialectOf(db: Db): Dialect {
  const dialect = dialects.get(db);
  if (!dialect) throw new Error("this database was not opened by openDatabase, so its dialect is unknown");
  return dialect;
}

/** Open the database: every URL scheme Citadel accepts today is SQLite (a file, memory or a libSQL server). */
export async function openDatabase(config: ConnectionConfig = {}, connector: Connector): Promise<OpenDatabase> {
  const target = targetOf(config);
  const dialect = sqlite;
  const db: Db = new Kysely({ dialect: withDialect(await connector(target), dialect) });
  dialects.set(db, dialect);
  return { db, dialect, driver: target.driver, url: target.url };
}
