/**
 * User management for trusted callers (the CLI's `user` commands, admin scripts): users are named by email,
 * and every change that must end a user's sessions does so (§4.11). The CLI only parses and prints. Each change
 * is a mutation of the users row made by nobody (trusted code), in a transaction of its own (mutations.ts).
 */

import { NO_ACTOR } from "../audit/entry.js";
import type { Row } from "../data/codec.js";
import type { Db } from "../db/connection.js";
import { NotFoundError } from "../errors.js";
import type { NewUser } from "./index.js";
import { type AuthWrites, type Recorder, TRUSTED } from "./mutations.js";
import type { PasswordHasher } from "./password.js";
import { type AuthSettings, requireKnownRole } from "./settings.js";
import { normalizeEmail, USERS, type UserRecord, type UserStore } from "./users.js";

export interface RoleChange {
  user: Row;
  /** the role before the change */
  previous: string | null;
  /** false when the user already had the role: nothing was written and no token was revoked */
  changed: boolean;
}

export interface UserAdmin {
  /** Create a user; without a role, the config's `default_role_register` (none configured: no role). */
  create(input: NewUser): Promise<Row>;
  /** Every user by id, as the API shows them (never the password hash or the token version). */
  list(): Promise<Row[]>;
  /** Give the user another role (one of the configured roles); their older tokens then fail with 401 (§4.11). */
  setRole(email: string, role: string): Promise<RoleChange>;
  /** Replace the user's password (length limits enforced, §3.1); their older tokens then fail with 401 (§4.11). */
  setPassword(email: string, password: string): Promise<Row>;
  /** Delete the user; their tokens then fail with 401 (§4.11). Returns the user as it was. */
  delete(email: string): Promise<Row>;
}

export interface UserAdminDeps {
  store: UserStore;
  hasher: PasswordHasher;
  settings: AuthSettings;
  /** the module's `createUser` (§3.5), which validates and hashes */
  createUser(input: NewUser): Promise<Row>;
  /** the module's writes, which emit the data engine's mutation events */
  writes: AuthWrites;
  /** the audit trail's recorder, when it is on (§7.1) */
  record?: Recorder;
}

/** The user management functions over the auth module's store and hasher. */
export function userAdmin({ store, hasher, settings, createUser, writes, record }: UserAdminDeps): UserAdmin {
  /**
   * Apply `write` to the user's row as a mutation of trusted code, and `then` in its transaction; a delete's
   * events include the rows its foreign keys delete or set to NULL. A role change is recorded as
   * `auth.role_change` beside its `data.update` by the audit trail itself, whoever makes it.
   */
  const mutate = (
    action: "update" | "delete",
    id: number,
    write: (trx: Db) => Promise<unknown>,
    then?: (trx: Db) => Promise<void>,
  ) =>
    writes.run(async (trx, emit) => {
      const before = await writes.stored(trx, store.model, id);
      const reached = action === "delete" ? await writes.fallout(trx, store.model, id) : undefined;
      await write(trx);
      await emit([{ model: store.model, action, id, before, reached }], TRUSTED);
      await then?.(trx);
    });

  async function find(email: string): Promise<UserRecord> {
    const user = await store.byEmail(email);
    if (!user) throw new NotFoundError(`no user has the email "${normalizeEmail(email)}"`);
    return user;
  }

  const shown = async (id: number): Promise<Row> => (await store.publicById(id))!;

  return {
    create: (input) => createUser({ ...input, role: input.role ?? settings.defaultRoleRegister ?? null }),

    list: () => store.listPublic(),

    async setRole(email, role) {
      requireKnownRole(settings, role);
      const user = await find(email);
      if (user.role === role) return { user: await shown(user.id), previous: user.role, changed: false };
      // the users table's trigger bumps token_version on every role change, whoever makes it
      await mutate("update", user.id, (trx) => store.setRole(user.id, role, trx));
      return { user: await shown(user.id), previous: user.role, changed: true };
    },

    async setPassword(email, password) {
      const checked = hasher.check(password);
      const user = await find(email);
      const hash = await hasher.hash(checked);
      await mutate(
        "update",
        user.id,
        (trx) => store.setPassword(user.id, hash, trx),
        async (trx) =>
          record?.({ action: "auth.password_change", entity: USERS, row_id: user.id, actor: NO_ACTOR }, trx),
      );
      return shown(user.id);
    },

    async delete(email) {
      const user = await find(email);
      const before = await shown(user.id);
      await mutate("delete", user.id, (trx) => store.delete(user.id, trx));
      return before;
    },
  };
}
