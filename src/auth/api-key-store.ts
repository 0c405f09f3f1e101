/**
 * The API keys table (§5.2): one row per key, holding its SHA-256 digest and public lookup prefix, never the
 * key. Created at auth startup with portable DDL (SQLite, libSQL server, PostgreSQL); times are ISO strings
 * like the users table's, and the origin and address lists are JSON text.
 */
import { type Db, dialectOf } from "../db/connection.js";
import { ConflictError } from "../errors.js";
import type { KeyKind } from "./key-material.js";

export const API_KEYS_TABLE = "citadel_api_keys";

/** A row as stored (the hash included: it never leaves the auth module). */
export interface StoredKey {
  id: number;
  name: string;
  kind: KeyKind;
  role: string | null;
  /** the tenant (account id) the key belongs to (§6); stored as text */
  tenant: number | null;
  prefix: string;
  hash: string;
  expires_at: string | null;
  allowed_origins: string[] | null;
  allowed_ips: string[] | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
  /** the key that replaced this one at a rotation */
  replaced_by: number | null;
  /** after a rotation: when this key stops working */
  grace_ends_at: string | null;
}

export type NewStoredKey = Omit<StoredKey, "id" | "last_used_at" | "revoked_at" | "replaced_by" | "grace_ends_at">;

// biome-ignore lint/suspicious/noExplicitAny: rows as the driver returns them
type RawRow = Record<string, any>;

const list = (json: unknown): string[] | null => (typeof json === "string" ? (JSON.parse(json) as string[]) : null);
const text = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));

function decode(row: RawRow): StoredKey {
  return {
    id: Number(row.id),
    name: String(row.name),
    kind: row.kind as KeyKind,
    role: text(row.role),
    tenant: row.tenant === null || row.tenant === undefined ? null : Number(row.tenant),
    prefix: String(row.prefix),
    hash: String(row.hash),
    expires_at: text(row.expires_at),
    allowed_origins: list(row.allowed_origins),
    allowed_ips: list(row.allowed_ips),
    created_at: String(row.created_at),
    last_used_at: text(row.last_used_at),
    revoked_at: text(row.revoked_at),
    // PostgreSQL returns bigint as a string
    replaced_by: row.replaced_by === null || row.replaced_by === undefined ? null : Number(row.replaced_by),
    grace_ends_at: text(row.grace_ends_at),
  };
}

const json = (values: string[] | null) => (values === null ? null : JSON.stringify(values));

export class ApiKeyStore {
  constructor(private readonly db: Db) {}

  /** Create the table unless it exists (servers starting together may race on PostgreSQL, so retry once). */
  async install(): Promise<void> {
    const dialect = dialectOf(this.db);
    const create = () =>
      this.db.schema
        .createTable(API_KEYS_TABLE)
        .ifNotExists()
        .addColumn("id", "integer", (c) => dialect.idColumn(c))
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("role", "text")
        .addColumn("tenant", "text")
        .addColumn("prefix", "text", (c) => c.notNull().unique())
        .addColumn("hash", "text", (c) => c.notNull())
        .addColumn("expires_at", "text")
        .addColumn("allowed_origins", "text")
        .addColumn("allowed_ips", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("last_used_at", "text")
        .addColumn("revoked_at", "text")
        .addColumn("replaced_by", "integer")
        .addColumn("grace_ends_at", "text")
        .execute();
    await create().catch(create);
  }

  async byPrefix(prefix: string): Promise<StoredKey | undefined> {
    const row = await this.db.selectFrom(API_KEYS_TABLE).selectAll().where("prefix", "=", prefix).executeTakeFirst();
    return row && decode(row);
  }

  async byId(id: number): Promise<StoredKey | undefined> {
    const row = await this.db.selectFrom(API_KEYS_TABLE).selectAll().where("id", "=", id).executeTakeFirst();
    return row && decode(row);
  }

  /** Every key, or those of one tenant. */
  async all(tenant?: number): Promise<StoredKey[]> {
    let query = this.db.selectFrom(API_KEYS_TABLE).selectAll().orderBy("id");
    if (tenant !== undefined) query = query.where("tenant", "=", String(tenant));
    return (await query.execute()).map(decode);
  }

  async insert(key: NewStoredKey, db: Db = this.db): Promise<number> {
    const row = await db
      .insertInto(API_KEYS_TABLE)
      .values({
        ...key,
        tenant: key.tenant === null ? null : String(key.tenant),
        allowed_origins: json(key.allowed_origins),
        allowed_ips: json(key.allowed_ips),
      })
      .returning("id")
      .executeTakeFirstOrThrow();
    return Number(row.id);
  }

  /**
   * Insert the replacement and mark the old key as replaced, ending at `graceEndsAt`, in one transaction. Only a
   * key neither replaced nor revoked is: of rotations side by side (on several servers too) one wins, and the
   * others are 409 with nothing written, not live keys that replace nothing.
   */
  async replace(oldId: number, replacement: NewStoredKey, graceEndsAt: string): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      const id = await this.insert(replacement, trx);
      const result = await trx
        .updateTable(API_KEYS_TABLE)
        .set({ replaced_by: id, grace_ends_at: graceEndsAt })
        .where("id", "=", oldId)
        .where("replaced_by", "is", null)
        .where("revoked_at", "is", null)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1)
        throw new ConflictError(`API key ${oldId} was rotated or revoked meanwhile; rotate its replacement`);
      return id;
    });
  }

  /** Set `revoked_at` unless it is set already. */
  async revoke(id: number, at: string): Promise<void> {
    await this.db
      .updateTable(API_KEYS_TABLE)
      .set({ revoked_at: at })
      .where("id", "=", id)
      .where("revoked_at", "is", null)
      .execute();
  }

  async touch(id: number, at: string): Promise<void> {
    await this.db.updateTable(API_KEYS_TABLE).set({ last_used_at: at }).where("id", "=", id).execute();
  }
}
