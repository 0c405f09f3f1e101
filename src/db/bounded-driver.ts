/**
 * A Kysely driver that lends at most `max` connections at once and makes the rest wait in line, up to
 * `waitMs`: then the caller gets a `busy` error (503 with Retry-After, never a 500). A libSQL server admits a
 * fixed number of concurrent requests and answers the rest with 429; a local libsql client has one
 * connection, which a transaction must have to itself.
 */
import type { DatabaseConnection, Driver, TransactionSettings } from "kysely";

export class Saturated extends Error {
  constructor(waitMs: number) {
    super(`no database connection became free within ${waitMs} ms`);
    this.name = "Saturated";
  }
}

export class BoundedDriver implements Driver {
  private active = 0;
  private readonly waiting: { grant: () => void; timer?: ReturnType<typeof setTimeout> }[] = [];

  constructor(
    private readonly inner: Driver,
    private readonly max: number,
    private readonly waitMs = 10_000,
  ) {}

  init() {
    return this.inner.init();
  }

  private slot(): Promise<void> {
    if (this.active < this.max) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter: (typeof this.waiting)[number] = { grant: resolve };
      waiter.timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        reject(new Saturated(this.waitMs));
      }, this.waitMs);
      this.waiting.push(waiter);
    });
  }

  private free(): void {
    const next = this.waiting.shift();
    if (!next) {
      this.active--;
      return;
    }
    clearTimeout(next.timer);
    next.grant(); // the slot passes to the next in line
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.slot();
    try {
      return await this.inner.acquireConnection();
    } catch (error) {
      this.free();
      throw error;
    }
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
    try {
      await this.inner.releaseConnection(connection);
    } finally {
      this.free();
    }
  }
  destroy() {
    return this.inner.destroy();
  }
}
