/**
 * Starts a real Citadel server on the engine under test (`ENGINE`: a temporary SQLite file, a libSQL server of
 * its own, or a database of its own on the run's PostgreSQL) and offers a tiny fetch-based client.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CitadelApp, CitadelConfig, ServeOptions } from "citadel";
import { serve as serveOnBun } from "citadel/adapter/bun";
import { serve as serveOnNode } from "citadel/adapter/node";
import { CompiledQuery } from "kysely";
import type pg from "pg";
import { inject } from "vitest";
import { createDatabase, dropDatabase, ENGINE, type Engine, startSqld } from "./engines.js";

/** Apps with auth enabled refuse to start without a JWT secret (§3.2); tests get one unless they set their own. */
export const TEST_JWT_SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
process.env.CITADEL_JWT_SECRET ??= TEST_JWT_SECRET;

/** The runtime the suite runs under: vitest run by Bun (`npm run test:bun`) serves through citadel/adapter/bun. */
export const RUNTIME: "node" | "bun" = "Bun" in globalThis ? "bun" : "node";
const serve = RUNTIME === "bun" ? serveOnBun : serveOnNode;

/** "better-sqlite3" stands for the runtime's own SQLite driver: better-sqlite3 on Node, bun:sqlite on Bun. */
export type Driver = "better-sqlite3" | "libsql";
/** The two SQLite drivers on Node (tests of the SQLite dialect itself). */
export const DRIVERS: Driver[] = ["better-sqlite3", "libsql"];

/** How a test server reaches its database: a SQLite driver on a file, or the server engine under test. */
export type EngineDriver = Driver | Exclude<Engine, "sqlite">;
/** What tests parameterised by driver run through on `ENGINE`: both SQLite drivers on a file, else the engine once. */
export const ENGINE_DRIVERS: EngineDriver[] = ENGINE === "sqlite" ? DRIVERS : [ENGINE];

// biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary rows
export type Row = Record<string, any>;

/** A database for one test server on `ENGINE`, and how to reach it. */
export interface TestDatabase {
  /** the app's `connection`; its URL also works for the CLI's `--db` */
  connection: { url: string; driver?: Driver };
  /** the SQLite file (ENGINE sqlite only) */
  file?: string;
  /** stop the libSQL server / drop the PostgreSQL database / delete the file (unless kept by `dir`) */
  close(): Promise<void>;
}

/**
 * A new database on `ENGINE`, or the one a previous call with the same `dir` made (so a restarted server sees its
 * data): a SQLite file in `dir`, a libSQL server keeping its data in `dir`, or a PostgreSQL database whose URL
 * is remembered in `dir`. Without `dir`, everything is removed on close.
 */
export async function testDatabase(opts: { driver?: EngineDriver; dir?: string } = {}): Promise<TestDatabase> {
  // A SQLite driver names how to open a file; a server engine has one way in, so it is ignored there.
  if (opts.driver !== undefined && !(DRIVERS as string[]).includes(opts.driver) && opts.driver !== ENGINE)
    throw new Error(`the driver "${opts.driver}" is for the engine ${opts.driver}, but this test runs on ${ENGINE}`);
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), `citadel-test-${ENGINE}-`));
  const removeDir = () => (opts.dir ? undefined : rmSync(dir, { recursive: true, force: true }));
  if (ENGINE === "sqld") {
    const sqld = await startSqld({ dir });
    return {
      connection: { url: sqld.url },
      async close() {
        await sqld.close();
        removeDir();
      },
    };
  }
  if (ENGINE === "postgres") {
    const remembered = join(dir, "postgres.url");
    const url = existsSync(remembered) ? readFileSync(remembered, "utf8") : await newPostgresDatabase();
    if (opts.dir) writeFileSync(remembered, url);
    return {
      connection: { url },
      async close() {
        // a database kept for a restart is dropped with the run's (test/setup/postgres.ts)
        if (!opts.dir) await dropDatabase(url);
        removeDir();
      },
    };
  }
  const file = join(dir, "data.db");
  const driver = opts.driver === "libsql" ? "libsql" : RUNTIME === "bun" ? undefined : "better-sqlite3";
  return { connection: { url: `file:${file}`, driver }, file, close: async () => removeDir() };
}

