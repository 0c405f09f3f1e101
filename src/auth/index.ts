/**
 * The auth module (§3): users, passwords, sessions and revocation. HTTP-free: the routes in
 * `http/auth-routes.ts` parse requests and call these functions; seeds and the CLI call `createUser`.
 */

import type { AuditInput } from "../audit/entry.js";
import { actorOf } from "../audit/index.js";
import type { Row } from "../data/codec.js";
import type { DataEvents } from "../data/events.js";
import type { EntityModel } from "../data/models.js";
import type { Db } from "../db/connection.js";
import { BadRequestError, CitadelError, fieldError, UnauthorizedError, ValidationError } from "../errors.js";
import type { Subject } from "../guard/access.js";
import type { Tenancy } from "../guard/tenancy.js";
import type { Argon2 } from "../runtime.js";
import { type UserAdmin, userAdmin } from "./admin.js";
import { type ApiKeys, createApiKeys } from "./api-keys.js";
import { AuthWrites, type Changed, type Recorder, TRUSTED, userActor } from "./mutations.js";
import { type HashCounters, PasswordHasher } from "./password.js";
import { enforceRateLimits, LoginLimiter, MemoryRateLimitStore, type RateLimitStore } from "./rate-limit.js";
import { DatabaseRateLimitStore, isLocalDatabase } from "./rate-limit-store.js";
import { type AuthSettings, requireKnownRole } from "./settings.js";
import { publicClaims, TokenService } from "./tokens.js";
import { normalizeEmail, USERS, type UserRecord, UserStore } from "./users.js";

export type { RoleChange, UserAdmin } from "./admin.js";
export type { ApiKeyInfo, ApiKeys, KeyIncidents, KeyPrincipal, NewApiKey } from "./api-keys.js";
export { INVALID_KEY } from "./api-keys.js";
export type { Recorder } from "./mutations.js";
export type { RateLimitHit, RateLimitStore } from "./rate-limit.js";
export { MemoryRateLimitStore } from "./rate-limit.js";
export { DatabaseRateLimitStore } from "./rate-limit-store.js";
export { type AuthSettings, authSettings } from "./settings.js";

/** The one message for every failed login, whatever failed (§3.4). */
export const LOGIN_FAILED = "invalid email or password";

const EMAIL = /^[^\s@]+@[^\s@]+$/;

export interface NewUser {
  email: string;
  password: string;
  role?: string | null;
  /** values of fields the app added to the users entity */
  [field: string]: unknown;
}

export interface Session {
  user: Row;
  token: string;
}

/** A verified credential: the subject for the guard, and the local user id when it is one of ours. */
export interface Authenticated {
  subject: Subject;
  /** set for our own tokens; undefined for tokens of an external identity provider */
  userId: number | undefined;
}

export interface AuthModule {
  readonly settings: AuthSettings;
  /** Create a user from trusted code (seeds, scripts); any configured role, none when omitted (§3.5). */
  createUser(input: NewUser): Promise<Row>;
  /** User management by email for trusted callers (the CLI's `user` commands, 12.1), revoking tokens (§4.11). */
  readonly users: UserAdmin;
  /** API keys (§5); undefined unless `auth.api_keys.enabled`. */
  readonly apiKeys: ApiKeys | undefined;
  /**
   * `POST /password/register` (§3.3); `client` is the caller's address, for rate limiting. `by` (here and below):
   * the request's subject. Its key and request (id, client address) join the user as the actor of the write's
   * mutation events, and the auth event (`auth.register`, `auth.password_change`, `auth.logout`) is then
   * recorded with the write, in its transaction (§7.2): a caller that passes `by` records none of its own.
   */
  register(body: unknown, client: string, by?: Subject): Promise<Session>;
  /** `POST /password/login` (§3.4); a hash made with outdated parameters is replaced, as the user. */
  login(body: unknown, client: string, by?: Subject): Promise<Session>;
  /** `POST /password/change`: revokes every older token (§4.11) and returns a fresh session. */
  changePassword(userId: number, body: unknown, by?: Subject): Promise<Session>;
  /** Revoke every token of the user (logout, §4.11). */
  logout(userId: number, by?: Subject): Promise<void>;
  /**
   * A session for a user from trusted code, without a password: `citadel test` (§12.3) signs its principals in
   * with it, with `claims` as an identity provider would add them (`department`, …; never id, email, role).
   */
  sessionOf(userId: number, claims?: Record<string, unknown>): Promise<Session>;
  /** Verify a token and the user behind it; throws UnauthorizedError (401). */
  authenticate(token: string): Promise<Authenticated>;
  /** The user as the API shows it (no hidden fields). */
  publicUser(userId: number): Promise<Row | undefined>;
  strategies(): { strategies: Record<string, { type: string; enabled: boolean }>; allow_register: boolean };
  /** Password hashing work done so far (tests assert that every login verifies exactly once). */
  counters(): HashCounters;
}

