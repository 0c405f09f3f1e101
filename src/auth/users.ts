/**
 * The auth module's access to the users table: trusted reads and writes of the hidden columns
 * (`password_hash`, `token_version`) that the data API never touches, and the public shape of a user.
 */
import { sql } from "kysely";
import type { Row } from "../data/codec.js";
import { translateDbError } from "../data/db-errors.js";
import type { EntityModel } from "../data/models.js";
import { type Db, dialectOf } from "../db/connection.js";
import { CitadelError, ConflictError } from "../errors.js";

export const USERS = "users";

/** The columns the auth module needs on every authenticated request. */
export interface UserRecord {
  id: number;
  email: string;
  role: string | null;
  password_hash: string | null;
  token_version: number;
  /** the user's tenant (§6), when tenancy is on and the user belongs to an account */
  tenant?: number;
}

/** Emails are compared lowercased and trimmed, everywhere. */
export const normalizeEmail = (email: string) => email.trim().toLowerCase();

const now = () => new Date().toISOString();

function record(row: Row | null | undefined, tenantField: string | undefined): UserRecord | undefined {
  if (!row) return undefined;
  const tenant = tenantField === undefined ? null : row[tenantField];
  return {
    id: Number(row.id),
    email: String(row.email),
    role: typeof row.role === "string" ? row.role : null,
    password_hash: typeof row.password_hash === "string" ? row.password_hash : null,
    token_version: Number(row.token_version ?? 0),
    ...(tenant === null || tenant === undefined ? {} : { tenant: Number(tenant) }),
  };
}

export class UserStore {
  constructor(
    private readonly db: Db,
    readonly model: EntityModel,
  ) {}

  /**
   * A role change through the data API (or plain SQL) must revoke the user's tokens (§4.11), and the data
   * engine knows nothing about tokens: a trigger bumps the version wherever the change comes from.
   */
  async installTriggers(): Promise<void> {
    const trigger = {
      name: "citadel_users_role_revokes_tokens",
      table: USERS,
      column: "role",
      counter: "token_version",
    };
    for (const statement of dialectOf(this.db).counterTrigger(trigger)) await statement.execute(this.db);
  }

  /** The columns of a UserRecord: the tenant's too when users are scoped (§6). */
  private get recordColumns(): string[] {
    const columns = ["id", "email", "role", "password_hash", "token_version"];
    const tenant = this.model.entity.tenantField;
    return tenant === undefined ? columns : [...columns, tenant];
  }

  /** A stored users row (as `AuthWrites.stored` reads it) as a UserRecord. */
  recordOf(row: Row | null | undefined): UserRecord | undefined {
    return record(row, this.model.entity.tenantField);
  }

  async byId(id: number): Promise<UserRecord | undefined> {
    const row = await this.db.selectFrom(USERS).select(this.recordColumns).where("id", "=", id).executeTakeFirst();
    return record(row, this.model.entity.tenantField);
  }

  async byEmail(email: string): Promise<UserRecord | undefined> {
    const row = await this.db
      .selectFrom(USERS)
      .select(this.recordColumns)
      .where("email", "=", normalizeEmail(email))
      .executeTakeFirst();
    return record(row, this.model.entity.tenantField);
  }

  /** The user as the API shows it: every visible field, never the hidden ones. */
  async publicById(id: number): Promise<Row | undefined> {
    const row = await this.db
      .selectFrom(USERS)
      .select(this.model.visibleFields)
      .where("id", "=", id)
      .executeTakeFirst();
    return row ? this.model.codec.decode(row) : undefined;
  }

  /** Every user as the API shows them, by id. */
  async listPublic(): Promise<Row[]> {
    const rows = await this.db.selectFrom(USERS).select(this.model.visibleFields).orderBy("id").execute();
    return rows.map((row) => this.model.codec.decode(row));
  }

  /** Give the user a role; the trigger above revokes their tokens when it differs from the old one. */
  async setRole(id: number, role: string, db: Db = this.db): Promise<void> {
    await db.updateTable(USERS).set({ role, updated_at: now() }).where("id", "=", id).execute();
  }

  /** Delete the user; a reference that forbids it (`on_delete: "restrict"`) is a ConflictError. */
  async delete(id: number, db: Db = this.db): Promise<void> {
    try {
      await db.deleteFrom(USERS).where("id", "=", id).execute();
    } catch (error) {
      throw translateDbError(error) ?? error;
    }
  }

  /** Insert a user from validated public values plus the password hash; a taken email is a ConflictError. */
  async insert(values: Row, passwordHash: string, db: Db = this.db): Promise<number> {
    const at = now();
    try {
      const row = await db
        .insertInto(USERS)
        .values({
          ...this.model.codec.encode(values),
          password_hash: passwordHash,
          token_version: 0,
          created_at: at,
          updated_at: at,
        })
        .returning("id")
        .executeTakeFirstOrThrow();
      return Number(row.id);
    } catch (error) {
      const translated = translateDbError(error);
      if (translated instanceof ConflictError && /email/.test(translated.message))
        throw new ConflictError("a user with this email already exists");
      if (translated instanceof CitadelError) throw translated;
      throw error;
    }
  }

  /** Store a new password hash and revoke every token issued before (§4.11); returns the new version. */
  async setPassword(id: number, passwordHash: string, db: Db = this.db): Promise<number> {
    const row = await db
      .updateTable(USERS)
      .set({ password_hash: passwordHash, token_version: sql`coalesce(token_version, 0) + 1`, updated_at: now() })
      .where("id", "=", id)
      .returning("token_version")
      .executeTakeFirst();
    return Number(row?.token_version ?? 0);
  }

  /** Replace a hash made with outdated parameters, without revoking anything. */
  async rehash(id: number, passwordHash: string, db: Db = this.db): Promise<void> {
    await db.updateTable(USERS).set({ password_hash: passwordHash }).where("id", "=", id).execute();
  }

  /** Revoke every token of the user issued so far (logout). */
  async revokeTokens(id: number, db: Db = this.db): Promise<void> {
    await db
      .updateTable(USERS)
      .set({ token_version: sql`coalesce(token_version, 0) + 1` })
      .where("id", "=", id)
      .execute();
  }
}