function newPostgresDatabase(): Promise<string> {
  const { baseUrl, prefix } = inject("postgres");
  return createDatabase(baseUrl, prefix);
}

export interface TestServer {
  url: string;
  /** the app's `connection`; its URL also works for the CLI's `--db` */
  connection: TestDatabase["connection"];
  /** The SQLite file, for tests about SQLite files only: throws unless ENGINE is sqlite. */
  dbFile: string;
  /** the running app, e.g. for `app.module.auth.createUser(...)` */
  app: CitadelApp;
  /**
   * Read or write the database directly (trusted, outside the guard), on any engine: `?` placeholders; values as
   * SQLite reports them (booleans 0/1, counts as numbers), so one expectation serves every engine.
   */
  rows(sql: string, ...params: unknown[]): Promise<Row[]>;
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse>;
  close(): Promise<void>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary JSON
  body: any;
  text: string;
}

/** Start a server on `ENGINE`; pass `dir` to reuse its database across restarts. */
export async function startServer(
  config: CitadelConfig,
  opts: { driver?: EngineDriver; dir?: string; options?: ServeOptions["options"] } = {},
): Promise<TestServer> {
  const database = await testDatabase(opts);
  const handle = serve({
    connection: database.connection,
    config,
    options: opts.options,
    port: 0,
    hostname: "127.0.0.1",
    quiet: true,
  });
  try {
    await handle.ready;
  } catch (error) {
    await handle.close();
    await database.close();
    throw error;
  }
  const url = handle.url;
  const app = handle.app!;
  const direct = ENGINE === "postgres" ? postgresRows(database.connection.url) : undefined;
  return {
    url,
    connection: database.connection,
    get dbFile(): string {
      if (!database.file) throw new Error(`dbFile is a SQLite file; this test runs on ${ENGINE}`);
      return database.file;
    },
    app,
    async rows(sql, ...params) {
      if (direct) return direct.rows(sql, params);
      return (await app.db.executeQuery<Row>(CompiledQuery.raw(sql, params))).rows;
    },
    async request(method, path, body, headers = {}) {
      const init: RequestInit = { method, headers: { ...headers } };
      if (body !== undefined) {
        init.body = typeof body === "string" ? body : JSON.stringify(body);
        (init.headers as Record<string, string>)["content-type"] ??= "application/json";
      }
      const res = await fetch(url + path, init);
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: res.status, headers: res.headers, body: parsed, text };
    },
    async close() {
      await handle.close();
      await direct?.close();
      await database.close();
    },
  };
}

/** pg's type ids whose text becomes a number (int8 and numeric: `count(*)`, `sum(…)`) or 0/1 (bool). */
const INT8 = 20;
const NUMERIC = 1700;
const BOOL = 16;

/**
 * Direct reads on PostgreSQL through a client of their own, because the values are typed by the column's type
 * (which Kysely's driver does not pass on): int8 and numeric as numbers, booleans as 0/1, as SQLite reports them.
 */
function postgresRows(url: string) {
  let pool: pg.Pool | undefined;
  const open = async () => {
    const { default: driver } = await import("pg");
    const parse = (id: number, format?: string) =>
      id === INT8 || id === NUMERIC
        ? Number
        : id === BOOL
          ? (v: string) => (v === "t" ? 1 : 0)
          : driver.types.getTypeParser(id, format as "text");
    const opened = new driver.Pool({ connectionString: url, max: 2, types: { getTypeParser: parse as never } });
    // the database is dropped with idle connections open when a test ends (as the app's pool, never a crash)
    opened.on("error", () => {});
    return opened;
  };
  return {
    async rows(sql: string, params: unknown[]): Promise<Row[]> {
      pool ??= await open();
      return (await pool.query(numbered(sql), params)).rows;
    },
    close: () => pool?.end(),
  };
}

/** `?` placeholders as PostgreSQL's `$1, $2, …` (a `?` inside a quoted string or identifier stays). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"|\?/g, (match) => (match === "?" ? `$${++n}` : match));
}