export interface CreateAuthOptions {
  db: Db;
  settings: AuthSettings;
  /** the compiled users entity (built-in fields plus the app's) */
  users: EntityModel;
  /** overrides `auth.rate_limit.store` */
  rateLimitStore?: RateLimitStore;
  /** the opened connection's URL: a shared database keeps the rate limits unless the config says otherwise */
  connectionUrl?: string;
  log: (message: string, error?: unknown) => void;
  argon2: Argon2;
  /** tenant isolation (§6) and the tenant entity's model, when it is on */
  tenancy?: Tenancy & { model: EntityModel };
  /** the data engine's events: every write of a users row (or of the account a registration creates) emits there */
  events: DataEvents;
  /** the audit trail's recorder (§7.1), when it is on: auth events, and trusted key management */
  record?: Recorder;
  /**
   * While the guard enforces: the users fields a registration may set besides email and password — those the
   * role it registers with may update (§3.3) — and that role's name for the refusal. Undefined: any field that
   * is not the role, hidden, system or a reference (the data routes are open anyway).
   */
  registrable?: { fields: ReadonlySet<string>; role: string | undefined };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function requireObject(body: unknown): Record<string, unknown> {
  if (!isObject(body)) throw new BadRequestError("expected a JSON object");
  return body;
}

/** The `account` of a registration (§6.4): the tenant entity's fields, `{ name }` at least. */
function accountInput(tenancy: Tenancy & { model: EntityModel }, value: unknown): Record<string, unknown> {
  if (!isObject(value)) throw fieldError("account", "expected an object with the new account's name, e.g. { name }");
  const model = tenancy.model;
  // Only its name: the account's other fields (a plan, a flag, a reference, a slug unique across accounts that
  // would answer "taken" about another account, §6.2) are for its admins and superadmins to set.
  for (const name of Object.keys(value))
    if (name !== "name")
      throw fieldError(`account.${name}`, "may not be set at registration (only the account's name is)");
  try {
    return model.validator.create(value);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    throw new ValidationError(Object.fromEntries(Object.entries(error.fields).map(([k, v]) => [`account.${k}`, v])));
  }
}

function requireString(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (value === undefined || value === null || value === "") throw fieldError(field, `is required`);
  if (typeof value !== "string") throw fieldError(field, `expected a string`);
  return value;
}

/** Build the auth module: installs the revocation trigger and precomputes the dummy hash. */
export async function createAuth(options: CreateAuthOptions): Promise<AuthModule> {
  const { settings, log } = options;
  const store = new UserStore(options.db, options.users);
  const writes = new AuthWrites(options.db, options.events);
  const hasher = new PasswordHasher(settings.password, options.argon2);
  const tokens = new TokenService(settings, log);
  const limits = options.rateLimitStore ?? (await defaultStore(options));
  const windowMs = settings.rateLimit.window_seconds * 1000;
  const loginLimiter = new LoginLimiter(
    limits,
    {
      perAddress: settings.rateLimit.max_per_address,
      perEmailAddress: settings.rateLimit.max_per_email,
      perEmail: settings.rateLimit.max_per_email_total,
    },
    windowMs,
  );
  await store.installTriggers();
  await hasher.warmUp();
  const { tenancy } = options;
  const apiKeys = settings.apiKeys.enabled
    ? await createApiKeys({ db: options.db, settings, log, tenancy, record: options.record })
    : undefined;

  const fields = options.users.entity.fields;

  /** Why a register body may not carry `name`, or undefined when it may (§3.3). */
  function refusal(name: string): string | undefined {
    if (name === "role") return "may not be set at registration (new users get the configured default role)";
    const field = fields.get(name);
    // a hidden field answers as one that does not exist, as everywhere in the data API (§4.10)
    if (!field || field.hidden) return "unknown field";
    if (field.system) return "is a system field and may not be set";
    if (field.type === "reference") return "may not be set at registration";
    const { registrable } = options;
    // a registrant sets only what its role could write on its own row afterwards: no mass assignment of
    // fields such as `verified` that the app's policies keep for admins
    if (registrable && !registrable.fields.has(name))
      return `may not be set at registration: ${registrable.role === undefined ? "a user without a role" : `the role "${registrable.role}"`} may not update it (data.entity.update on users)`;
    return undefined;
  }

  function checkEmail(value: unknown): string {
    if (typeof value !== "string") throw fieldError("email", "expected a string");
    const email = normalizeEmail(value);
    if (!EMAIL.test(email)) throw fieldError("email", "is not an email address");
    return email;
  }

  /** Record a request's auth event about user `id` with the write it goes with, in its transaction (§7.2). */
  const noteWith = (trx: Db, action: AuditInput["action"], id: number, actor: Subject) =>
    options.record?.(
      { action, entity: USERS, row_id: id, actor: actorOf(actor), request_id: actor.request?.id ?? null },
      trx,
    );

  /**
   * Update user `id`'s row (`write`) in a transaction of its own, as the user (with the key and request of `by`),
   * and record `action` with it when a request asks (`by`).
   */
  async function updateUser(
    id: number,
    by: Subject | undefined,
    action: AuditInput["action"] | undefined,
    write: (trx: Db) => Promise<unknown>,
  ): Promise<void> {
    await writes.run(async (trx, emit) => {
      const before = await writes.stored(trx, options.users, id);
      await write(trx);
      // `before` is read only while anyone listens; the actor matters only then
      const user = store.recordOf(before);
      const actor = user ? userActor(user, by) : (by ?? TRUSTED);
      await emit([{ model: options.users, action: "update", id, before }], actor);
      if (by && action) await noteWith(trx, action, id, actor);
    });
  }

  /** The users' scope column (§6), which is also the tenant's claim in tokens; undefined without tenancy. */
  const tenantField = options.users.entity.tenantField;

  async function session(user: UserRecord, claims?: Record<string, unknown>): Promise<Session> {
    const tenant =
      tenantField !== undefined && user.tenant !== undefined ? { claim: tenantField, id: user.tenant } : undefined;
    // the account claim is the user's own or none: never one of the extra claims (§6.1)
    if (claims && tenantField !== undefined && tenantField in claims) {
      const { [tenantField]: _, ...rest } = claims;
      claims = rest;
    }
    const token = await tokens.sign({
      id: user.id,
      email: user.email,
      role: user.role,
      version: user.token_version,
      tenant,
      claims,
    });
    return { user: (await store.publicById(user.id))!, token };
  }

  async function sessionFor(id: number, claims?: Record<string, unknown>): Promise<Session> {
    const user = await store.byId(id);
    if (!user) throw new UnauthorizedError("the user no longer exists");
    return session(user, claims);
  }

  // registering cannot lock anyone out of an account, so it keeps a plain limit per address and per email
  const registerLimit = (email: string, client: string) =>
    enforceRateLimits(
      limits,
      [
        { key: `register:address:${client}`, max: settings.rateLimit.max_per_address },
        { key: `register:email:${email}`, max: settings.rateLimit.max_per_email },
      ],
      windowMs,
    );

  /** An account a user is added to exists (§6.4): named in the error, not a broken reference's 409. */
  async function requireAccount(id: unknown): Promise<void> {
    const field = tenancy!.field;
    if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 1)
      throw fieldError(field, "expected an account id");
    const found = await options.db.selectFrom(tenancy!.entity).select("id").where("id", "=", id).executeTakeFirst();
    if (!found) throw fieldError(field, `no account has the id ${id}`);
  }

