/**
 * API keys (§5): creating, listing, rotating and revoking them for trusted callers (the system routes, the
 * CLI), and turning a key sent with a request into the principal it stands for. HTTP-free: the subject
 * middleware says what it saw (the key, the Origin, whether a browser sent it, the client address).
 */
import { type AuditActor, type AuditRecorder, NO_ACTOR } from "../audit/entry.js";
import type { Db } from "../db/connection.js";
import { ConflictError, ForbiddenError, fieldError, NotFoundError, UnauthorizedError } from "../errors.js";
import type { Subject } from "../guard/access.js";
import { addressAllowed, graceSeconds, type KeyInput, keyInput } from "./api-key-input.js";
import { API_KEYS_TABLE, ApiKeyStore, type NewStoredKey, type StoredKey } from "./api-key-store.js";
import { digestsEqual, fromHex, type KeyKind, newKey, parseKey, sha256 } from "./key-material.js";
import type { AuthSettings } from "./settings.js";

const MANAGE = "system.keys.manage";

/** The one answer to every key that does not work, whatever the reason (§5.4). */
export const INVALID_KEY = "invalid or missing API key";

/** A key as lists and responses show it: never the key, never its hash. */
export type ApiKeyInfo = Omit<StoredKey, "hash">;

/** The answer to a creation or a rotation: the only time the full key is given out (§5.2). */
export interface NewApiKey extends ApiKeyInfo {
  key: string;
}

/** What the subject middleware saw of a request that carries a key. */
export interface KeyRequest {
  key: string;
  /** the Origin (else Referer) the browser sent, if any */
  origin: string | undefined;
  /** an Origin header, or a Sec-Fetch-Mode other than `navigate` (§5.4) */
  fromBrowser: boolean;
  /** the client's address (http/client.ts) */
  client: string;
}

/** A verified key, as the subject carries it. */
export interface KeyPrincipal {
  id: number;
  kind: KeyKind;
  /** the key's own role, if it was created with one */
  role: string | null;
  /** the key's tenant (§6): the account it acts in; null for none */
  tenant: number | null;
}

/** Refusals worth an administrator's attention, counted since the start (the audit of §7 reads them). */
export interface KeyIncidents {
  /** secret keys sent by a browser (§5.4) */
  secret_key_from_browser: number;
}

/**
 * Every management call takes the tenant of the manager (§6): a tenant admin sees and manages its own
 * account's keys only, and every key it creates belongs to that account; undefined manages them all.
 */
export interface ApiKeys {
  /** Create a key from a `POST /api/system/keys` body; the answer holds the full key. */
  create(body: unknown, within?: number, by?: KeyManager): Promise<NewApiKey>;
  /** Every key by id, revoked and replaced ones included. */
  list(within?: number): Promise<ApiKeyInfo[]>;
  /** A new key with the old one's name, kind, role and limits; the old one works `grace_seconds` more. */
  rotate(id: number, body?: unknown, within?: number, by?: KeyManager): Promise<NewApiKey>;
  /** Revoke at once; returns the key as it now is. */
  revoke(id: number, within?: number, by?: KeyManager): Promise<ApiKeyInfo>;
  /** The principal of a key, or the generic 401 (§5.4) whatever is wrong with it. */
  verify(request: KeyRequest): Promise<KeyPrincipal>;
  /** The subject a key acts as when no user token comes with it (§5.1). */
  subject(principal: KeyPrincipal): Subject;
  incidents(): KeyIncidents;
}

/** Stands in for the digest of a prefix that is not in the table, so that every lookup does the same work. */
const NO_DIGEST = new Uint8Array(32);
/** `last_used_at` is written at most this often per key, so that a request with a key stays a read. */
const TOUCH_EVERY_MS = 60_000;

const shown = ({ hash: _, ...info }: StoredKey): ApiKeyInfo => info;
const past = (at: string | null, now: number) => at !== null && Date.parse(at) <= now;

export interface ApiKeysOptions {
  db: Db;
  settings: AuthSettings;
  log: (message: string) => void;
  clock?: () => number;
  /** the tenant table and the unscoped role, when tenant isolation is on (§6) */
  tenancy?: { entity: string; superadminRole?: string };
  /** the audit trail's recorder (§7.1), when it is on */
  record?: AuditRecorder;
}

