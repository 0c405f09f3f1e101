/**
 * User management for trusted callers (the CLI's `user` commands, admin scripts): users are named by email,
 * and every change that must end a user's sessions does so (§4.11). The CLI only parses and prints.
 */

import { type AuditInput, type AuditRecorder, NO_ACTOR, rowChanges } from "../audit/entry.js";
import type { Row } from "../data/codec.js";
import { NotFoundError } from "../errors.js";
import type { NewUser } from "./index.js";
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
  /** the audit trail's recorder, when it is on (§7.1) */
  record?: AuditRecorder;
}

/** The user management functions over the auth module's store and hasher. */
export function userAdmin({ store, hasher, settings, createUser, record }: UserAdminDeps): UserAdmin {
  /** Record a change made here: by trusted code (the CLI, a script), so without an actor. */
  const note = (action: AuditInput["action"], id: number, changes?: AuditInput["changes"]) =>
    record?.({ action, entity: USERS, row_id: id, actor: NO_ACTOR, changes });

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
      await store.setRole(user.id, role);
      await note("auth.role_change", user.id, { role: [user.role, role] });
      return { user: await shown(user.id), previous: user.role, changed: true };
    },

    async setPassword(email, password) {
      const checked = hasher.check(password);
      const user = await find(email);
      await store.setPassword(user.id, await hasher.hash(checked));
      await note("auth.password_change", user.id);
      return shown(user.id);
    },

    async delete(email) {
      const user = await find(email);
      const before = await shown(user.id);
      await store.delete(user.id);
      await note("data.delete", user.id, rowChanges(before, "deleted"));
      return before;
    },
  };
}