  async function createUser(input: NewUser): Promise<Row> {
    const { email, password, role, ...rest } = input;
    if (role !== undefined && role !== null) requireKnownRole(settings, role);
    const account = tenancy ? rest[tenancy.field] : undefined;
    if (account !== undefined && account !== null) await requireAccount(account);
    const user = { ...rest, email: checkEmail(email), role: role ?? null };
    const checked = hasher.check(password);
    const values = options.users.validator.create(user);
    const hash = await hasher.hash(checked);
    const id = await writes.run(async (trx, emit) => {
      const id = await store.insert(values, hash, trx);
      await emit([{ model: options.users, action: "create", id, before: null }], TRUSTED);
      return id;
    });
    return (await store.publicById(id))!;
  }

  /**
   * A registration's user (with its new account first, §6.4: both or neither) in one transaction: their
   * creations are the new user's, as is the `auth.register` recorded with them for a request (`by`).
   */
  async function registerUser(user: Row, hash: string, account: Row | undefined, by: Subject | undefined) {
    return writes.run(async (trx, emit) => {
      const changed: Changed[] = [];
      let values = user;
      if (account) {
        // an account is given only under tenancy (register "create")
        const { entity, field, model } = tenancy!;
        const at = new Date().toISOString();
        const inserted = await trx
          .insertInto(entity)
          .values({ ...model.codec.encode(account), created_at: at, updated_at: at })
          .returning("id")
          .executeTakeFirstOrThrow();
        const accountId = Number(inserted.id);
        changed.push({ model, action: "create", id: accountId, before: null });
        values = options.users.validator.create({ ...user, [field]: accountId });
      }
      const id = await store.insert(values, hash, trx);
      changed.push({ model: options.users, action: "create", id, before: null });
      const actor = userActor(store.recordOf({ ...values, id })!, by);
      await emit(changed, actor);
      if (by) await noteWith(trx, "auth.register", id, actor);
      return id;
    });
  }

