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
import type { Dialect } from "../dialect/index.js";

type Translate = (error: unknown) => unknown;

/** Run `work`, throwing what `translate` makes of its error. */
async function translated<T>(translate: Translate, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw translate(error);
  }
}

/** The driver's connection, as Kysely sees it; the driver's own methods get the inner one back. */
class ClassifiedConnection implements DatabaseConnection {
  constructor(
    readonly inner: DatabaseConnection,
    private readonly translate: Translate,
  ) {}
  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return translated(this.translate, () => this.inner.executeQuery<R>(query));
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

class ClassifyingDriver implements Driver {
  private readonly translate: Translate;
  savepoint?: Driver["savepoint"];
  rollbackToSavepoint?: Driver["rollbackToSavepoint"];
  releaseSavepoint?: Driver["releaseSavepoint"];

  constructor(
    private readonly inner: Driver,
    dialect: Dialect,
  ) {
    this.translate = (error) => dialect.classifyError(error) ?? error;
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
    return new ClassifiedConnection(await this.inner.acquireConnection(), this.translate);
  }
  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings) {
    return this.run(() => this.inner.beginTransaction(innerOf(connection), settings));
  }
  commitTransaction(connection: DatabaseConnection) {
    return this.run(() => this.inner.commitTransaction(innerOf(connection)));
  }
  rollbackTransaction(connection: DatabaseConnection) {
    return this.run(() => this.inner.rollbackTransaction(innerOf(connection)));
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
