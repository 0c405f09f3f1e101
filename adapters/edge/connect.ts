/**
 * Edge connections: a libSQL server (sqld, Turso) over HTTP with @libsql/client/web, which speaks through
 * `fetch` and nothing else. Files, `:memory:` and PostgreSQL's wire protocol need sockets or a filesystem an
 * edge runtime does not give, so they are startup errors naming what works here.
 */
import { type Client, createClient, type InValue, type Transaction } from "@libsql/client/web";
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Driver,
  type Dialect as KyselyDialect,
  type QueryResult,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from "kysely";
import { BoundedDriver } from "../../src/db/bounded-driver.js";
import type { Connector } from "../../src/db/connection.js";
import { redact } from "../../src/db/connection.js";
import { ConfigError } from "../../src/errors.js";

/** One Kysely connection: statements go to the client, or to the open transaction's stream. */
class LibsqlHttpConnection implements DatabaseConnection {
  private transaction: Transaction | undefined;
  constructor(private readonly client: Client) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const result = await (this.transaction ?? this.client).execute({
      sql: query.sql,
      args: query.parameters as InValue[],
    });
    return {
      insertId: result.lastInsertRowid,
      numAffectedRows: BigInt(result.rowsAffected),
      rows: result.rows as R[],
    };
  }

  async begin(): Promise<void> {
    if (this.transaction) throw new Error("a transaction is already open on this connection");
    this.transaction = await this.client.transaction("write");
  }

  async end(outcome: "commit" | "rollback"): Promise<void> {
    const transaction = this.transaction;
    if (!transaction) throw new Error(`no transaction to ${outcome}`);
    this.transaction = undefined;
    await transaction[outcome]();
  }

  // biome-ignore lint/correctness/useYield: a libSQL server answers whole result sets
  async *streamQuery(): AsyncIterableIterator<QueryResult<never>> {
    throw new Error("streaming is not supported over libSQL's HTTP protocol");
  }
}

/** Every connection shares the client; the server orders concurrent statements and transactions. */
class LibsqlHttpDriver implements Driver {
  constructor(private readonly client: Client) {}
  async init() {}
  async acquireConnection() {
    return new LibsqlHttpConnection(this.client);
  }
  async beginTransaction(connection: DatabaseConnection) {
    await (connection as LibsqlHttpConnection).begin();
  }
  async commitTransaction(connection: DatabaseConnection) {
    await (connection as LibsqlHttpConnection).end("commit");
  }
  async rollbackTransaction(connection: DatabaseConnection) {
    await (connection as LibsqlHttpConnection).end("rollback");
  }
  async releaseConnection() {}
  async destroy() {
    this.client.close();
  }
}

/** At most `max` statements or transactions in flight, as on Node: beyond that they wait, then answer 503. */
function libsqlHttp(client: Client, max: number, waitMs: number): KyselyDialect {
  return {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new BoundedDriver(new LibsqlHttpDriver(client), max, waitMs),
    createIntrospector: (db) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  };
}

const WORKS_HERE = 'a libSQL server over HTTP ("libsql://…", "https://…" or "http://…", e.g. Turso or sqld)';

/** Open `target` over HTTP, or refuse it naming what an edge runtime can open. */
export const connect: Connector = async (target) => {
  if (target.kind === "remote") {
    if (/^wss?:/.test(target.url))
      throw new ConfigError("connection.url", `"${redact(target.url)}": on the edge use ${WORKS_HERE}, not WebSockets`);
    return libsqlHttp(
      createClient({ url: target.url, authToken: target.authToken }),
      target.poolMax,
      target.poolTimeoutMs,
    );
  }
  const what =
    target.kind === "file" || target.kind === "memory"
      ? "a SQLite file or :memory: needs a filesystem and a native driver"
      : "PostgreSQL's protocol needs TCP sockets, and no HTTP driver for it is bundled";
  throw new ConfigError(
    "connection.url",
    `"${redact(target.url)}" cannot be opened on the edge: ${what}; use ${WORKS_HERE}`,
  );
};