  return {
    settings,

    createUser,
    users: userAdmin({ store, hasher, settings, createUser, writes, record: options.record }),
    apiKeys,

    async register(body, client, by) {
      if (!settings.allowRegister)
        throw new CitadelError("forbidden", 403, "registration is disabled (config.auth.allow_register is false)");
      if (tenancy?.register === "closed")
        throw new CitadelError(
          "forbidden",
          403,
          "registration is closed: users join an account through its admins (config.tenancy.register)",
        );
      const input = requireObject(body);
      const extra: Record<string, unknown> = {};
      for (const name of Object.keys(input)) {
        if (name === "email" || name === "password" || (tenancy && name === "account")) continue;
        const problem = refusal(name);
        if (problem) throw fieldError(name, problem);
        extra[name] = input[name];
      }
      const email = checkEmail(requireString(input, "email"));
      requireString(input, "password");
      const account = tenancy && accountInput(tenancy, input.account);
      await registerLimit(email, client);
      const password = hasher.check(input.password);
      const user = { ...extra, email, role: settings.defaultRoleRegister ?? null };
      // without tenancy the user is checked before the costly hash; with it, once its account is made
      const values = account ? user : options.users.validator.create(user);
      return sessionFor(await registerUser(values, await hasher.hash(password), account, by));
    },

    async login(body, client, by) {
      const input = requireObject(body);
      const email = normalizeEmail(requireString(input, "email"));
      const password = requireString(input, "password");
      await loginLimiter.attempt(email, client);
      // An oversized password is refused without hashing it (hashing DoS); its length says nothing about the user.
      if (!hasher.acceptable(password)) throw new UnauthorizedError(LOGIN_FAILED);
      const user = await store.byEmail(email);
      if (!(await hasher.verify(user?.password_hash, password)) || !user) throw new UnauthorizedError(LOGIN_FAILED);
      if (user.password_hash && hasher.needsRehash(user.password_hash)) {
        const hash = await hasher.hash(password);
        await updateUser(user.id, by, undefined, (trx) => store.rehash(user.id, hash, trx)).catch((e) =>
          log("cannot upgrade a password hash", e),
        );
      }
      await loginLimiter.succeeded(email, client);
      return session(user);
    },

    async changePassword(userId, body, by) {
      const input = requireObject(body);
      const current = requireString(input, "password");
      const next = hasher.check(input.new_password, "new_password");
      const user = await store.byId(userId);
      if (!user) throw new UnauthorizedError("the user no longer exists");
      await enforceRateLimits(
        limits,
        [{ key: `change:user:${userId}`, max: settings.rateLimit.max_per_email }],
        windowMs,
      );
      if (!hasher.acceptable(current) || !(await hasher.verify(user.password_hash, current)))
        throw new UnauthorizedError("the current password is not correct");
      const hash = await hasher.hash(next);
      await updateUser(userId, by, "auth.password_change", (trx) => store.setPassword(userId, hash, trx));
      return sessionFor(userId);
    },

    logout: (userId, by) => updateUser(userId, by, "auth.logout", (trx) => store.revokeTokens(userId, trx)),

    sessionOf: (userId, claims) => sessionFor(userId, claims),

    async authenticate(token) {
      const verified = await tokens.verify(token);
      if (verified.kind === "external") {
        const claims = publicClaims(verified.claims);
        const id = typeof claims.id === "number" && Number.isSafeInteger(claims.id) ? claims.id : undefined;
        // An external user has no local row; without a numeric id claim, `@user.id` has no value and matches nothing.
        const user: NonNullable<Subject["user"]> = { ...claims, id, role: verified.role };
        const subject: Subject = { role: verified.role, user };
        // the identity provider the config trusts signs the tenant too; anything but an account id is none
        const tenant = tenantField === undefined ? undefined : claims[tenantField];
        if (typeof tenant === "number" && Number.isSafeInteger(tenant) && tenant > 0) subject.tenant = tenant;
        return { subject, userId: undefined };
      }
      const user = await store.byId(verified.id);
      if (!user) throw new UnauthorizedError("the user of this token no longer exists");
      // a user moved to another account (or out of one) holds tokens of the old one: revoked (§6.1)
      const claimed = tenantField === undefined ? undefined : verified.claims[tenantField];
      if (user.token_version !== verified.version || user.role !== verified.role || claimed !== user.tenant)
        throw new UnauthorizedError("this token has been revoked");
      const claims = { ...publicClaims(verified.claims), id: user.id, email: user.email, role: user.role };
      const subject: Subject = { role: user.role ?? undefined, user: claims };
      if (user.tenant !== undefined) subject.tenant = user.tenant;
      return { subject, userId: user.id };
    },

    publicUser: (userId) => store.publicById(userId),

    strategies: () => ({
      strategies: { password: { type: "password", enabled: true } },
      allow_register: settings.allowRegister,
    }),

    counters: () => ({ ...hasher.counters }),
  };
}

/** The configured store, else the database's when it is shared by several servers (§11.4), else memory. */
async function defaultStore(options: CreateAuthOptions): Promise<RateLimitStore> {
  const configured = options.settings.rateLimit.store;
  const shared = options.connectionUrl !== undefined && !isLocalDatabase(options.connectionUrl);
  if (configured === "memory" || (configured === undefined && !shared)) return new MemoryRateLimitStore();
  const store = new DatabaseRateLimitStore(options.db);
  await store.install();
  return store;
}

/** `app.module.auth` while `config.auth.enabled` is false: every call explains how to turn auth on. */
export function disabledAuth(): AuthModule {
  const off = (): never => {
    throw new Error("auth is disabled: set config.auth.enabled to true");
  };
  return {
    get settings(): AuthSettings {
      return off();
    },
    createUser: async () => off(),
    get users(): UserAdmin {
      return off();
    },
    get apiKeys(): ApiKeys {
      return off();
    },
    register: async () => off(),
    login: async () => off(),
    changePassword: async () => off(),
    logout: async () => off(),
    sessionOf: async () => off(),
    authenticate: async () => off(),
    publicUser: async () => off(),
    strategies: () => off(),
    counters: () => off(),
  };
}