/** Who manages a key, for the audit trail: the request's actor, or none for trusted code (the CLI). */
export interface KeyManager {
  actor: AuditActor;
  request_id: string | null;
  /**
   * Whether the manager may hand out a key acting as `role` (undefined: a secret key that bypasses the guard).
   * A key is a principal of its own: managing keys must not mint more access than the manager has (§5.5).
   * Absent for trusted code that passes no manager (the CLI); the HTTP routes always set it, and it answers true
   * for a trusted caller (a secret key without a role).
   */
  mayActAs?: (role: string | undefined) => boolean;
}

/** The API keys module; creates its table. */
export async function createApiKeys({
  db,
  settings,
  log,
  clock = Date.now,
  tenancy,
  record,
}: ApiKeysOptions): Promise<ApiKeys> {
  const store = new ApiKeyStore(db);
  await store.install();
  const { env, publishableRole, secretRole } = settings.apiKeys;
  const incidents: KeyIncidents = { secret_key_from_browser: 0 };
  const touched = new Map<number, number>();
  const iso = (ms: number) => new Date(ms).toISOString();

  /** Record a key's creation, rotation or revocation (§7.1): which key, never the key. */
  const note = (action: "key.create" | "key.rotate" | "key.revoke", key: ApiKeyInfo, by: KeyManager | undefined) =>
    record?.({
      action,
      entity: API_KEYS_TABLE,
      row_id: key.id,
      actor: by?.actor ?? NO_ACTOR,
      request_id: by?.request_id ?? null,
      reason: `${key.kind} key ${JSON.stringify(key.name)}${key.tenant === null ? "" : ` of account ${key.tenant}`}`,
    });

  /** The role a key acts as without a user token: its own, else its kind's (undefined: it bypasses the guard). */
  const actsAs = (key: { kind: "publishable" | "secret"; role: string | null | undefined }) =>
    key.role ?? (key.kind === "secret" ? secretRole : publishableRole);

  /** 403 unless the manager may hand out a key acting as this one does (§5.5). */
  function checkActsAs(
    key: { kind: "publishable" | "secret"; role: string | null | undefined },
    by: KeyManager | undefined,
    verb = "hand out",
  ) {
    const role = actsAs(key);
    if (!by?.mayActAs || by.mayActAs(role)) return;
    throw new ForbiddenError(
      MANAGE,
      undefined,
      role === undefined
        ? `only a trusted caller or a role granted everything (implicit_allow, nothing denied or narrowed) may ${verb} a secret key without a role: it bypasses the guard`
        : `you may not ${verb} a key acting as the role "${role}": only your own role or the default role (another needs implicit_allow and users.role writable)`,
    );
  }

  /** The key; another tenant's is as missing as one that does not exist. */
  async function find(id: number, within: number | undefined): Promise<StoredKey> {
    const key = Number.isSafeInteger(id) ? await store.byId(id) : undefined;
    if (!key || (within !== undefined && key.tenant !== within)) throw new NotFoundError(`no API key has the id ${id}`);
    return key;
  }

  /** A key's tenant: the manager's own when it has one, an existing account otherwise (§6). */
  async function tenantOf(input: KeyInput, within: number | undefined): Promise<number | null> {
    if (within !== undefined) {
      const refuse = (why: string) => new ForbiddenError(MANAGE, undefined, why);
      if (input.tenant !== null && input.tenant !== within)
        throw refuse("you may only create keys for your own account");
      // the role the key will act as, its own or the configured one for its kind (§5.1)
      const role = actsAs(input);
      if (role !== undefined && role === tenancy?.superadminRole)
        throw refuse(`only a superadmin may create a key acting as the role "${role}"`);
      return within;
    }
    if (input.tenant === null || !tenancy) return input.tenant;
    const account = await db.selectFrom(tenancy.entity).select("id").where("id", "=", input.tenant).executeTakeFirst();
    if (!account) throw fieldError("tenant", `no account has the id ${input.tenant}`);
    return input.tenant;
  }

  async function issue(
    fields: Omit<NewStoredKey, "prefix" | "hash" | "created_at">,
    replacing?: { id: number; graceEndsAt: string },
  ): Promise<NewApiKey> {
    const material = await newKey(fields.kind, env);
    const row = { ...fields, prefix: material.prefix, hash: material.hash, created_at: iso(clock()) };
    const id = replacing ? await store.replace(replacing.id, row, replacing.graceEndsAt) : await store.insert(row);
    return { ...shown((await store.byId(id))!), key: material.key };
  }

  /** Every check after the digest: all of them end in the same 401. */
  function usable(key: StoredKey, request: KeyRequest, now: number): boolean {
    if (key.revoked_at !== null || past(key.expires_at, now) || past(key.grace_ends_at, now)) return false;
    if (key.kind === "secret" && request.fromBrowser) {
      incidents.secret_key_from_browser++;
      log(
        `refused secret API key #${key.id} (${JSON.stringify(key.name)}) sent by a browser` +
          `${request.origin ? ` from ${JSON.stringify(request.origin)}` : ""}: secret keys never work from a page; rotate it if it was exposed`,
      );
      return false;
    }
    if (key.kind === "publishable" && key.allowed_origins)
      return request.origin !== undefined && key.allowed_origins.includes(request.origin);
    if (key.kind === "secret" && key.allowed_ips) return addressAllowed(request.client, key.allowed_ips);
    return true;
  }

  async function touch(key: StoredKey, now: number) {
    if (now - (touched.get(key.id) ?? Number.NEGATIVE_INFINITY) < TOUCH_EVERY_MS) return;
    touched.set(key.id, now);
    await store.touch(key.id, iso(now));
  }

  return {
    async create(body, within, by) {
      const input = keyInput(body, settings, clock(), tenancy !== undefined);
      checkActsAs(input, by);
      const created = await issue({ ...input, tenant: await tenantOf(input, within) });
      await note("key.create", created, by);
      return created;
    },

    list: async (within) => (await store.all(within)).map(shown),

    async rotate(id, body, within, by) {
      const grace = graceSeconds(body);
      const old = await find(id, within);
      if (old.revoked_at !== null) throw new ConflictError(`API key ${id} is revoked; create a new one`);
      if (old.replaced_by !== null)
        throw new ConflictError(`API key ${id} was already rotated; rotate its replacement ${old.replaced_by}`);
      // a rotation hands out a new key acting as the old one: the same question as a creation
      checkActsAs(old, by);
      const { name, kind, role, tenant, expires_at, allowed_origins, allowed_ips } = old;
      const rotated = await issue(
        { name, kind, role, tenant, expires_at, allowed_origins, allowed_ips },
        { id, graceEndsAt: iso(clock() + grace * 1000) },
      );
      await note("key.rotate", rotated, by);
      return rotated;
    },

    async revoke(id, within, by) {
      // a manager takes away only keys it could have handed out: not the backend's key that bypasses the guard
      checkActsAs(await find(id, within), by, "revoke");
      await store.revoke(id, iso(clock()));
      const revoked = shown((await store.byId(id))!);
      await note("key.revoke", revoked, by);
      return revoked;
    },

    async verify(request) {
      const parsed = parseKey(request.key);
      // the same work for every key: one digest, one lookup, one comparison of two 32-byte digests
      const digest = await sha256(request.key);
      const key = parsed ? await store.byPrefix(parsed.prefix) : undefined;
      const matches = digestsEqual(digest, key ? fromHex(key.hash) : NO_DIGEST);
      const now = clock();
      if (!matches || !key || key.kind !== parsed?.kind || !usable(key, request, now))
        throw new UnauthorizedError(INVALID_KEY);
      await touch(key, now);
      return { id: key.id, kind: key.kind, role: key.role, tenant: key.tenant };
    },

    subject(principal) {
      const key = { id: principal.id, kind: principal.kind, tenant: principal.tenant };
      if (principal.kind === "publishable") return { role: principal.role ?? publishableRole, key };
      const role = principal.role ?? secretRole;
      return role === undefined ? { role: undefined, trusted: true, key } : { role, key };
    },

    incidents: () => ({ ...incidents }),
  };
}
