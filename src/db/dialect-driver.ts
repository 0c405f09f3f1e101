/**
 * The Kysely dialect a database is opened with: the runtime's driver, compiled by the Citadel dialect's query
 * compiler, with every driver error classified by that dialect where it is raised. So the code above sees
 * the same `DatabaseError` kinds on every engine and driver, whichever statement failed (a deferred foreign
 * key fails at COMMIT, not at the statement that broke it).
 */
import type {
  CompiledQuery,
  DatabaseConnection,
  DatabaseIntrospector,
  DialectAdapter,
  Driver,
  Kysely,
  Dialect as KyselyDialect,
  QueryCompiler,
  QueryResult,
  TransactionSettings,
} from "kysely";
import { DatabaseError, type Dialect } from "../dialect/index.js";
import { Saturated } from "./bounded-driver.js";

type Translate = (error: unknown) => unknown;

/** Run `work`, throwing what `translate` makes of its error. */
async function translated<T>(translate: Translate, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw translate(error);
  }
}

/** SQLite's and libSQL's answers to a ROLLBACK when no transaction is open (the engine's, the client's). */
const NOTHING_TO_ROLL_BACK = /cannot rollback - no transaction is active|^TRANSACTION_CLOSED\b/;

/** Waits before the 2nd, 3rd and 4th try of a statement the engine was too busy to take. */
export const BUSY_RETRY_MS = [25, 100, 400];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms * (0.5 + Math.random())));
const isBusy = (error: unknown) => error instanceof DatabaseError && error.kind === "busy";

/**
 * Run `work`, trying again after a pause while it fails `busy` (a busy engine did not apply it), and
 * throwing the last error when the tries run out.
 */
export async function retryBusy<T>(work: () => Promise<T>): Promise<T> {
  for (const wait of BUSY_RETRY_MS) {
    try {
      return await work();
    } catch (error) {
      if (!isBusy(error)) throw error;
      await sleep(wait);
    }
  }
  return work();
}

/**
 * The driver's connection, as Kysely sees it; the driver's own methods get the inner one back. A statement
 * outside a transaction is tried again while the engine is busy; inside one, a retry is the whole
 * transaction's to make (data/writes.ts), since the engine may have given up on the transaction.
 */
class ClassifiedConnection implements DatabaseConnection {
  inTransaction = false;
  constructor(
    readonly inner: DatabaseConnection,
    private readonly translate: Translate,
  ) {}
  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const run = () => translated(this.translate, () => this.inner.executeQuery<R>(query));
    return this.inTransaction ? run() : retryBusy(run);
  }
  async *streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    try {
      yield* this.inner.streamQuery<R>(query, chunkSize);
    } catch (error) {
      throw this.translate(error);
    }
  }
}

const innerOf = (connection: DatabaseConnection) =>
  connection instanceof ClassifiedConnection ? connection.inner : connection;

const markTransaction = (connection: DatabaseConnection, open: boolean) => {
  if (connection instanceof ClassifiedConnection) connection.inTransaction = open;
};

class ClassifyingDriver implements Driver {
  private readonly translate: Translate;
  savepoint?: Driver["savepoint"];
  rollbackToSavepoint?: Driver["rollbackToSavepoint"];
  releaseSavepoint?: Driver["releaseSavepoint"];

  constructor(
    private readonly inner: Driver,
    dialect: Dialect,
  ) {
    this.translate = (error) =>
      error instanceof Saturated ? new DatabaseError("busy", error) : (dialect.classifyError(error) ?? error);
    const { savepoint, rollbackToSavepoint, releaseSavepoint } = inner;
    if (savepoint)
      this.savepoint = (c, name, compile) => this.run(() => savepoint.call(inner, innerOf(c), name, compile));
    if (rollbackToSavepoint)
      this.rollbackToSavepoint = (c, name, compile) =>
        this.run(() => rollbackToSavepoint.call(inner, innerOf(c), name, compile));
    if (releaseSavepoint)
      this.releaseSavepoint = (c, name, compile) =>
        this.run(() => releaseSavepoint.call(inner, innerOf(c), name, compile));
  }

  private run<T>(work: () => Promise<T>): Promise<T> {
    return translated(this.translate, work);
  }

  init() {
    return this.inner.init();
  }
  async acquireConnection(): Promise<DatabaseConnection> {
    const inner = await retryBusy(() => this.run(() => this.inner.acquireConnection()));
    return new ClassifiedConnection(inner, this.translate);
  }
  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings) {
    await this.run(() => this.inner.beginTransaction(innerOf(connection), settings));
    markTransaction(connection, true);
  }
  commitTransaction(connection: DatabaseConnection) {
    markTransaction(connection, false);
    return this.run(() => this.inner.commitTransaction(innerOf(connection)));
  }
  async rollbackTransaction(connection: DatabaseConnection) {
    markTransaction(connection, false);
    try {
      await this.run(() => this.inner.rollbackTransaction(innerOf(connection)));
    } catch (error) {
      // the engine ended the transaction itself (a libSQL server giving up under load): nothing is left to undo,
      // and the error that made it give up, not this one, is the answer (503 for a busy engine, never a 500)
      if (!(error instanceof Error && NOTHING_TO_ROLL_BACK.test(error.message))) throw error;
    }
  }
  releaseConnection(connection: DatabaseConnection) {
    return this.inner.releaseConnection(innerOf(connection));
  }
  destroy() {
    return this.inner.destroy();
  }
}

const DIALECT = Symbol("citadel dialect");

/**
 * The Citadel dialect of a database or transaction, carried by the Kysely adapter they share (so a
 * transaction knows it as well as the database it came from); undefined when `withDialect` did not open it.
 */
export function dialectOfAdapter(adapter: DialectAdapter): Dialect | undefined {
  return (adapter as { [DIALECT]?: Dialect })[DIALECT];
}

/** `driver`'s Kysely dialect, speaking `dialect`'s SQL and raising its error kinds. */
export function withDialect(driver: KyselyDialect, dialect: Dialect): KyselyDialect {
  return {
    // the driver's adapter, unchanged (its getters run on it through the prototype), plus the dialect
    createAdapter: (): DialectAdapter => Object.assign(Object.create(driver.createAdapter()), { [DIALECT]: dialect }),
    createDriver: (): Driver => new ClassifyingDriver(driver.createDriver(), dialect),
    // biome-ignore lint/suspicious/noExplicitAny: Kysely's own signature
    createIntrospector: (db: Kysely<any>): DatabaseIntrospector => driver.createIntrospector(db),
    createQueryCompiler: (): QueryCompiler => dialect.createQueryCompiler(),
  };
}
