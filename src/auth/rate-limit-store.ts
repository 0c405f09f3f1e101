/**
 * The database rate-limit store (§11.4): the counters of every server on one database live in one table, so
 * a limit counts the attempts made on all of them. The default whenever the database is shared (a libSQL
 * server, PostgreSQL); `auth.rate_limit.store` or `options.rateLimitStore` choose otherwise.
 */
import { sql } from "kysely";
import type { Db } from "../db/connection.js";
import type { RateLimitHit, RateLimitStore } from "./rate-limit.js";

export const RATE_LIMIT_TABLE = "citadel_rate_limits";

/** Hex SHA-256 of a key: the table never holds an email or an address, only their digests. */
export async function digest(key: string): Promise<string> {
  const bytes = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `file:` and `:memory:` are the only local URLs a connection accepts; every other one is a shared server. */
export const isLocalDatabase = (url: string) => url === ":memory:" || url.startsWith("file:");

const PRUNE_EVERY_MS = 60_000;

interface Row {
  count: number | string;
  reset_at: number | string;
}

// PostgreSQL returns bigint as a string
const hitOf = (row: Row): RateLimitHit => ({ count: Number(row.count), resetAt: Number(row.reset_at) });

/** Counters in `citadel_rate_limits`, one row per key digest; call `install()` once before use. */
export class DatabaseRateLimitStore implements RateLimitStore {
  private nextPrune = 0;

  constructor(
    private readonly db: Db,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Create the table unless it exists (portable DDL; servers starting together may race, so retry once). */
  async install(): Promise<void> {
    const create = () =>
      this.db.schema
        .createTable(RATE_LIMIT_TABLE)
        .ifNotExists()
        .addColumn("key", "text", (c) => c.primaryKey())
        .addColumn("count", "integer", (c) => c.notNull())
        .addColumn("reset_at", "bigint", (c) => c.notNull())
        .execute();
    // PostgreSQL's IF NOT EXISTS is not atomic: a concurrent CREATE can still fail, after which the table exists
    await create().catch(create);
  }

  /** One statement: a new or expired window starts at 1, an open one counts up (SQLite ≥ 3.35, PostgreSQL). */
  async hit(key: string, windowMs: number): Promise<RateLimitHit> {
    const now = this.clock();
    await this.prune(now);
    const table = (column: string) => sql.ref(`${RATE_LIMIT_TABLE}.${column}`);
    const expired = sql`${table("reset_at")} <= ${now}`;
    const row = await this.db
      .insertInto(RATE_LIMIT_TABLE)
      .values({ key: await digest(key), count: 1, reset_at: now + windowMs })
      .onConflict((oc) =>
        oc.column("key").doUpdateSet({
          count: sql`case when ${expired} then 1 else ${table("count")} + 1 end`,
          reset_at: sql`case when ${expired} then ${sql.ref("excluded.reset_at")} else ${table("reset_at")} end`,
        }),
      )
      .returning(["count", "reset_at"])
      .executeTakeFirstOrThrow();
    return hitOf(row as Row);
  }

  async peek(key: string): Promise<RateLimitHit | undefined> {
    const row = await this.db
      .selectFrom(RATE_LIMIT_TABLE)
      .select(["count", "reset_at"])
      .where("key", "=", await digest(key))
      .where("reset_at", ">", this.clock())
      .executeTakeFirst();
    return row && hitOf(row as Row);
  }

  async reset(key: string): Promise<void> {
    await this.db
      .deleteFrom(RATE_LIMIT_TABLE)
      .where("key", "=", await digest(key))
      .execute();
  }

  /** Expired windows are deleted now and then (at most once a minute per server), so the table stays small. */
  private async prune(now: number): Promise<void> {
    if (now < this.nextPrune) return;
    this.nextPrune = now + PRUNE_EVERY_MS;
    await this.db.deleteFrom(RATE_LIMIT_TABLE).where("reset_at", "<=", now).execute();
  }
}
